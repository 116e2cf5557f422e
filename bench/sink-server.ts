// The benchmark's fast partner (and LINE profile API): answers at once and counts what it received.
//   POST …/message            → 200 {"code":"0"}   (a delivery; counted, unique by webhook-id)
//   GET  /v2/bot/profile/:id  → 200 a profile       (LINE getProfile, so user names resolve instantly)
//   GET  /_stats              → {"received","unique","profiles","firstAt","lastAt"}
// usage: node bench/sink-server.ts <port>
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
const OK = JSON.stringify({ code: "0" });
const ids = new Set<string>();
let received = 0;
let profiles = 0;
let firstAt = 0;
let lastAt = 0;

const server = createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  if (req.method === "POST" && path.endsWith("/message")) {
    req.resume();
    req.on("end", () => {
      received++;
      const id = req.headers["webhook-id"];
      if (typeof id === "string") ids.add(id);
      lastAt = Date.now();
      if (firstAt === 0) firstAt = lastAt;
      res.writeHead(200, { "content-type": "application/json" }).end(OK);
    });
    return;
  }
  if (req.method === "GET" && path.startsWith("/v2/bot/profile/")) {
    profiles++;
    const userId = decodeURIComponent(path.slice("/v2/bot/profile/".length));
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ userId, displayName: `Bench ${userId.slice(-4)}`, language: "ko" }));
    return;
  }
  if (req.method === "GET" && path === "/_stats") {
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ received, unique: ids.size, profiles, firstAt, lastAt }));
    return;
  }
  req.resume();
  res.writeHead(404, { "content-type": "application/json" }).end('{"code":"404"}');
});

server.listen(port, "127.0.0.1", () => console.log(`sink:ready ${port}`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
