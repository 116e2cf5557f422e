// Group commit: every write queued in the same turn of the event loop shares one SQLite transaction.

/** Longest a write that need not be durable waits for others to share a transaction with. */
const LAZY_MS = 10;

import type { DatabaseSync, StatementSync } from "node:sqlite";

interface Pending {
  work: (db: DatabaseSync) => unknown;
  /** Resolve only once the commit is on disk (else once it is committed, which may wait for others). */
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs write units in shared transactions. Should a unit throw, the shared transaction is rolled back and
 * each unit runs again in a transaction of its own, so that one failing unit fails alone; a failed commit
 * fails every unit in it. A unit resolves only once `durable()` says its commit is on disk (the database
 * commits without syncing; `durable` syncs off the event loop, one sync for many transactions), unless it
 * was queued with `durable: false`: it waits (up to 10 ms) for a durable write to share a transaction with,
 * resolves once committed, and a crash may still undo it. At a steady trickle of webhooks this halves the
 * transactions: the outcome of one delivery goes with the next event's.
 */
export class GroupCommit {
  readonly #db: DatabaseSync;
  readonly #durable: () => Promise<void>;
  readonly #totalChanges: StatementSync;
  /** The latest sync asked for, until it settles: what a transaction that changed nothing waits for. */
  #syncing: Promise<void> | null = null;
  #queue: Pending[] = [];
  #scheduled = false;
  #lazyTimer: NodeJS.Timeout | null = null;

  constructor(db: DatabaseSync, durable: () => Promise<void>) {
    this.#db = db;
    this.#durable = durable;
    this.#totalChanges = db.prepare("SELECT total_changes() AS n");
  }

  /**
   * Queues `work`; resolves with its result once the transaction holding it is committed and on disk, or
   * only committed with `durable: false`.
   */
  run<T>(work: (db: DatabaseSync) => T, options: { durable: boolean } = { durable: true }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const { durable } = options;
      this.#queue.push({ work, durable, resolve: resolve as (value: unknown) => void, reject });
      if (this.#scheduled) return;
      if (durable) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      } else this.#lazyTimer ??= setTimeout(() => this.#flush(), LAZY_MS);
    });
  }

  /** Resolves once every commit made so far is on disk (at once when no sync is under way). */
  synced(): Promise<void> {
    return this.#syncing ?? Promise.resolve();
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    let results: unknown[];
    let changed: boolean;
    try {
      ({ results, changed } = this.#transaction(batch));
    } catch (error) {
      // Nothing of the batch was written. If a unit failed (not the database: locked, full), find out
      // which by running each alone; otherwise running them again would only fail again, slowly.
      if (batch.length === 1 || !(error instanceof UnitError))
        for (const unit of batch) unit.reject(unwrap(error));
      else for (const unit of batch) this.#runAlone(unit);
      return;
    }
    this.#settle(
      batch.map((unit, i) => [unit, results[i]]),
      changed,
    );
  }

  #runAlone(unit: Pending): void {
    try {
      const { results, changed } = this.#transaction([unit]);
      this.#settle([[unit, results[0]]], changed);
    } catch (error) {
      unit.reject(unwrap(error));
    }
  }

  // Committed: resolved once on disk. A failed sync fails them (a 5xx to LINE, which redelivers; the
  // redelivery finds the events stored). A transaction that changed nothing needs no sync of its own, but
  // what it read must be on disk before it is acted on: it waits for the sync under way, if any.
  #settle(committed: Array<[Pending, unknown]>, changed: boolean): void {
    const waiting: Array<[Pending, unknown]> = [];
    for (const [unit, result] of committed) {
      if (unit.durable) waiting.push([unit, result]);
      else unit.resolve(result);
    }
    if (waiting.length === 0) return;
    let durable: Promise<void>;
    if (changed) {
      const sync = this.#durable();
      this.#syncing = sync;
      const settled = () => {
        if (this.#syncing === sync) this.#syncing = null;
      };
      sync.then(settled, settled);
      durable = sync;
    } else durable = this.synced();
    durable.then(
      () => {
        for (const [unit, result] of waiting) unit.resolve(result);
      },
      (error: unknown) => {
        for (const [unit] of waiting) unit.reject(error);
      },
    );
  }

  #changes(): number {
    return (this.#totalChanges.get() as { n: number }).n;
  }

  #transaction(units: Pending[]): { results: unknown[]; changed: boolean } {
    const db = this.#db;
    const before = this.#changes();
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
      return { results, changed: this.#changes() !== before };
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
