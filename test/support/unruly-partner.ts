// A partner endpoint that misbehaves on purpose (trickles, stalls, never answers, fails) and records what it saw:
// each attempt's start and end, and any event (webhook-id) in flight twice at the same time.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** How the partner answers. */
export type Behaviour =
  | { kind: "ok" }
  /** Headers at once, then one byte every `everyMs`, never ending. */
  | { kind: "trickle"; everyMs: number }
  /** 200 after `ms`. */
  | { kind: "slow"; ms: number }
  /** Reads the request, never answers. */
  | { kind: "silent" }
  | { kind: "fail"; status: number };

export interface Attempt {
  webhookId: string;
  body: { user_key?: string; sender_key?: string; content?: { text?: string } } | undefined;
  startedAt: number;
  /** When the exchange ended (answered, or the connection closed); null while open. */
  endedAt: number | null;
  status: number | null;
}

export interface UnrulyPartner {
  /** Origin, to use as the partner's receiveUrl (payloads go to …/message). */
  readonly url: string;
  readonly attempts: Attempt[];
  /** webhook-ids that arrived while an earlier attempt of the same id was still open. */
  readonly overlaps: string[];
  behave(behaviour: Behaviour): void;
  /** Attempts open right now. */
  open(): number;
  /** Resolves once `check` holds (checked on every arrival and end), rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startUnrulyPartner(behaviour: Behaviour = { kind: "ok" }): Promise<UnrulyPartner> {
  let current = behaviour;
  const attempts: Attempt[] = [];
  const overlaps: string[] = [];
  const openIds = new Map<string, number>();
  const sockets = new Set<Socket>();
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of [...listeners]) listener();
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const webhookId = String(req.headers["webhook-id"] ?? "");
      let body: Attempt["body"];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Attempt["body"];
      } catch {
        body = undefined;
      }
      const attempt: Attempt = { webhookId, body, startedAt: Date.now(), endedAt: null, status: null };
      attempts.push(attempt);
      const already = openIds.get(webhookId) ?? 0;
      if (already > 0) overlaps.push(webhookId);
      openIds.set(webhookId, already + 1);
      let timer: NodeJS.Timeout | undefined;
      res.on("close", () => {
        clearTimeout(timer);
        clearInterval(timer);
        attempt.endedAt = Date.now();
        openIds.set(webhookId, (openIds.get(webhookId) ?? 1) - 1);
        changed();
      });
      const answer = (status: number) => {
        attempt.status = status;
        res.writeHead(status, { "content-type": "application/json" }).end('{"code":"0"}');
      };
      const how = current;
      if (how.kind === "ok") answer(200);
      else if (how.kind === "fail") answer(how.status);
      else if (how.kind === "slow") timer = setTimeout(() => answer(200), how.ms);
      else if (how.kind === "trickle") {
        attempt.status = 200;
        res.writeHead(200, { "content-type": "application/json" });
        timer = setInterval(() => res.write(" "), how.everyMs);
      }
      changed();
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    attempts,
    overlaps,
    behave(next) {
      current = next;
    },
    open: () => attempts.filter((a) => a.endedAt === null).length,
    until(what, check, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const listener = () => {
          if (!check()) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(
            new Error(`unruly partner: not within ${timeoutMs} ms: ${what} (${attempts.length} attempts)`),
          );
        }, timeoutMs);
        listeners.add(listener);
        listener();
      });
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
