// The webhook's commit deadline: a store that does not answer in time gets the webhook refused (5xx) in time,
// and a commit that completes after the deadline still gets what follows a commit.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import pino from "pino";
import { type IngestDeps, ingestWebhook } from "./ingest-webhook.ts";
import type { EventLog } from "./store.ts";

const SECRET = "secret";
const body = Buffer.from(
  JSON.stringify({
    destination: "U0",
    events: [
      {
        type: "message",
        mode: "active",
        timestamp: 1_700_000_000_000,
        webhookEventId: "01H0000000000000000000000A",
        deliveryContext: { isRedelivery: false },
        source: { type: "user", userId: "U1" },
        replyToken: "r",
        message: { id: "1", type: "text", text: "hi", quoteToken: "q" },
      },
    ],
  }),
);
const signature = createHmac("sha256", SECRET).update(body).digest("base64");

function deps(ingest: EventLog["ingest"], prefetched: string[]): IngestDeps {
  return {
    events: { ingest } as EventLog,
    clock: { now: () => 1_700_000_000_500 },
    commitDeadlineMs: 50,
    mediaWaitMs: 30_000,
    findChannel: () => ({
      senderKey: "1",
      channelSecret: SECRET,
      partnerId: "p",
      forwardEventTypes: new Set(["message"]),
    }),
    names: { prefetch: (_key, _chat, userId) => prefetched.push(userId) },
    files: { remove: async () => {} },
    pace: { observeCommit: () => {} },
    metrics: { stage: () => {} },
    logger: pino({ level: "silent" }),
  };
}

test("a commit that does not end by the deadline is refused; when it ends later, what follows a commit still runs", async () => {
  let finish = () => {};
  const prefetched: string[] = [];
  const slow = deps(
    (request) =>
      new Promise((resolve) => {
        finish = () =>
          resolve({
            stored: request.events.map((event, i) => ({
              serialNumber: String(i),
              facts: event.facts,
              forward: event.forward,
              fetchesMedia: false,
            })),
            duplicates: 0,
            unsentFiles: [],
          });
      }),
    prefetched,
  );
  await assert.rejects(ingestWebhook(slow, { senderKey: "1", body, signature }), /longer than 50 ms/);
  finish();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(prefetched, ["U1"], "the late commit's user name is still looked up");
});

test("a commit within the deadline answers with its result; a failing one rejects with its own error", async () => {
  const prefetched: string[] = [];
  const fast = deps(async () => ({ stored: [], duplicates: 1, unsentFiles: [] }), prefetched);
  assert.deepEqual(await ingestWebhook(fast, { senderKey: "1", body, signature }), {
    stored: [],
    duplicates: 1,
    unsentFiles: [],
  });
  const failing = deps(async () => Promise.reject(new Error("connection refused")), prefetched);
  await assert.rejects(ingestWebhook(failing, { senderKey: "1", body, signature }), /connection refused/);
});
