// The databases the scenarios run talkgate on (BENCH_DATABASES): a fresh SQLite file each, or a fresh database on
// the one PostgreSQL server of the run; what the scenarios read from them (events stored, delivery states), and
// what a stretch of work cost PostgreSQL (statements, transactions, rows, WAL, CPU) per event.
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import type { EventLog } from "../src/app/store.ts";
import { DEFAULTS } from "../src/config/config.ts";
import { openPostgresStore } from "../src/store/postgres/postgres-store.ts";
import { openSqliteStore } from "../src/store/sqlite/sqlite-store.ts";
import { type PostgresServer, startPostgres } from "../test/support/postgres.ts";
import { sleep, treeCpuSeconds } from "./support.ts";

export const DATABASE_KINDS = ["sqlite", "postgres"] as const;
export type DatabaseKind = (typeof DATABASE_KINDS)[number];
export const LABELS: Record<DatabaseKind, string> = { sqlite: "SQLite", postgres: "PostgreSQL" };

/** One scenario's own database. */
export interface ScenarioDatabase {
  kind: DatabaseKind;
  label: string;
  /** talkgate's `database` setting. */
  config: string;
  /** Events stored. */
  eventCount(): Promise<number>;
  /** Deliveries by state. */
  deliveryStates(): Promise<Array<{ state: string; n: number }>>;
  /** talkgate's own store on this database, for writing a backlog through its intake. */
  openStore(): Promise<Pick<EventLog, "ingest"> & { close(): Promise<void> }>;
  /** Starts counting what PostgreSQL does; null on SQLite. Call once talkgate's connections are closed. */
  costMeter(): Promise<(() => Promise<DatabaseCost>) | null>;
}

/** What PostgreSQL did over a stretch (talkgate's statements; the bench's own few queries left out). */
export interface DatabaseCost {
  /** Statements executed (pg_stat_statements calls, BEGIN and COMMIT included); null without the extension. */
  statements: number | null;
  /**
   * Statements by text (normalised), most called first, with their execution time (ms; NaN for COMMIT, counted
   * one per BEGIN); empty without the extension.
   */
  byStatement: Array<{ query: string; calls: number; ms: number }>;
  /** Transactions committed and rolled back. */
  commits: number;
  rollbacks: number;
  /** Rows inserted, updated and deleted. */
  inserted: number;
  updated: number;
  deleted: number;
  /** WAL written (records, bytes) and flushed to disk (fsync calls), the whole server. */
  walRecords: number;
  walBytes: number;
  walSyncs: number;
  /** CPU seconds of the server and all its processes. */
  cpuSeconds: number | null;
}

/** The SQLite file `talkgate.db` in `dir`. */
export function sqliteDatabase(dir: string): ScenarioDatabase {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "talkgate.db");
  const read = <T>(query: (db: DatabaseSync) => T): T => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return query(db);
    } finally {
      db.close();
    }
  };
  return {
    kind: "sqlite",
    label: LABELS.sqlite,
    config: `sqlite:${path}`,
    eventCount: async () =>
      read((db) => (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n),
    deliveryStates: async () =>
      read(
        (db) =>
          db
            .prepare("SELECT state, count(*) AS n FROM deliveries GROUP BY state ORDER BY state")
            .all() as Array<{
            state: string;
            n: number;
          }>,
      ),
    openStore: async () => openSqliteStore(path),
    costMeter: async () => null,
  };
}

/** The COMMIT row of {@link DatabaseCost.byStatement}: counted one per BEGIN, its time unknown (NaN). */
export const COMMIT_NOTE = "commit";

// The bench's own queries carry this mark, so that pg_stat_statements' figures leave them out.
const MARK = "/* bench */";

/**
 * The run's PostgreSQL server: as durable as talkgate's SQLite (fsync, synchronous commit, full page writes: the
 * test harness turns them off), its cluster on the same disk as the SQLite files (`parentDir`), stock settings
 * otherwise, with pg_stat_statements loaded when the installation has it.
 */
export class BenchPostgres {
  readonly server: PostgresServer;
  readonly statements: boolean;
  readonly #admin: postgres.Sql;
  #databases = 0;

  private constructor(server: PostgresServer, statements: boolean, admin: postgres.Sql) {
    this.server = server;
    this.statements = statements;
    this.#admin = admin;
  }

