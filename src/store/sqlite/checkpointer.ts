// Checkpoints of the SQLite write-ahead log, moved off the event loop: the store's own connection never
// checkpoints (wal_autocheckpoint = 0); a worker thread with a connection of its own does, every `everyMs`.
import { once } from "node:events";
import { Worker } from "node:worker_threads";

export class Checkpointer {
  readonly #worker: Worker;

  /** `onError` hears of a checkpoint that failed (the next one tries again). */
  constructor(path: string, everyMs: number, onError: (message: string) => void) {
    this.#worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url), {
      workerData: { path, everyMs },
    });
    this.#worker.on("message", (message: { error?: string }) => {
      if (message.error) onError(message.error);
    });
    this.#worker.on("error", (error) => onError(error.message));
    this.#worker.unref();
  }

  /** Runs a last checkpoint and ends the thread. */
  async close(): Promise<void> {
    const exited = once(this.#worker, "exit");
    this.#worker.postMessage("close");
    await exited;
  }
}
