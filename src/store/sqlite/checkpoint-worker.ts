// Runs in a worker thread (see checkpointer.ts): copies the write-ahead log into the database file with its
// own connection, so the copying and its fsyncs never stall the event loop that answers webhooks.
import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";

const { path, everyMs } = workerData as { path: string; everyMs: number };
const db = new DatabaseSync(path);
db.exec("PRAGMA busy_timeout = 1000");
// PASSIVE copies what no reader still needs and never blocks the writer. But the writer starts the log over
// only when it begins a transaction with every frame copied, which under constant writes hardly happens: once
// the log is long, RESTART copies the few frames the PASSIVE rounds left and makes the next write start it
// over, holding the writer back only for that remainder.
const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
const restart = db.prepare("PRAGMA wal_checkpoint(RESTART)");
const ROUNDS = 5;
const RESTART_FRAMES = 4_096;

function run(): void {
  try {
    let log = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const result = passive.get() as { log: number; checkpointed: number };
      log = result.log;
      if (result.checkpointed >= log) break;
    }
    if (log >= RESTART_FRAMES) restart.get();
  } catch (error) {
    parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
}

const timer = setInterval(run, everyMs);
parentPort?.on("message", (message) => {
  if (message !== "close") return;
  clearInterval(timer);
  run();
  db.close();
  parentPort?.close();
});
