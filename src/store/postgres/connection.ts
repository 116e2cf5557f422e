// The connection pool (postgres.js) and the schema's numbered migrations, applied under an advisory lock.
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";

/** The pool's settings (configuration: `postgres`). */
export interface PoolOptions {
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/** A pool whose bigint columns (times in ms, ids, counts) come back as numbers: they all fit in 53 bits. */
export function connect(url: string, options: PoolOptions) {
  return postgres(url, {
    max: options.poolSize,
    connect_timeout: Math.max(1, Math.ceil(options.connectTimeoutMs / 1000)),
    idle_timeout: 60,
    onnotice: () => {},
    fetch_types: false,
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
    },
    connection: { application_name: "talkgate", statement_timeout: options.statementTimeoutMs },
  });
}

export type Pool = ReturnType<typeof connect>;

// Any two talkgate processes migrating the same database at once take turns on this lock.
const MIGRATION_LOCK = 0x74616c6b; // "talk"

/** The migration files in order: `NNN-name.sql`, version NNN. */
function migrations(): Array<{ version: number; sql: string }> {
  const folder = new URL("./migrations/", import.meta.url);
  return readdirSync(folder)
    .filter((name) => /^\d{3}-[a-z0-9-]+\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: Number(name.slice(0, 3)), sql: readFileSync(new URL(name, folder), "utf8") }));
}

/**
 * Brings the schema up to date in one transaction, under an advisory lock (several instances may start at
 * once); refuses a database whose schema is newer than this talkgate knows. Answers the version.
 */
export async function migrate(pool: Pool): Promise<number> {
  const known = migrations();
  const latest = known.at(-1)?.version ?? 0;
  return pool.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`;
    const [row] = await tx<
      Array<{ version: number }>
    >`SELECT coalesce(max(version), 0)::integer AS version FROM schema_migrations`;
    const current = row?.version ?? 0;
    if (current > latest) {
      throw new Error(
        `the database's schema is at version ${current}, newer than this talkgate knows (${latest}): run a newer talkgate`,
      );
    }
    for (const migration of known.filter((m) => m.version > current)) {
      await tx.unsafe(migration.sql);
      await tx`INSERT INTO schema_migrations (version, applied_at) VALUES (${migration.version}, ${Date.now()})`;
    }
    return latest;
  });
}
