// The connection pool (node-postgres, through sql.ts) and the schema's numbered migrations, applied under an advisory lock.
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { DatabaseRefusal } from "../database-refusal.ts";
import { createPool, type Pool } from "./sql.ts";

export type { Pool };

/** The pool's settings (configuration: `postgres`). */
export interface PoolOptions {
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/** The pool of `url` (see sql.ts); errors on idle connections go to `onError`. */
export function connect(url: string, options: PoolOptions, onError: (error: Error) => void = () => {}): Pool {
  return createPool(url, {
    max: options.poolSize,
    connectTimeoutMs: options.connectTimeoutMs,
    statementTimeoutMs: options.statementTimeoutMs,
    onError,
  });
}

/**
 * The database URL as messages may show it: without its password (nor a `password` query parameter), saying
 * so when one was there.
 */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  let redacted = parsed.password !== "";
  parsed.password = "";
  for (const name of [...parsed.searchParams.keys()]) {
    if (!/pass/i.test(name)) continue;
    parsed.searchParams.delete(name);
    redacted = true;
  }
  return redacted ? `${parsed.href} (password redacted)` : parsed.href;
}

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
 * once); refuses a database whose schema is newer than this talkgate knows, or that cannot be reached or
 * logged into, with a {@link DatabaseRefusal} naming `url` (its password redacted). Answers the version.
 */
export async function migrate(pool: Pool, url: string): Promise<number> {
  const known = migrations();
  const latest = known.at(-1)?.version ?? 0;
  try {
    return await pool.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`;
      const [row] = await tx<
        Array<{ version: number }>
      >`SELECT coalesce(max(version), 0)::integer AS version FROM schema_migrations`;
      const current = row?.version ?? 0;
      if (current > latest) {
        throw new DatabaseRefusal(
          `the database ${redactedUrl(url)} has schema version ${current}, newer than this talkgate knows (${latest}): run a newer talkgate`,
        );
      }
      for (const migration of known.filter((m) => m.version > current)) {
        await tx.unsafe(migration.sql);
        await tx`INSERT INTO schema_migrations (version, applied_at) VALUES (${migration.version}, ${Date.now()})`;
      }
      return latest;
    });
  } catch (error) {
    // The first statements of a start: a database that cannot be used at all is one line, not a stack trace.
    const why = unusable(error);
    if (why === null) throw error;
    throw new DatabaseRefusal(`cannot use the database ${redactedUrl(url)}: ${why}`, { cause: error });
  }
}

// Why the database cannot be used at all (down, no such host, login refused, no such database, too many
// connections), or null for anything else: a bug, shown whole.
function unusable(error: unknown): string | null {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof message !== "string") return null;
  if (/^Connection terminated due to connection timeout|^timeout expired$/.test(message)) return message;
  if (typeof code !== "string") return null;
  if (error instanceof pg.DatabaseError) return /^(08|28|3D|53|57P)/.test(code) ? message : null;
  return /^E[A-Z]+$/.test(code) ? message : null;
}

/**
 * Brings the schema of the database at `url` up to date on a connection of its own, then disconnects
 * (`talkgate migrate`); answers the schema version.
 */
export async function migrateDatabase(url: string, options: PoolOptions): Promise<number> {
  const pool = connect(url, { ...options, poolSize: 1 });
  try {
    return await migrate(pool, url);
  } finally {
    await pool.end();
  }
}
