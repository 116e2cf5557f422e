// Tests of the LINE emulator's content API over loopback HTTP: streamed, generated, paced, cut and not-ready bodies.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { get } from "node:http";
import { connect } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Agent, request } from "undici";
import { CONTENT_CHUNK, generatedContent, generatedSha256 } from "./content-stream.ts";
import { type LineEmulator, startLineEmulator } from "./line-emulator.ts";

const A = { channelId: "1656168303", channelSecret: "secret-a", accessToken: "token-a" };
const AUTH = { authorization: `Bearer ${A.accessToken}` };
const MiB = 1024 * 1024;

let emulator: LineEmulator;
// A fresh connection per request, so a cut connection never affects the next request.
const agent = new Agent({ pipelining: 0, keepAliveTimeout: 1 });

before(async () => {
  emulator = await startLineEmulator({ channels: [A] });
});

after(async () => {
  await emulator.close();
  await agent.close();
});

beforeEach(() => {
  emulator.clearRecords();
  emulator.clearFaults();
});

type Fetched = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  length: number;
  sha256: string;
  text: string;
  error?: Error;
  ms: number;
};

// GETs a path and consumes the body as a stream (hash and length only; the first 1 KiB kept as text).
async function fetchContent(path: string, headers: Record<string, string> = AUTH): Promise<Fetched> {
  const started = performance.now();
  const response = await request(`${emulator.url}${path}`, { headers, dispatcher: agent });
  const hash = createHash("sha256");
  let length = 0;
  let head = Buffer.alloc(0);
  let error: Error | undefined;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      if (head.length < 1024) head = Buffer.concat([head, chunk.subarray(0, 1024 - head.length)]);
      length += chunk.length;
    }
  } catch (caught) {
    error = caught instanceof Error ? caught : new Error(String(caught));
  }
  const fetched: Fetched = {
    status: response.statusCode,
    headers: response.headers,
    length,
    sha256: hash.digest("hex"),
    text: head.toString("utf8"),
    ms: performance.now() - started,
  };
  if (error !== undefined) fetched.error = error;
  return fetched;
}

