// One talkgate process per SQLite file: it keeps due times and leases in memory, which two processes would break.
import { DatabaseSync } from "node:sqlite";
import { DatabaseRefusal } from "../database-refusal.ts";

/** A held lock on a SQLite file; released by `release()`, or by the OS when the process dies. */
export interface FileLock {
  release(): void;
}

// SQLite's codes for a file another connection holds (SQLITE_BUSY, SQLITE_LOCKED).
const HELD = new Set([5, 6]);

/**
 * Takes the lock that makes this process the only talkgate on the SQLite file at `path`, or throws a
 * {@link DatabaseRefusal} saying another one has it. The lock is an exclusive lock that SQLite holds on a
 * sidecar database, `<path>-lock`, which stays empty: the database itself stays open to readers (backups,
 * sqlite3) and its hot path is untouched. The lock is the OS's file lock, so a killed process leaves none
 * behind: no pid file to go stale.
 */
export function lockDatabaseFile(path: string): FileLock {
  const lockPath = `${path}-lock`;
  let lock: DatabaseSync | undefined;
  try {
    // No wait (timeout 0): a holder keeps the lock as long as it runs. The journal stays in memory, so no
    // `-journal` file is left beside the lock; the open transaction is never committed and nothing is ever
    // written, so the file stays empty.
    lock = new DatabaseSync(lockPath, { timeout: 0 });
    lock.exec("PRAGMA journal_mode = MEMORY; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE");
  } catch (error) {
    lock?.close();
    const { errcode, message } = error as { errcode?: number; message: string };
    if (errcode !== undefined && HELD.has(errcode))
      throw new DatabaseRefusal(
        `the database ${path} is in use by another talkgate process (it holds ${lockPath}; ` +
          "one process per SQLite file: stop that one first, or use PostgreSQL to run several)",
        { cause: error },
      );
    throw new DatabaseRefusal(`cannot lock the database ${path} (${lockPath}: ${message})`, { cause: error });
  }
  const held = lock;
  return { release: () => held.close() };
}
