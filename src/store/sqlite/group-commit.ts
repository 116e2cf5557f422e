// Group commit: every write queued in the same turn of the event loop shares one SQLite transaction.
import type { DatabaseSync } from "node:sqlite";

interface Pending {
  work: (db: DatabaseSync) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs write units in shared transactions. Durability costs one fsync per transaction, not per write:
 * the writes that queue up while one commit runs are committed together by the next. Each unit runs
 * in its own savepoint, so one failing unit rolls back alone; a failed commit fails every unit in it.
 */
export class GroupCommit {
  readonly #db: DatabaseSync;
  #queue: Pending[] = [];
  #scheduled = false;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Queues `work`; resolves with its result once the transaction holding it has committed. */
  run<T>(work: (db: DatabaseSync) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;

    const db = this.#db;
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      db.exec("BEGIN IMMEDIATE");
      for (const unit of batch) {
        db.exec("SAVEPOINT unit");
        try {
          results.push({ ok: true, value: unit.work(db) });
          db.exec("RELEASE unit");
        } catch (error) {
          db.exec("ROLLBACK TO unit");
          db.exec("RELEASE unit");
          results.push({ ok: false, error });
        }
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      for (const unit of batch) unit.reject(error);
      return;
    }
    batch.forEach((unit, i) => {
      const result = results[i];
      if (result?.ok) unit.resolve(result.value);
      else unit.reject(result?.error);
    });
  }
}
