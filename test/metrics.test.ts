// GET /metrics (Prometheus): every documented metric exists and moves with what it counts, in the first scrape after;
// labels only take configured values; /healthz and /readyz answer.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { callApi, send } from "./support/partner-api.ts";
import { SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

/** The metric names docs/operations.md lists (its Metrics table), without the prom-client defaults. */
function documentedMetrics(): string[] {
  const page = readFileSync("docs/operations.md", "utf8");
  return [...page.matchAll(/^\| `(talkgate_[a-z_]+)(?:\{[^}]*\})?` \|/gm)].map((m) => m[1] as string);
}

describe("metrics and health", () => {
  let stack: Stack;
  before(async () => {
    // Deliveries die quickly here, so that the dead gauge can be seen to move.
    stack = await startStack({
      config: { delivery: { initialBackoffMs: 50, maxBackoffMs: 100, maxAgeMs: 400 } },
    });
  });
  after(() => stack.close());

  const scrape = async () => {
    const response = await fetch(`${stack.talkgate.url}/metrics`);
    assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
    return response.text();
  };
  const value = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : undefined;
  };
  const deliveries = async (state: string) =>
    (await callApi(stack, "GET", `/line/deliveries?sender_key=${SENDER_KEY}&state=${state}`)).body
      .deliveries as unknown[];
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 500; i++) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  test("the metrics served are exactly the documented ones", async () => {
    const served = [...(await scrape()).matchAll(/^# TYPE (talkgate_[a-z_]+) /gm)]
      .map((m) => m[1] as string)
      .filter((name) => !/^talkgate_(process|nodejs)_/.test(name));
    assert.deepEqual([...served].sort(), [...documentedMetrics()].sort());
  });

  test("webhooks, refusals, stored events, deliveries, media, LINE calls and sends move", async () => {
    const user = ev.randomUserId();
    const image = ev.imageEvent(ev.userSource(user));
    stack.emulator.setContent(image.message.id, { body: "jpeg", contentType: "image/jpeg" });
    await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "hi"), image]);
    await stack.emulator.sendWebhook(SENDER_KEY, [], { signature: "bad" });
    await stack.sink.waitFor((accepted) => accepted.length >= 2);
    const sent = await send(stack, {
      user_key: user,
      serial_number: "metrics-1",
      messages: [{ type: "text", text: "answer" }],
    });
    assert.equal(sent.status, 200);

    const text = await scrape();
    assert.equal(value(text, `talkgate_webhooks_received_total{sender_key="${SENDER_KEY}"}`), 2);
    assert.equal(value(text, `talkgate_webhooks_refused_total{sender_key="${SENDER_KEY}",code="-412"}`), 1);
    assert.equal(value(text, `talkgate_events_stored_total{sender_key="${SENDER_KEY}"}`), 2);
    assert.equal(value(text, `talkgate_delivery_attempts_total{partner="partner",outcome="delivered"}`), 2);
    assert.equal(value(text, `talkgate_delivery_lag_seconds_count{partner="partner"}`), 2);
    assert.equal(value(text, `talkgate_media_downloads_total{outcome="stored"}`), 1);
    assert.equal(value(text, `talkgate_line_api_calls_total{endpoint="content",status="200"}`), 1);
    assert.ok((value(text, `talkgate_line_api_calls_total{endpoint="profile",status="404"}`) ?? 0) >= 1);
    assert.equal(value(text, `talkgate_sends_total{method="reply"}`), 1);
    assert.equal(value(text, `talkgate_deliveries_waiting{state="pending"}`), 0);
    assert.equal(value(text, "talkgate_deliveries_dead"), 0);
    assert.equal(value(text, "talkgate_oldest_waiting_delivery_age_seconds"), 0);
    assert.ok(text.includes("talkgate_process_resident_memory_bytes"), "process metrics");
  });

  test("outbox gauges show the store as it is in the first scrape after a change, all from one reading", async () => {
    const user = ev.randomUserId();
    stack.sink.respondWith((request) =>
      (request.body as PartnerPayload | undefined)?.user_key === user ? { status: 503 } : undefined,
    );
    try {
      await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "fails")]);
      await until("a retrying delivery", async () => (await deliveries("retrying")).length === 1);
      let text = await scrape();
      assert.equal(value(text, `talkgate_deliveries_waiting{state="retrying"}`), 1);
      assert.ok((value(text, "talkgate_oldest_waiting_delivery_age_seconds") ?? 0) > 0);
      assert.ok(
        (value(text, `talkgate_delivery_attempts_total{partner="partner",outcome="retrying"}`) ?? 0) >= 1,
      );

      await until("a dead delivery", async () => (await deliveries("dead")).length === 1);
      text = await scrape();
      assert.equal(value(text, "talkgate_deliveries_dead"), 1);
      assert.equal(value(text, `talkgate_deliveries_waiting{state="retrying"}`), 0);
      assert.equal(value(text, "talkgate_oldest_waiting_delivery_age_seconds"), 0);
      assert.equal(value(text, `talkgate_delivery_attempts_total{partner="partner",outcome="dead"}`), 1);
    } finally {
      stack.sink.respondWith(undefined);
    }
  });

  test("a failed send counts as failed", async () => {
    stack.emulator.failNext("/v2/bot/message/push", { status: 400 });
    const before = value(await scrape(), `talkgate_sends_total{method="failed"}`) ?? 0;
    const answer = await send(stack, {
      user_key: ev.randomUserId(),
      serial_number: "metrics-fail",
      messages: [{ type: "text", text: "no" }],
    });
    assert.equal(answer.status, 400);
    assert.equal(value(await scrape(), `talkgate_sends_total{method="failed"}`), before + 1);
  });

  test("sender_key labels take configured channels only: random webhook URLs share one series", async () => {
    const before = await scrape();
    const keys = Array.from({ length: 200 }, (_, i) => `random-${i}-${Date.now()}`);
    for (const key of keys) {
      const response = await fetch(`${stack.talkgate.url}/line/webhook/${key}`, {
        method: "POST",
        body: "{}",
      });
      assert.equal(response.status, 404);
    }
    const text = await scrape();
    assert.ok(!keys.some((key) => text.includes(key)), "no series named after a request's sender_key");
    const unknown = (t: string, series: string) => value(t, series) ?? 0;
    assert.equal(
      unknown(text, 'talkgate_webhooks_received_total{sender_key="unknown"}') -
        unknown(before, 'talkgate_webhooks_received_total{sender_key="unknown"}'),
      200,
    );
    assert.equal(
      unknown(text, 'talkgate_webhooks_refused_total{sender_key="unknown",code="-406"}') -
        unknown(before, 'talkgate_webhooks_refused_total{sender_key="unknown",code="-406"}'),
      200,
    );
    assert.ok(text.length - before.length < 2_000, `/metrics grew by ${text.length - before.length} bytes`);
  });

  test("healthz and readyz", async () => {
    assert.deepEqual(await (await fetch(`${stack.talkgate.url}/healthz`)).json(), { status: "ok" });
    assert.deepEqual(await (await fetch(`${stack.talkgate.url}/readyz`)).json(), { status: "ready" });
  });
});
