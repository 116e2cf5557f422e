// Unit tests for HttpPartnerTransport against a local HTTP server: acks, failures, headers, long answers, refusals.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { standardWebhookSignature } from "../core/signature.ts";
import { HttpPartnerTransport, type PartnerEndpoint } from "./http-partner-transport.ts";

const clock = { now: () => 1_700_000_000_000 };
const LIMIT = { timeout: 10_000 };

interface Received {
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
  port: number | undefined;
}

/** A partner on port 0 that answers with `answer`; records what it received. */
async function partner(answer: (res: ServerResponse, received: Received) => void) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const entry = {
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        port: req.socket.remotePort,
      };
      received.push(entry);
      answer(res, entry);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/line`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { url, received, close };
}

function transportFor(url: string, extra: Partial<PartnerEndpoint> = {}, timeoutMs = 5_000) {
  return new HttpPartnerTransport([{ id: "p", receiveUrl: url, allowPrivateNetwork: true, ...extra }], {
    timeoutMs,
    clock,
  });
}

test(
  "a 2xx is an ack; the payload goes to {receiveUrl}/message with its webhook id and signature",
  LIMIT,
  async () => {
    const sink = await partner((res) => res.writeHead(202).end('{"code":"0"}'));
    const transport = transportFor(`${sink.url}/`, { signingSecret: "whsec_c2VjcmV0" });
    try {
      const result = await transport.send("p", "SERIAL-1", '{"a":1}');
      assert.deepEqual(result, { ok: true, status: 202 });
      const [got] = sink.received;
      assert.ok(got);
      assert.equal(got.url, "/line/message");
      assert.equal(got.body, '{"a":1}');
      assert.equal(got.headers["content-type"], "application/json; charset=utf-8");
      assert.equal(got.headers["webhook-id"], "SERIAL-1");
      assert.equal(got.headers["webhook-timestamp"], "1700000000");
      assert.equal(
        got.headers["webhook-signature"],
        standardWebhookSignature("whsec_c2VjcmV0", "SERIAL-1", 1_700_000_000, '{"a":1}'),
      );
    } finally {
      await transport.close();
      await sink.close();
    }
  },
);

test("without a signing secret no signature headers are sent", LIMIT, async () => {
  const sink = await partner((res) => res.writeHead(200).end());
  const transport = transportFor(sink.url);
  try {
    assert.deepEqual(await transport.send("p", "S", "{}"), { ok: true, status: 200 });
    assert.equal(sink.received[0]?.headers["webhook-signature"], undefined);
    assert.equal(sink.received[0]?.headers["webhook-timestamp"], undefined);
  } finally {
    await transport.close();
    await sink.close();
  }
});

test("any other status is a failed attempt, and so is a redirect (never followed)", LIMIT, async () => {
  const statuses = [500, 404, 429, 302];
  const sink = await partner((res) => {
    const status = statuses[sink.received.length - 1] ?? 500;
    res.writeHead(status, status === 302 ? { location: "http://127.0.0.1:1/" } : {}).end("no");
  });
  const transport = transportFor(sink.url);
  try {
    for (const status of statuses) {
      assert.deepEqual(await transport.send("p", "S", "{}"), { ok: false, status, reason: `HTTP ${status}` });
    }
    assert.equal(sink.received.length, statuses.length);
  } finally {
    await transport.close();
    await sink.close();
  }
});

test("answers are drained so the connection is reused; a very long one still counts", LIMIT, async () => {
  const sink = await partner((res, got) =>
    res.writeHead(200).end(got.body === "long" ? "x".repeat(1024 * 1024) : "x".repeat(10_000)),
  );
  const transport = transportFor(sink.url);
  try {
    for (let i = 0; i < 10; i++)
      assert.deepEqual(await transport.send("p", `S${i}`, "{}"), { ok: true, status: 200 });
    // undici may open a second connection while the first one's answer completes; never one per send.
    const connections = new Set(sink.received.map((entry) => entry.port));
    assert.ok(connections.size <= 2, `${connections.size} connections for 10 sends in a row`);
    assert.deepEqual(await transport.send("p", "L", "long"), { ok: true, status: 200 });
    assert.deepEqual(await transport.send("p", "after", "{}"), { ok: true, status: 200 });
  } finally {
    await transport.close();
    await sink.close();
  }
});

test(
  "no answer within the timeout, a refused connection, an unknown partner: failed attempts with a reason",
  LIMIT,
  async () => {
    const silent = await partner(() => {});
    const slow = transportFor(silent.url, {}, 100);
    try {
      assert.deepEqual(await slow.send("p", "S", "{}"), { ok: false, status: null, reason: "timed out" });
      assert.deepEqual(await slow.send("nobody", "S", "{}"), {
        ok: false,
        status: null,
        reason: "no partner nobody configured",
      });
    } finally {
      await slow.close();
      await silent.close();
    }
    const refused = transportFor(silent.url);
    try {
      assert.deepEqual(await refused.send("p", "S", "{}"), {
        ok: false,
        status: null,
        reason: "ECONNREFUSED",
      });
    } finally {
      await refused.close();
    }
  },
);

test(
  "a private IP literal is refused before any connection unless the partner allows private networks",
  LIMIT,
  async () => {
    const sink = await partner((res) => res.writeHead(200).end());
    const transport = transportFor(sink.url, { allowPrivateNetwork: false });
    try {
      assert.deepEqual(await transport.send("p", "S", "{}"), {
        ok: false,
        status: null,
        reason: "destination is a private address",
      });
      assert.equal(sink.received.length, 0);
    } finally {
      await transport.close();
      await sink.close();
    }
  },
);

test(
  "an attempt ends at its deadline however the partner trickles, and its connection is closed",
  LIMIT,
  async () => {
    const closed: string[] = [];
    const trickle = (status: number) => (res: ServerResponse) => {
      res.writeHead(status, { "content-type": "application/json" });
      const timer = setInterval(() => res.write(" "), 50);
      res.on("close", () => {
        clearInterval(timer);
        closed.push(String(status));
      });
    };
    for (const [status, expected] of [
      [200, { ok: true, status: 200 }],
      [503, { ok: false, status: 503, reason: "HTTP 503" }],
    ] as const) {
      const sink = await partner(trickle(status));
      const transport = transportFor(sink.url, {}, 400);
      try {
        // undici's bodyTimeout restarts with every byte; only the attempt's own deadline ends this.
        assert.deepEqual(await transport.send("p", "ID", "{}"), expected);
        for (let i = 0; i < 100 && !closed.includes(String(status)); i++)
          await new Promise((r) => setTimeout(r, 10));
        assert.ok(closed.includes(String(status)), "the trickling answer's connection was closed");
      } finally {
        await transport.close();
        await sink.close();
      }
    }
  },
);

test("a partner that never answers fails the attempt at its deadline", LIMIT, async () => {
  const sink = await partner(() => {});
  const transport = transportFor(sink.url, {}, 300);
  try {
    const result = await transport.send("p", "ID", "{}");
    assert.deepEqual(result, { ok: false, status: null, reason: "timed out" });
  } finally {
    await transport.close();
    await sink.close();
  }
});
