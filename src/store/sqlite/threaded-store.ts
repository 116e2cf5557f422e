// The SQLite store on a thread of its own: a Store whose calls are posted to a worker thread that owns the
// connection, so SQL, commits and checkpoints run beside the event loop that answers HTTP, not on it.
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import type {
  BeginSend,
  ClaimRef,
  ConversationClaim,
  DeliveryFilter,
  DeliveryOutcome,
  DeliveryRecord,
  IngestRequest,
  IngestResult,
  MediaJob,
  MediaOutcome,
  NewSend,
  SendOutcome,
  Store,
  StoredMessage,
} from "../../app/ports.ts";

/** The store methods the thread answers (close is answered by closing). */
export type StoreMethod = Exclude<keyof Store, "close">;

/** One call: its id, the method and the arguments (structured-cloned to the thread). */
export type Call = [id: number, method: StoreMethod, args: unknown[]];

/** The answer to a call: its value, or the error it failed with. */
export type Reply = [id: number, ok: true, value: unknown] | [id: number, ok: false, error: WireError];

/** What crosses the thread boundary of an error: message and the codes SQLite errors carry. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  errcode?: number;
  errstr?: string;
}

/** The thread's first message: the store is open (schema migrated), or why it could not be opened. */
export type Opened = { opened: true } | { opened: false; error: WireError };

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const { code, errcode, errstr } = error as { code?: unknown; errcode?: unknown; errstr?: unknown };
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === "string" && { code }),
    ...(typeof errcode === "number" && { errcode }),
    ...(typeof errstr === "string" && { errstr }),
  };
}

function fromWire(wire: WireError): Error {
  const { name, message, ...codes } = wire;
  return Object.assign(new Error(message), { name }, codes);
}

/**
 * Opens the SQLite database at `path` in a new worker thread and resolves once its schema is up to date.
 * `onStopped` hears if the thread ends before close() (every call fails from then on).
 */
export async function openThreadedSqliteStore(
  path: string,
  onStopped: (error: Error) => void,
): Promise<ThreadedStore> {
  const worker = new Worker(new URL("./store-thread.ts", import.meta.url), { workerData: { path } });
  // The first message says how opening went; an error or exit before it fails the open.
  const stop = new AbortController();
  const [opened] = (await Promise.race([
    once(worker, "message", { signal: stop.signal }),
    once(worker, "exit", { signal: stop.signal }).then(([code]) => {
      throw new Error(`the store thread exited (${code}) while opening`);
    }),
  ]).finally(() => stop.abort())) as [Opened];
  if (!opened.opened) {
    await worker.terminate();
    throw fromWire(opened.error);
  }
  return new ThreadedStore(worker, onStopped);
}

/** A {@link Store} answered by the store thread. Calls made in one turn of the event loop go as one message. */
export class ThreadedStore implements Store {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();
  #outbox: Call[] = [];
  #nextId = 0;
  /** Set once the thread has ended: why calls fail. */
  #stopped: Error | null = null;
  #closing: Promise<void> | null = null;