// Sends a GET on a raw socket and resolves with every byte received until the server closes.
function rawGet(path: string): Promise<string> {
  const { hostname, port } = new URL(emulator.url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: ${AUTH.authorization}\r\nConnection: keep-alive\r\n\r\n`,
      );
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
  });
}

function splitResponse(raw: string): [string, string] {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end >= 0, `no complete head in ${JSON.stringify(raw)}`);
  return [raw.slice(0, end + 2), raw.slice(end + 4)];
}

async function streamSha256(stream: AsyncIterable<Buffer>): Promise<{ sha256: string; length: number }> {
  const hash = createHash("sha256");
  let length = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    length += chunk.length;
  }
  return { sha256: hash.digest("hex"), length };
}

describe("generated content", () => {
  test("is deterministic per seed, exact in length, and its sha256 matches generatedSha256", async () => {
    const size = 3 * CONTENT_CHUNK + 7;
    const a = await streamSha256(generatedContent(size, 42));
    const b = await streamSha256(generatedContent(size, 42));
    const other = await streamSha256(generatedContent(size, 43));
    assert.equal(a.length, size);
    assert.equal(a.sha256, b.sha256);
    assert.notEqual(a.sha256, other.sha256);
    assert.equal(await generatedSha256(size, 42), a.sha256);
    // A shorter body is a prefix of a longer one with the same seed.
    const chunks: Buffer[] = [];
    for await (const chunk of generatedContent(10, 42)) chunks.push(chunk);
    const long: Buffer[] = [];
    for await (const chunk of generatedContent(CONTENT_CHUNK, 42)) long.push(chunk);
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat(long).subarray(0, 10));
    assert.equal((await streamSha256(generatedContent(0))).length, 0);
    assert.equal(await generatedSha256(0), createHash("sha256").digest("hex"));
    assert.throws(() => generatedContent(-1), RangeError);
  });
});

describe("content API", () => {
  test("200 with the bytes, Content-Type and Content-Length; octet-stream by default", async () => {
    emulator.setContent("c1", { body: "PNGDATA", contentType: "image/png" });
    emulator.setContent("c2", { body: Buffer.from([0, 1, 2, 255]) });
    const png = await fetchContent("/v2/bot/message/c1/content");
    assert.deepEqual(
      [png.status, png.headers["content-type"], png.headers["content-length"], png.text],
      [200, "image/png", "7", "PNGDATA"],
    );
    const raw = await fetchContent("/v2/bot/message/c2/content");
    assert.deepEqual(
      [raw.status, raw.headers["content-type"], raw.headers["content-length"], raw.length],
      [200, "application/octet-stream", "4", 4],
    );
    emulator.setContent("c3", {});
    const empty = await fetchContent("/v2/bot/message/c3/content");
    assert.deepEqual([empty.status, empty.headers["content-length"], empty.length], [200, "0", 0]);
  });

  test("a generated body arrives byte-exact with its full Content-Length", async () => {
    const size = 5 * MiB + 3;
    emulator.setContent("g1", { generated: { size, seed: 7 }, contentType: "video/mp4" });
    const got = await fetchContent("/v2/bot/message/g1/content");
    assert.equal(got.status, 200);
    assert.equal(got.headers["content-type"], "video/mp4");
    assert.equal(got.headers["content-length"], String(size));
    assert.equal(got.length, size);
    assert.equal(got.sha256, await generatedSha256(size, 7));
    assert.equal(got.error, undefined);
  });

  test("300 MB stream through while the process's RSS stays far below the size", async () => {
    const size = 300 * MiB;
    const expected = generatedSha256(size, 3);
    await expected;
    emulator.setContent("big", { generated: { size, seed: 3 } });
    // The client's own garbage (a fresh buffer per socket read) is collected every 16 MiB, so the
    // measure shows what is retained rather than how lazy the collector is.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    const response = await request(`${emulator.url}/v2/bot/message/big/content`, {
      headers: AUTH,
      dispatcher: agent,
    });
    assert.equal(response.headers["content-length"], String(size));
    const hash = createHash("sha256");
    let length = 0;
    let sinceGc = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      length += chunk.length;
      sinceGc += chunk.length;
      if (sinceGc >= 16 * MiB) {
        peak = Math.max(peak, process.memoryUsage().rss);
        gc();
        sinceGc = 0;
      }
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.equal(length, size);
    assert.equal(hash.digest("hex"), await expected);
    const growth = peak - before;
    assert.ok(growth < 100 * MiB, `RSS grew by ${Math.round(growth / MiB)} MiB`);
  });

  test("notReadyTimes: 202 with an empty body twice, then 200; transcoding processing → succeeded", async () => {
    emulator.setContent("v1", { body: "VIDEO", contentType: "video/mp4", notReadyTimes: 2 });
    const transcoding = async (): Promise<unknown> =>
      JSON.parse((await fetchContent("/v2/bot/message/v1/content/transcoding")).text);
    assert.deepEqual(await transcoding(), { status: "processing" });
    const first = await fetchContent("/v2/bot/message/v1/content");
    assert.deepEqual([first.status, first.length], [202, 0]);
    assert.deepEqual(await transcoding(), { status: "processing" });
    assert.equal((await fetchContent("/v2/bot/message/v1/content")).status, 202);
    assert.deepEqual(await transcoding(), { status: "succeeded" });
    const ready = await fetchContent("/v2/bot/message/v1/content");
    assert.deepEqual([ready.status, ready.text], [200, "VIDEO"]);
    assert.equal(emulator.contentRequests("v1"), 3);
  });

  test("countTranscodingPolls: a fetcher polling transcoding sees it succeed", async () => {
    emulator.setContent("v2", { body: "A", notReadyTimes: 2, countTranscodingPolls: true });
    const poll = async (): Promise<unknown> =>
      JSON.parse((await fetchContent("/v2/bot/message/v2/content/transcoding")).text);
    assert.deepEqual(await poll(), { status: "processing" });
    assert.deepEqual(await poll(), { status: "processing" });
    assert.deepEqual(await poll(), { status: "succeeded" });
    assert.equal((await fetchContent("/v2/bot/message/v2/content")).status, 200);
    assert.equal(emulator.contentRequests("v2"), 1);
  });

  test("transcoding failed: the transcoding endpoint says so and the content answers 404", async () => {
    emulator.setContent("v3", { body: "x", transcoding: "failed" });
    assert.equal((await fetchContent("/v2/bot/message/v3/content")).status, 404);
    assert.deepEqual(JSON.parse((await fetchContent("/v2/bot/message/v3/content/transcoding")).text), {
      status: "failed",
    });
  });

  test("a cut mid-body: full Content-Length, short body and an error; the retry gets it all", async () => {
    const size = 2 * MiB;
    emulator.setContent("cut", { generated: { size, seed: 9 }, cutAfterBytes: 100_000 });
    const cut = await fetchContent("/v2/bot/message/cut/content");
    assert.equal(cut.status, 200);
    assert.equal(cut.headers["content-length"], String(size));
    assert.ok(cut.error !== undefined, "the client sees the connection end early");
    assert.ok(cut.length <= 100_000, `got ${cut.length} bytes`);
    const whole = await fetchContent("/v2/bot/message/cut/content");
    assert.deepEqual([whole.status, whole.length, whole.error], [200, size, undefined]);
    assert.equal(whole.sha256, await generatedSha256(size, 9));
    assert.equal(emulator.contentRequests("cut"), 2);
  });

  test("the bytes before the cut do go out; cutTimes cuts several answers; a cut at 0 still sends 200", async () => {
    const body = "0123456789".repeat(1000);
    emulator.setContent("cut2", { body, contentType: "text/plain", cutAfterBytes: 25, cutTimes: 2 });
    for (let i = 0; i < 2; i++) {
      // A raw socket shows exactly what was sent (an HTTP client drops buffered bytes on the error).
      const raw = await rawGet("/v2/bot/message/cut2/content");
      const [head, sentBody] = splitResponse(raw);
      assert.match(head, /^HTTP\/1\.1 200 /);
      assert.match(head, /\r\ncontent-length: 10000\r\n/i);
      assert.equal(sentBody, body.slice(0, 25));
    }
    const whole = await fetchContent("/v2/bot/message/cut2/content");
    assert.deepEqual([whole.length, whole.error], [10_000, undefined]);
    emulator.setContent("cut3", { body: "abc", cutAfterBytes: 0 });
    const [zeroHead, zeroBody] = splitResponse(await rawGet("/v2/bot/message/cut3/content"));
    assert.match(zeroHead, /^HTTP\/1\.1 200 /);
    assert.match(zeroHead, /\r\ncontent-length: 3\r\n/i);
    assert.equal(zeroBody, "");
    assert.equal((await fetchContent("/v2/bot/message/cut3/content")).text, "abc");
  });

  test("bytesPerSecond slows the body down to about that rate", async () => {
    const size = 150_000;
    emulator.setContent("slow", { generated: { size, seed: 1 }, bytesPerSecond: 600_000 });
    emulator.setContent("fast", { generated: { size, seed: 1 } });
    const fast = await fetchContent("/v2/bot/message/fast/content");
    const slow = await fetchContent("/v2/bot/message/slow/content");
    assert.equal(slow.sha256, fast.sha256);
    assert.equal(slow.length, size);
    // 150 kB at 600 kB/s: about 250 ms.
    assert.ok(slow.ms >= 200, `took ${slow.ms} ms`);
    assert.ok(slow.ms < 2_000, `took ${slow.ms} ms`);
    assert.ok(slow.ms > fast.ms);
  });

  test("contentLength: false sends the body chunked without Content-Length", async () => {
    emulator.setContent("chunked", { generated: { size: 200_000, seed: 5 }, contentLength: false });
    const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      get(`${emulator.url}/v2/bot/message/chunked/content`, { headers: AUTH }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.headers));
        res.on("error", reject);
      }).on("error", reject);
    });
    assert.equal(headers["content-length"], undefined);
    assert.equal(headers["transfer-encoding"], "chunked");
    const got = await fetchContent("/v2/bot/message/chunked/content");
    assert.deepEqual([got.length, got.sha256], [200_000, await generatedSha256(200_000, 5)]);
  });

  test("HEAD answers the head of a big body without generating it", async () => {
    emulator.setContent("head", { generated: { size: 400 * MiB }, contentType: "video/mp4" });
    const started = performance.now();
    const response = await request(`${emulator.url}/v2/bot/message/head/content`, {
      method: "HEAD",
      headers: AUTH,
      dispatcher: agent,
    });
    await response.body.dump();
    assert.deepEqual(
      [response.statusCode, response.headers["content-length"], response.headers["content-type"]],
      [200, String(400 * MiB), "video/mp4"],
    );
    assert.ok(performance.now() - started < 200);
  });

  test("faults, 404 and 410 sequences; every content GET counted and recorded without a body", async () => {
    assert.equal((await fetchContent("/v2/bot/message/f1/content")).status, 404);
    emulator.failNext(/\/message\/f1\/content$/, { status: 503 });
    emulator.failNext(/\/message\/f1\/content$/, { status: 429 });
    emulator.setContent("f1", { body: "DATA", notReadyTimes: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetchContent("/v2/bot/message/f1/content")).status);
    assert.deepEqual(statuses, [503, 429, 202, 200]);
    await fetchContent("/v2/bot/message/f1/content/transcoding");
    await fetchContent("/v2/bot/message/f1/content/preview");
    assert.equal(emulator.contentRequests("f1"), 5);
    assert.equal(emulator.contentRequests("nope"), 0);
    const recorded = emulator.calls.filter((c) => c.path === "/v2/bot/message/f1/content");
    assert.deepEqual(
      recorded.map((c) => [c.status, c.body, c.channelId]),
      [404, 503, 429, 202, 200].map((s) => [s, undefined, A.channelId]),
    );
    emulator.setContent("f1", { body: "DATA", gone: true });
    assert.equal((await fetchContent("/v2/bot/message/f1/content")).status, 410);
    assert.equal((await fetchContent("/v2/bot/message/f1/content/transcoding")).status, 410);
    emulator.clearRecords();
    assert.equal(emulator.contentRequests("f1"), 0);
  });

  test("a fault with a delay holds the answer back; a fault on a big body never starts the body", async () => {
    emulator.setContent("d1", { generated: { size: 50 * MiB } });
    emulator.failNext("/message/d1/content", { status: 500, delayMs: 100 });
    const failed = await fetchContent("/v2/bot/message/d1/content");
    assert.deepEqual([failed.status, JSON.parse(failed.text)], [500, { message: "Internal server error" }]);
    assert.ok(failed.ms >= 90);
  });

  test("authentication is required on every content endpoint (and those requests count)", async () => {
    emulator.setContent("auth", { body: "secret", preview: "JPEG" });
    for (const suffix of ["", "/transcoding", "/preview"]) {
      const none = await fetchContent(`/v2/bot/message/auth/content${suffix}`, {});
      assert.equal(none.status, 401);
      const wrong = await fetchContent(`/v2/bot/message/auth/content${suffix}`, {
        authorization: "Bearer x",
      });
      assert.equal(wrong.status, 401);
    }
    assert.equal(emulator.contentRequests("auth"), 2);
    const preview = await fetchContent("/v2/bot/message/auth/content/preview");
    assert.deepEqual(
      [preview.status, preview.headers["content-type"], preview.text],
      [200, "image/jpeg", "JPEG"],
    );
  });

  test("a client that hangs up mid-body does not disturb later requests", async () => {
    emulator.setContent("hangup", { generated: { size: 200 * MiB, seed: 2 } });
    const response = await request(`${emulator.url}/v2/bot/message/hangup/content`, {
      headers: AUTH,
      dispatcher: agent,
    });
    let taken = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      taken += chunk.length;
      if (taken > MiB) break;
    }
    emulator.setContent("after", { body: "ok" });
    assert.equal((await fetchContent("/v2/bot/message/after/content")).text, "ok");
  });
});

describe("control API for content", () => {
  test("POST /_emulator/content/:id registers text, base64 and generated bodies", async () => {
    const post = async (
      id: string,
      body: unknown,
    ): Promise<{ status: number; json: Record<string, unknown> }> => {
      const response = await fetch(`${emulator.url}/_emulator/content/${id}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    assert.deepEqual((await post("t1", { text: "héllo", contentType: "text/plain" })).json, {
      messageId: "t1",
      size: 6,
      contentRequests: 0,
    });
    const text = await fetchContent("/v2/bot/message/t1/content");
    assert.deepEqual([text.text, text.headers["content-type"]], ["héllo", "text/plain"]);
    await post("t2", { base64: Buffer.from([1, 2, 3]).toString("base64") });
    assert.equal((await fetchContent("/v2/bot/message/t2/content")).length, 3);
    await post("t3", { generated: { size: 100_000, seed: 4 }, notReadyTimes: 1, contentType: "audio/m4a" });
    assert.equal((await fetchContent("/v2/bot/message/t3/content")).status, 202);
    const generated = await fetchContent("/v2/bot/message/t3/content");
    assert.deepEqual(
      [generated.status, generated.headers["content-type"], generated.sha256],
      [200, "audio/m4a", await generatedSha256(100_000, 4)],
    );
    const state = await fetch(`${emulator.url}/_emulator/content/t3`).then((r) => r.json());
    assert.deepEqual(state, {
      messageId: "t3",
      known: true,
      contentRequests: 2,
      notReadyAnswers: 1,
      cutAnswers: 0,
    });
    assert.equal((await post("t4", { generated: { size: -1 } })).status, 400);
    assert.equal((await post("t4", { notReadyTimes: "2" })).status, 400);
    assert.equal((await post("t4", [])).status, 400);
    // The control API is not recorded as LINE API calls.
    assert.ok(emulator.calls.every((c) => !c.path.startsWith("/_emulator")));
  });
});