  static async start(parentDir: string): Promise<BenchPostgres> {
    mkdirSync(parentDir, { recursive: true });
    // As root the server runs as another OS user, which must be able to enter the bench's (private) folders.
    chmodSync(join(parentDir, ".."), 0o711);
    chmodSync(parentDir, 0o711);
    const durable = { fsync: true, synchronous_commit: true, full_page_writes: true };
    let server: PostgresServer;
    let statements = true;
    try {
      server = await startPostgres({
        parentDir,
        settings: { ...durable, shared_preload_libraries: "pg_stat_statements" },
      });
    } catch (error) {
      console.error(`bench: PostgreSQL without pg_stat_statements (${String(error).split("\n")[0]})`);
      server = await startPostgres({ parentDir, settings: durable });
      statements = false;
    }
    const admin = postgres(server.url.replace(/\/[^/]*$/, "/postgres"), {
      max: 1,
      onnotice: () => {},
      fetch_types: false,
    });
    if (statements)
      try {
        await admin.unsafe(`${MARK} CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
      } catch (error) {
        console.error(`bench: no pg_stat_statements (${String(error)})`);
        statements = false;
      }
    return new BenchPostgres(server, statements, admin);
  }

  /** The postmaster's process id (its first line of postmaster.pid). */
  get pid(): number | undefined {
    try {
      return Number(readFileSync(join(this.server.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
    } catch {
      return undefined;
    }
  }

  get version(): string {
    const v = this.server.versionNum;
    return `${Math.floor(v / 10_000)}.${v % 10_000}`;
  }

  /** A fresh database `name` on the server. */
  async database(name: string): Promise<ScenarioDatabase> {
    const dbName = `bench_${++this.#databases}_${name.replace(/\W/g, "_")}`;
    const url = await this.server.createDatabase(dbName);
    // One connection per query, closed at once: its backend's statistics are then flushed and never held over.
    const query = async <T>(text: string): Promise<T[]> => {
      const sql = postgres(url, { max: 1, onnotice: () => {}, fetch_types: false });
      try {
        return (await sql.unsafe(`${MARK} ${text}`)) as unknown as T[];
      } finally {
        await sql.end({ timeout: 1 });
      }
    };
    let benchQueries = 0;
    const counted = <T>(text: string) => {
      benchQueries++;
      return query<T>(text);
    };
    return {
      kind: "postgres",
      label: LABELS.postgres,
      config: url,
      eventCount: async () =>
        Number((await counted<{ n: string }>("SELECT count(*) AS n FROM events"))[0]?.n ?? 0),
      deliveryStates: async () =>
        (
          await counted<{ state: string; n: string }>(
            "SELECT state, count(*) AS n FROM events WHERE state IS NOT NULL GROUP BY state ORDER BY state",
          )
        ).map((row) => ({ state: row.state, n: Number(row.n) })),
      openStore: () => openPostgresStore(url, DEFAULTS.postgres),
      costMeter: async () => {
        const before = await this.#sample(dbName, benchQueries);
        return async () => {
          const after = await this.#sample(dbName, benchQueries);
          const counted = [...after.calls].map(([id, { query, calls, ms }]) => {
            const was = before.calls.get(id);
            return { query, calls: calls - (was?.calls ?? 0), ms: ms - (was?.ms ?? 0) };
          });
          // pg_stat_statements (15) may count a COMMIT only once per connection (a cached utility statement loses
          // its query id) but counts every BEGIN: each transaction's COMMIT is counted as one per BEGIN.
          const isCommit = (query: string) => /^\s*commit\s*$/i.test(query);
          const begins = counted.filter((s) => /^\s*begin\b/i.test(s.query)).reduce((n, s) => n + s.calls, 0);
          const byStatement = [
            ...counted.filter((s) => !isCommit(s.query)),
            ...(begins > 0 ? [{ query: COMMIT_NOTE, calls: begins, ms: Number.NaN }] : []),
          ]
            .filter((s) => s.calls > 0)
            .sort((a, b) => b.calls - a.calls);
          return {
            statements: this.statements ? byStatement.reduce((n, s) => n + s.calls, 0) : null,
            byStatement,
            // The bench's own queries each committed one transaction of their own.
            commits: after.commits - before.commits - (after.benchQueries - before.benchQueries),
            rollbacks: after.rollbacks - before.rollbacks,
            inserted: after.inserted - before.inserted,
            updated: after.updated - before.updated,
            deleted: after.deleted - before.deleted,
            walRecords: after.walRecords - before.walRecords,
            walBytes: after.walBytes - before.walBytes,
            walSyncs: after.walSyncs - before.walSyncs,
            cpuSeconds:
              after.cpu !== null && before.cpu !== null ? Math.max(0, after.cpu - before.cpu) : null,
          };
        };
      },
    };
  }

  // Counters as of now. A backend reports its database counters when idle for a while or when it exits, so
  // this first waits until no client is connected to the database (talkgate stopped, the bench's queries done).
  async #sample(dbName: string, benchQueries: number) {
    const admin = this.#admin;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [row] = await admin.unsafe<Array<{ n: string }>>(
        `${MARK} SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`,
        [dbName],
      );
      if (Number(row?.n) === 0) break;
      if (Date.now() > deadline) {
        console.error(`bench: clients still connected to ${dbName}; its counters may be short`);
        break;
      }
      await sleep(50);
    }
    // pg_stat_database is read from the statistics snapshot: a fresh one for each query outside a transaction.
    const [db] = await admin.unsafe<Array<Record<string, string>>>(
      `${MARK} SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted
        FROM pg_stat_database WHERE datname = $1`,
      [dbName],
    );
    const [wal] = await admin.unsafe<Array<Record<string, string>>>(
      `${MARK} SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal`,
    );
    const calls = new Map<string, { query: string; calls: number; ms: number }>();
    if (this.statements)
      for (const row of await admin.unsafe<Array<{ id: string; query: string; calls: string; ms: number }>>(
        `${MARK} SELECT s.queryid::text || '/' || s.toplevel::text AS id, s.query, s.calls,
          s.total_exec_time + s.total_plan_time AS ms FROM pg_stat_statements s
          JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.query NOT LIKE '/* bench */%'`,
        [dbName],
      ))
        calls.set(row.id, { query: row.query, calls: Number(row.calls), ms: Number(row.ms) });
    const n = (value: string | undefined) => Number(value ?? 0);
    return {
      commits: n(db?.xact_commit),
      rollbacks: n(db?.xact_rollback),
      inserted: n(db?.tup_inserted),
      updated: n(db?.tup_updated),
      deleted: n(db?.tup_deleted),
      walRecords: n(wal?.wal_records),
      walBytes: n(wal?.wal_bytes),
      walSyncs: n(wal?.wal_sync),
      calls,
      benchQueries,
      cpu: treeCpuSeconds([this.pid]),
    };
  }

  /** Fast shutdown; the cluster's folder is removed. Safe to call twice. */
  async stop(): Promise<void> {
    await this.#admin.end({ timeout: 1 }).catch(() => {});
    await this.server.stop();
  }
}