  constructor(worker: Worker, onStopped: (error: Error) => void) {
    this.#worker = worker;
    worker.on("message", (replies: Reply[]) => {
      for (const [id, ok, value] of replies) {
        const call = this.#pending.get(id);
        this.#pending.delete(id);
        if (ok) call?.resolve(value as never);
        else call?.reject(fromWire(value));
      }
    });
    const stop = (error: Error) => {
      if (this.#stopped) return;
      this.#stopped = error;
      for (const call of this.#pending.values()) call.reject(error);
      this.#pending.clear();
      if (!this.#closing) onStopped(error);
    };
    worker.on("error", (error) =>
      stop(new Error(`the store thread failed: ${error.message}`, { cause: error })),
    );
    worker.on("exit", (code) => stop(new Error(`the store thread has stopped (exit code ${code})`)));
  }

  #call<T>(method: StoreMethod, ...args: unknown[]): Promise<T> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    return new Promise<T>((resolve, reject) => {
      const id = ++this.#nextId;
      this.#pending.set(id, { resolve, reject });
      if (this.#outbox.length === 0) setImmediate(() => this.#flush());
      this.#outbox.push([id, method, args]);
    });
  }

  #flush(): void {
    const calls = this.#outbox;
    this.#outbox = [];
    if (!this.#stopped) this.#worker.postMessage(calls);
  }

  ingest(request: IngestRequest): Promise<IngestResult> {
    return this.#call("ingest", request);
  }

  claimConversations(request: {
    owner: string;
    limit: number;
    batchSize: number;
    now: number;
    leaseMs: number;
  }): Promise<ConversationClaim[]> {
    return this.#call("claimConversations", request);
  }

  completeClaim(claim: ClaimRef, outcomes: DeliveryOutcome[]): Promise<void> {
    // Not the claim's deliveries (and their bodies): the thread needs only which lease it was.
    const { senderKey, conversation, owner } = claim;
    return this.#call("completeClaim", { senderKey, conversation, owner }, outcomes);
  }

  listDeliveries(filter: DeliveryFilter, page: { after: number; limit: number }): Promise<DeliveryRecord[]> {
    return this.#call("listDeliveries", filter, page);
  }

  replayDeliveries(filter: DeliveryFilter, now: number, limit: number): Promise<string[]> {
    return this.#call("replayDeliveries", filter, now, limit);
  }

  deliveryStats(): Promise<{
    pending: number;
    retrying: number;
    dead: number;
    oldestWaitingAt: number | null;
  }> {
    return this.#call("deliveryStats");
  }

  nextDueAt(): Promise<number | null> {
    return this.#call("nextDueAt");
  }

  claimMedia(request: { owner: string; limit: number; now: number; leaseMs: number }): Promise<MediaJob[]> {
    return this.#call("claimMedia", request);
  }

  finishMedia(job: MediaJob, outcome: MediaOutcome, now: number): Promise<boolean> {
    return this.#call("finishMedia", job, outcome, now);
  }

  nextMediaDueAt(): Promise<number | null> {
    return this.#call("nextMediaDueAt");
  }

  findMessage(senderKey: string, serialNumber: string): Promise<StoredMessage | null> {
    return this.#call("findMessage", senderKey, serialNumber);
  }

  beginSend(
    send: NewSend,
    now: number,
    options: { staleAfterMs: number; replyTokenMaxAgeMs: number },
  ): Promise<BeginSend> {
    return this.#call("beginSend", send, now, options);
  }

  claimReplyToken(
    senderKey: string,
    conversation: string,
    token: string,
    serialNumber: string,
  ): Promise<boolean> {
    return this.#call("claimReplyToken", senderKey, conversation, token, serialNumber);
  }

  notePush(senderKey: string, serialNumber: string): Promise<void> {
    return this.#call("notePush", senderKey, serialNumber);
  }

  getDirectoryEntry(
    senderKey: string,
    userId: string,
  ): Promise<{ e164: string | null; agreeType: number | null } | null> {
    return this.#call("getDirectoryEntry", senderKey, userId);
  }

  setDirectoryEntry(
    senderKey: string,
    userId: string,
    fields: { e164?: string | undefined; agreeType?: number | undefined },
    now: number,
  ): Promise<void> {
    return this.#call("setDirectoryEntry", senderKey, userId, fields, now);
  }

  finishSend(senderKey: string, serialNumber: string, outcome: SendOutcome, now: number): Promise<void> {
    return this.#call("finishSend", senderKey, serialNumber, outcome, now);
  }

  ping(): Promise<void> {
    return this.#call("ping");
  }

  /** Lets the calls made so far finish, closes the database (its writes committed) and ends the thread. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#stopped) return;
      const exited = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
      this.#flush();
      this.#worker.postMessage("close");
      await exited;
    })();
    return this.#closing;
  }
}
