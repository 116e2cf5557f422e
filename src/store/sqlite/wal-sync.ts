// Commits made durable off the event loop: SQLite writes the WAL without syncing it (synchronous = NORMAL) and
// the fsync runs in libuv's thread pool, while the event loop goes on serving requests.
import { fsync, open } from "node:fs";
import { promisify } from "node:util";

const fsyncAsync = promisify(fsync);
const openAsync = promisify(open);

/**
 * fsyncs one file (the database's write-ahead log) on request. `sync()` resolves once everything written to
 * the file before the call is on disk; calls made while an fsync runs share the next one, so a burst of
 * commits costs two fsyncs, not one each.
 */
export class FileSync {
  readonly #path: string;
  #fd: Promise<number> | null = null;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  constructor(path: string) {
    this.#path = path;
  }

  sync(): Promise<void> {
    if (this.#running === null) {
      const run = this.#fsync().finally(() => {
        this.#running = null;
      });
      this.#running = run;
      return run;
    }
    // The running fsync may have started before this caller's write: it waits for the next one.
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = null;
        return this.sync();
      });
    return this.#queued;
  }

  async #fsync(): Promise<void> {
    this.#fd ??= openAsync(this.#path, "r");
    try {
      await fsyncAsync(await this.#fd);
    } catch (error) {
      this.#fd = null; // opened again next time (the file may have been replaced)
      throw error;
    }
  }
}
