// GET /metrics (Prometheus) counts webhooks, events, deliveries, media, LINE calls and sends; /healthz and /readyz answer.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import { SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

describe("metrics and health", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
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

  test("webhooks, refusals, stored events, deliveries, media, LINE calls and outbox gauges are exposed", async () => {
    const user = ev.randomUserId();
    const image = ev.imageEvent(ev.userSource(user));
    stack.emulator.setContent(image.message.id, { body: "jpeg", contentType: "image/jpeg" });
    await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "hi"), image]);
    await stack.emulator.sendWebhook(SENDER_KEY, [], { signature: "bad" });
    await stack.sink.waitFor((accepted) => accepted.length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const text = await scrape();
    assert.equal(value(text, `talkgate_webhooks_received_total{sender_key="${SENDER_KEY}"}`), 2);
    assert.equal(value(text, `talkgate_webhooks_refused_total{sender_key="${SENDER_KEY}",code="-412"}`), 1);
    assert.equal(value(text, `talkgate_events_stored_total{sender_key="${SENDER_KEY}"}`), 2);
    assert.equal(value(text, `talkgate_delivery_attempts_total{partner="partner",outcome="delivered"}`), 2);
    assert.equal(value(text, `talkgate_delivery_lag_seconds_count{partner="partner"}`), 2);
    assert.equal(value(text, `talkgate_media_downloads_total{outcome="stored"}`), 1);
    assert.equal(value(text, `talkgate_line_api_calls_total{endpoint="content",status="200"}`), 1);
    assert.ok((value(text, `talkgate_line_api_calls_total{endpoint="profile",status="404"}`) ?? 0) >= 1);
    assert.equal(value(text, `talkgate_deliveries_waiting{state="pending"}`), 0);
    assert.equal(value(text, "talkgate_deliveries_dead"), 0);
    assert.equal(value(text, "talkgate_oldest_waiting_delivery_age_seconds"), 0);
    assert.ok(text.includes("talkgate_process_resident_memory_bytes"), "process metrics");
  });

  test("healthz and readyz", async () => {
    assert.deepEqual(await (await fetch(`${stack.talkgate.url}/healthz`)).json(), { status: "ok" });
    assert.deepEqual(await (await fetch(`${stack.talkgate.url}/readyz`)).json(), { status: "ready" });
  });
});
