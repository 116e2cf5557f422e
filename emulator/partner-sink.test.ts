// Tests of the partner sink over loopback HTTP: recording, Standard Webhooks verification, scripted answers.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { afterEach, describe, test } from "node:test";
import { type PartnerSink, type PartnerSinkOptions, startPartnerSink } from "./partner-sink.ts";

const payload = { chat_type: "LINE", serial_number: "Uae87c693e28-0001-6156B47C", content: { text: "สวัสดี" } };
let sink: PartnerSink | undefined;

afterEach(async () => {
  await sink?.close();
  sink = undefined;
});

async function start(options: PartnerSinkOptions = {}): Promise<PartnerSink> {
  sink = await startPartnerSink(options);
  return sink;
}

function sign(key: Buffer, id: string, timestamp: string, body: string): string {
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
  return { status: response.status, text: await response.text() };
}

describe("partner sink", () => {
  test("records POST …/message requests and answers 200 {code:0}", async () => {
    const s = await start();
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const raw = JSON.stringify(payload);
    const answer = await post(`${s.url}/partner/a/message`, raw, { "webhook-id": "x" });
    assert.deepEqual(answer, { status: 200, text: '{"code":"0"}' });
    const got = s.received[0];
    assert.ok(got);
    assert.deepEqual([got.path, got.raw, got.status], ["/partner/a/message", raw, 200]);
    assert.deepEqual(got.body, payload);
    assert.equal(got.headers["webhook-id"], "x");
    assert.equal("signatureValid" in got, false);
    assert.deepEqual(s.accepted, [payload]);
    assert.equal((await post(`${s.url}/other`, raw)).status, 404);
    assert.equal(s.received.length, 1);
  });

  test("verifies signatures with the standardwebhooks library: any listed v1 signature, fresh timestamps", async () => {
    const key = Buffer.from("0123456789abcdef0123456789abcdef");
    const s = await start({ signingSecret: `whsec_${key.toString("base64")}`, rejectInvalidSignature: true });
    const raw = JSON.stringify(payload);
    const now = String(Math.floor(Date.now() / 1000));
    const stale = String(Math.floor(Date.now() / 1000) - 600);
    const answers = [
      await post(`${s.url}/message`, raw, {
        "webhook-id": "id1",
        "webhook-timestamp": now,
        "webhook-signature": sign(key, "id1", now, raw),
      }),
      await post(`${s.url}/message`, raw, {
        "webhook-id": "id2",
        "webhook-timestamp": now,
        "webhook-signature": `v1,bm9wZQ== ${sign(key, "id2", now, raw)}`,
      }),
      await post(`${s.url}/message`, raw, {
        "webhook-id": "id3",
        "webhook-timestamp": now,
        "webhook-signature": sign(key, "id3", now, `${raw} `),
      }),
      await post(`${s.url}/message`, raw, {
        "webhook-id": "id4",
        "webhook-timestamp": stale,
        "webhook-signature": sign(key, "id4", stale, raw),
      }),
      await post(`${s.url}/message`, raw),
    ];
    assert.deepEqual(
      s.received.map((r) => [r.signatureValid, r.signatureError]),
      [
        [true, undefined],
        [true, undefined],
        [false, "No matching signature found"],
        [false, "Message timestamp too old"],
        [false, "Missing required headers"],
      ],
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 401, 401, 401],
    );
    assert.equal(s.accepted.length, 2);
  });

  test("failNext answers the next requests with a status; only 2xx are accepted", async () => {
    const s = await start();
    s.failNext(503, 2);
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await post(`${s.url}/message`, JSON.stringify({ n: i }))).status);
    assert.deepEqual(statuses, [503, 503, 200]);
    assert.deepEqual(
      s.received.map((r) => r.status),
      [503, 503, 200],
    );
    assert.deepEqual(s.accepted, [{ n: 2 }]);
  });

  test("respondWith scripts answers; undefined falls back to 200", async () => {
    const seen: unknown[] = [];
    const s = await start({ onPayload: (p) => seen.push(p) });
    s.respondWith((req) => ((req.body as { n: number }).n === 1 ? { status: 500, body: "boom" } : undefined));
    const a = await post(`${s.url}/message`, '{"n":1}');
    const b = await post(`${s.url}/message`, '{"n":2}');
    assert.deepEqual([a, b.status], [{ status: 500, text: "boom" }, 200]);
    assert.deepEqual(seen, [{ n: 2 }]);
    s.respondWith(undefined);
    assert.equal((await post(`${s.url}/message`, '{"n":1}')).status, 200);
    assert.equal((await post(`${s.url}/message`, "not json")).status, 400);
  });

  test("waitFor resolves when the predicate holds and rejects helpfully on timeout", async () => {
    const s = await start();
    s.respondWith(() => ({ status: 200, delayMs: 50 }));
    const waiting = s.waitFor((accepted) => accepted.length === 2, 2_000);
    await Promise.all([post(`${s.url}/message`, '{"n":1}'), post(`${s.url}/message`, '{"n":2}')]);
    assert.equal((await waiting).length, 2);
    await assert.rejects(
      s.waitFor((accepted) => accepted.length > 5, 100),
      /timed out after 100 ms with 2 accepted/,
    );
  });

  test("a caller that gives up during a delay is not counted as accepted", async () => {
    const s = await start();
    s.respondWith(() => ({ status: 200, delayMs: 300 }));
    await assert.rejects(
      fetch(`${s.url}/message`, { method: "POST", body: "{}", signal: AbortSignal.timeout(50) }),
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(s.received[0]?.aborted, true);
    assert.deepEqual(s.accepted, []);
  });
});
