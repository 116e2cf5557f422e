// Reads talkgate's rows for the few checks no HTTP API answers (a send's audit row, events that are not relayed,
// attachment files): one read-only query on the database the test runs on, written for each schema where they
// differ (SQLite: src/store/sqlite/schema.ts; PostgreSQL: src/store/postgres/migrations/, where an event's delivery
// is in its `events` row and attachment bytes are in `files`).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import type { TalkgateConfig } from "../../src/config/config.ts";

/** Where talkgate's rows are: a configuration's `database`, or its URL (`sqlite:<absolute path>` or `postgres://…`). */
export type DatabaseRef = TalkgateConfig["database"] | string;

/** One query for both databases, or one per database. Parameters are `$1`, `$2`…, in either. */
export type Sql = string | { sqlite: string; postgres: string };

type Param = string | number | null;

function resolve(database: DatabaseRef): TalkgateConfig["database"] {
  if (typeof database !== "string") return database;
  if (database.startsWith("sqlite:")) return { kind: "sqlite", path: database.slice("sqlite:".length) };
  return { kind: "postgres", url: database };
}

/**
 * Runs `sql` on a read-only connection of its own, opened and closed for this query (SQLite is in WAL mode and
 * PostgreSQL reads a snapshot: neither blocks talkgate). Integers come back as numbers on both databases
 * (PostgreSQL's bigint and count(*) included); booleans as SQLite stores them (0/1) or as PostgreSQL's.
 */
export async function readRows<T>(database: DatabaseRef, sql: Sql, ...params: Param[]): Promise<T[]> {
  const where = resolve(database);
  if (where.kind === "sqlite") {
    const text = typeof sql === "string" ? sql : sql.sqlite;
    const db = new DatabaseSync(where.path, { readOnly: true });
    try {
      // SQLite's numbered parameters are ?1, ?2…
      return db.prepare(text.replace(/\$(\d+)/g, "?$1")).all(...params) as T[];
    } finally {
      db.close();
    }
  }
  const reader = postgres(where.url, {
    max: 1,
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
    connection: { application_name: "talkgate-test-reader", default_transaction_read_only: true },
  });
  try {
    const rows = await reader.unsafe(typeof sql === "string" ? sql : sql.postgres, params);
    return [...rows] as T[];
  } finally {
    await reader.end();
  }
}

/** The first column of the first row, as a number (a count). */
export async function readCount(database: DatabaseRef, sql: Sql, ...params: Param[]): Promise<number> {
  const [row] = await readRows<Record<string, unknown>>(database, sql, ...params);
  return Number(Object.values(row ?? {})[0] ?? 0);
}

/**
 * The names of the attachment and upload files under `folder` (e.g. a sender_key, "uploads", ".incoming"),
 * sorted: files on disk in mediaDir on SQLite, rows of `files` on PostgreSQL (whose mediaDir is not shared).
 */
export async function storedFiles(config: TalkgateConfig, folder: string): Promise<string[]> {
  if (config.database.kind === "postgres" && !config.mediaDirShared) {
    const rows = await readRows<{ name: string }>(
      config.database,
      "SELECT name FROM files WHERE starts_with(name, $1) ORDER BY name",
      `${folder}/`,
    );
    return rows.map((row) => row.name.slice(folder.length + 1));
  }
  try {
    return readdirSync(join(config.mediaDir, folder)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
