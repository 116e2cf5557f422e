// Group commit: every write queued in the same turn of the event loop shares one SQLite transaction.
import type { DatabaseSync } from "node:sqlite";

interface Pending {
  work: (db: DatabaseSync) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs write units in shared transactions. Durability costs one fsync per transaction, not per write:
 * the writes that queue up while one commit runs are committed together by the next. Should a unit
 * throw, the shared transaction is rolled back and each unit runs again in a transaction of its own,
 * so that one failing unit fails alone; a failed commit fails every unit in it.
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
    let results: unknown[];
    try {
      results = this.#transaction(batch);
    } catch (error) {
      // Nothing of the batch was written. If a unit failed (not the database: locked, full), find out
      // which by running each alone; otherwise running them again would only fail again, slowly.
      if (batch.length === 1 || !(error instanceof UnitError))
        for (const unit of batch) unit.reject(unwrap(error));
      else for (const unit of batch) this.#runAlone(unit);
      return;
    }
    batch.forEach((unit, i) => {
      unit.resolve(results[i]);
    });
  }

  #runAlone(unit: Pending): void {
    try {
      const [result] = this.#transaction([unit]);
      unit.resolve(result);
    } catch (error) {
      unit.reject(unwrap(error));
    }
  }

  #transaction(units: Pending[]): unknown[] {
    const db = this.#db;
    db.exec("BEGIN IMMEDIATE");
    try {
      const results = units.map((unit) => {
        let result: unknown;
        try {
          result = unit.work(db);
        } catch (error) {
          throw new UnitError(error);
        }
        // Were a unit to end the transaction, the units after it would write outside any transaction.
        if (!db.isTransaction) throw new UnitError(new Error("a write unit ended the shared transaction"));
        return result;
      });
      db.exec("COMMIT");
      return results;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
}

// A failure of one unit's work, as opposed to the database refusing the transaction itself.
class UnitError extends Error {
  constructor(cause: unknown) {
    super("a write unit failed", { cause });
  }
}

function unwrap(error: unknown): unknown {
  return error instanceof UnitError ? error.cause : error;
}
