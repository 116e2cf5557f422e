// A partner-system double: receives talkgate's "수신 API" POSTs to {receiveUrl}/message and records them.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
// Partners verify with the Standard Webhooks libraries, so the sink does too (never with talkgate's own code).
import { Webhook } from "standardwebhooks";

/** One request the sink received. */
export interface SinkRequest {
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined when the body was not JSON. */
  body: unknown;
  raw: string;
  at: number;
  /**
   * Whether the `standardwebhooks` library verifies the request (signature, and a timestamp within its
   * 5 minutes of now); only set when the sink has a signing secret.
   */
  signatureValid?: boolean;
  /** Why it did not verify (the library's message). */
  signatureError?: string;
  /** The status the sink answered (set once decided). */
  status?: number;
  /** The caller went away before the answer was written (e.g. it timed out during a delay). */
  aborted?: boolean;
}

/** How the sink should answer one request. */
export interface SinkResponse {
  status: number;
  delayMs?: number;
  body?: string;
}

/** Options of {@link startPartnerSink}. */
export interface PartnerSinkOptions {
  port?: number;
  host?: string;
  /** The partner's signing secret (`whsec_<base64>`); enables signature checks. */
  signingSecret?: string;
  /** Answer 401 to requests whose signature does not verify (default: accept and record). */
  rejectInvalidSignature?: boolean;
  /** Called with every payload the sink accepted (answered 2xx). */
  onPayload?: (payload: unknown, request: SinkRequest) => void;
}

/** A running partner sink. */
export interface PartnerSink {
  /** Origin, e.g. `http://127.0.0.1:41235`; use it as the partner's receiveUrl. */
  readonly url: string;
  readonly port: number;
  /** Every request to a `/message` path, whatever it was answered. */
  readonly received: SinkRequest[];
  /** Bodies of the requests answered 2xx, in arrival order. */
  readonly accepted: unknown[];
  /** Decide the answer per request; returning undefined (or passing undefined) means 200 `{"code":"0"}`. */
  respondWith(fn: ((req: SinkRequest) => SinkResponse | undefined) | undefined): void;
  /** Answer the next `times` requests with `status`. */
  failNext(status: number, times?: number): void;
  /** Resolves with `accepted` once `predicate` holds over it; rejects after `timeoutMs`. */
  waitFor(predicate: (accepted: readonly unknown[]) => boolean, timeoutMs?: number): Promise<unknown[]>;
  /** Forget received and accepted requests. */
  clear(): void;
  close(): Promise<void>;
}

const OK_BODY = JSON.stringify({ code: "0" });

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts a partner sink on loopback that records talkgate's partner deliveries and answers as told. */
export async function startPartnerSink(options: PartnerSinkOptions = {}): Promise<PartnerSink> {
  const verifier = options.signingSecret === undefined ? undefined : new Webhook(options.signingSecret);
  const received: SinkRequest[] = [];
  const accepted: unknown[] = [];
  const listeners = new Set<() => void>();
  let responder: ((req: SinkRequest) => SinkResponse | undefined) | undefined;
  let failures: { status: number; remaining: number }[] = [];
  let closing: Promise<void> | undefined;

  function decide(entry: SinkRequest): SinkResponse {
    const failure = failures[0];
    if (failure !== undefined) {
      failure.remaining -= 1;
      if (failure.remaining <= 0) failures.shift();
      return { status: failure.status, body: JSON.stringify({ code: String(failure.status) }) };
    }
    if (options.rejectInvalidSignature === true && entry.signatureValid === false) {
      return { status: 401, body: JSON.stringify({ code: "401", message: "invalid signature" }) };
    }
    if (entry.body === undefined)
      return { status: 400, body: JSON.stringify({ code: "400", message: "not JSON" }) };
    return responder?.(entry) ?? { status: 200 };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method !== "POST" || !path.endsWith("/message")) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ code: "404" }));
      return;
    }
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const entry: SinkRequest = { path, headers: req.headers, body, raw, at: Date.now() };
    if (verifier) {
      try {
        verifier.verify(raw, req.headers as Record<string, string>);
        entry.signatureValid = true;
      } catch (error) {
        entry.signatureValid = false;
        entry.signatureError = (error as Error).message;
      }
    }
    received.push(entry);
    const answer = decide(entry);
    entry.status = answer.status;
    if (answer.delayMs !== undefined && answer.delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    }
    if (res.destroyed) {
      entry.aborted = true;
      return;
    }
    res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body ?? OK_BODY);
    if (answer.status >= 200 && answer.status < 300) {
      accepted.push(body);
      options.onPayload?.(body, entry);
      for (const listener of listeners) listener();
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("partner sink: no TCP address");
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    received,
    accepted,
    respondWith(fn) {
      responder = fn;
    },
    failNext(status, times = 1) {
      failures.push({ status, remaining: times });
    },
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const listener = (): void => {
          if (!predicate(accepted)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve([...accepted]);
        };
        const timer = setTimeout(() => {
          listeners.delete(listener);
          const statuses = received.map((r) => r.status ?? "pending").join(", ");
          const last = accepted.slice(-3).map((p) => JSON.stringify(p));
          reject(
            new Error(
              `partner sink: waitFor timed out after ${timeoutMs} ms with ${accepted.length} accepted ` +
                `of ${received.length} received (answers: ${statuses || "none"}); last accepted:\n  ${last.join("\n  ")}`,
            ),
          );
        }, timeoutMs);
        listeners.add(listener);
        listener();
      });
    },
    clear() {
      received.length = 0;
      accepted.length = 0;
      failures = [];
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
