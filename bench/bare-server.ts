// The benchmark's ceiling: a bare node:http server doing only what a webhook intake cannot skip —
// read the body, check x-line-signature (HMAC-SHA256, constant time), JSON.parse it, answer 200.
// usage: node bench/bare-server.ts <port> <channelSecret>
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
const secret = process.argv[3] ?? "";
const OK = JSON.stringify({ code: "0" });

function verify(body: Buffer, signature: string | string[] | undefined): boolean {
  if (typeof signature !== "string" || signature === "") return false;
  const expected = createHmac("sha256", secret).update(body).digest();
  const given = Buffer.from(signature, "base64");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end(OK);
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    if (!verify(body, req.headers["x-line-signature"])) {
      res.writeHead(401, { "content-type": "application/json" }).end('{"code":"-412"}');
      return;
    }
    try {
      JSON.parse(body.toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json" }).end('{"code":"-405"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(OK);
  });
});

server.listen(port, "127.0.0.1", () => console.log(`bare:ready ${port}`));
const stop = () => server.close(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
