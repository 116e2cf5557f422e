// The store thread (see threaded-store.ts): opens the SQLite store and answers the calls posted to it. Answers
// settled in one turn of its event loop go back as one message.
import { parentPort, workerData } from "node:worker_threads";
import { openSqliteStore, type SqliteStore } from "./sqlite-store.ts";
import { type Call, type Opened, type Reply, type StoreMethod, toWire } from "./threaded-store.ts";

const port = parentPort;
if (!port) throw new Error("store-thread.ts runs as a worker thread (see threaded-store.ts)");
const { path } = workerData as { path: string };

function open(): SqliteStore | null {
  try {
    const opened = openSqliteStore(path);
    port?.postMessage({ opened: true } satisfies Opened);
    return opened;
  } catch (error) {
    port?.postMessage({ opened: false, error: toWire(error) } satisfies Opened);
    return null;
  }
}

const store = open();
if (!store) port.close();

let replies: Reply[] = [];
function answer(reply: Reply): void {
  if (replies.length === 0) setImmediate(flush);
  replies.push(reply);
}
function flush(): void {
  if (replies.length === 0) return;
  port?.postMessage(replies);
  replies = [];
}

function run(store: SqliteStore, method: StoreMethod, args: unknown[]): Promise<unknown> {
  try {
    return (store[method] as (...args: unknown[]) => Promise<unknown>).apply(store, args);
  } catch (error) {
    return Promise.reject(error);
  }
}

port.on("message", (message: Call[] | "close") => {
  if (!store) return;
  if (message === "close") {
    // Calls posted before "close" are under way: close() lets their writes commit first.
    void store.close().finally(() => {
      flush();
      port.close();
    });
    return;
  }
  for (const [id, method, args] of message) {
    run(store, method, args).then(
      (value) => answer([id, true, value]),
      (error: unknown) => answer([id, false, toWire(error)]),
    );
  }
});
