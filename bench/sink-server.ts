// The benchmark's fast partner (and LINE profile API): answers at once and counts what it received.
//   POST …/message            → 200 {"code":"0"}   (a delivery; counted, unique by webhook-id)
//   GET  /v2/bot/profile/:id  → 200 a profile       (LINE getProfile, so user names resolve instantly)
//   GET  /_stats              → {"received","unique","profiles","firstAt","lastAt"}
// Runs in the bench process (startSink, with a hook seeing each delivery) or as its own process:
//   node bench/sink-server.ts <port>
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface SinkStats {
  received: number;
  unique: number;
  profiles: number;
  firstAt: number;
  lastAt: number;
}

export interface Sink {
  url: string;
  stats(): SinkStats;
  close(): Promise<void>;
}

const OK = JSON.stringify({ code: "0" });

/** `onDelivery` sees each delivery's body as it arrives (parse it only if you need to). */
export function startSink(
  port = 0,
  onDelivery?: (body: Buffer, webhookId: string | undefined) => void,
): Promise<Sink> {
  const ids = new Set<string>();
  const stats = { received: 0, profiles: 0, firstAt: 0, lastAt: 0 };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "POST" && path.endsWith("/message")) {
      const chunks: Buffer[] = [];
      if (onDelivery) req.on("data", (chunk: Buffer) => chunks.push(chunk));
      else req.resume();
      req.on("end", () => {
        stats.received++;
        const id = req.headers["webhook-id"];
        const webhookId = typeof id === "string" ? id : undefined;
        if (webhookId) ids.add(webhookId);
        stats.lastAt = Date.now();
        if (stats.firstAt === 0) stats.firstAt = stats.lastAt;
        onDelivery?.(Buffer.concat(chunks), webhookId);
        res.writeHead(200, { "content-type": "application/json" }).end(OK);
      });
      return;
    }
    if (req.method === "GET" && path.startsWith("/v2/bot/profile/")) {
      stats.profiles++;
      const userId = decodeURIComponent(path.slice("/v2/bot/profile/".length));
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ userId, displayName: `Bench ${userId.slice(-4)}`, language: "ko" }));
      return;
    }
    if (req.method === "GET" && path === "/_stats") {
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ ...stats, unique: ids.size }));
      return;
    }
    req.resume();
    res.writeHead(404, { "content-type": "application/json" }).end('{"code":"404"}');
  });
  return new Promise((resolve) => {
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${bound}`,
        stats: () => ({ ...stats, unique: ids.size }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (import.meta.main) {
  const sink = await startSink(Number(process.argv[2] ?? 0));
  console.log(`sink:ready ${sink.url}`);
  const stop = () => void sink.close().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
