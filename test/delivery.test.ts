// Delivery (SPEC §4): retries with backoff, strict order per conversation, others not blocked, dead after the limit.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { eventually, listDeliveries } from "./support/deliveries.ts";
import { SENDER_KEY, type Stack, type StackOptions, startStack } from "./support/stack.ts";

const texts = (payloads: readonly unknown[], userId: string) =>
  (payloads as PartnerPayload[]).filter((p) => p.user_key === userId).map((p) => p.content.text);

/** The stack's deliveries, in the order their events were stored (GET /line/deliveries). */
const deliveryRows = (stack: Stack) => listDeliveries(stack.talkgate);

describe("delivery to the partner", () => {
  let stack: Stack | undefined;
  const start = async (options?: StackOptions) => {
    stack = await startStack(options);
    return stack;
  };
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  test("a 500 is retried; the conversation waits in order while others flow", async () => {
    const s = await start();
    const alice = ev.randomUserId();
    const bob = ev.randomUserId();
    let failures = 0;
    s.sink.respondWith((request) => {
      const payload = request.body as PartnerPayload;
      if (payload.user_key === alice && payload.content.text === "a1" && failures < 3) {
        failures++;
        return { status: 500 };
      }
      return undefined;
    });
    const t = Date.now();
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(alice), "a1", { timestamp: t }),
      ev.textEvent(ev.userSource(alice), "a2", { timestamp: t + 1 }),
      ev.textEvent(ev.userSource(bob), "b1", { timestamp: t + 2 }),
    ]);
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(alice), "a3", { timestamp: t + 3 }),
    ]);

    const accepted = await s.sink.waitFor((a) => texts(a, alice).length === 3);
    assert.equal(failures, 3);
    assert.deepEqual(texts(accepted, alice), ["a1", "a2", "a3"]);
    assert.ok(
      accepted.findIndex((p) => (p as PartnerPayload).user_key === bob) <
        accepted.findIndex((p) => (p as PartnerPayload).content.text === "a1"),
      "bob's message was not held up by alice's failing head",
    );
    const retried = s.sink.received.filter((r) => (r.body as PartnerPayload).content.text === "a1");
    assert.deepEqual(
      retried.map((r) => r.status),
      [500, 500, 500, 200],
    );
    assert.equal(
      new Set(retried.map((r) => (r.body as PartnerPayload).serial_number)).size,
      1,
      "retries keep the serial_number",
    );
  });

  test("events arriving out of order are delivered in LINE timestamp order", async () => {
    const s = await start();
    const user = ev.randomUserId();
    const t = Date.now();
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.imageEvent(
        ev.userSource(user),
        { imageSet: { id: "S", index: 2, total: 3 } },
        { timestamp: t + 20 },
      ),
      ev.textEvent(ev.userSource(user), "first", { timestamp: t }),
      ev.imageEvent(
        ev.userSource(user),
        { imageSet: { id: "S", index: 1, total: 3 } },
        { timestamp: t + 10 },
      ),
    ]);
    const accepted = (await s.sink.waitFor((a) => a.length === 3)) as PartnerPayload[];
    assert.deepEqual(
      accepted.map((p) => p.content.text ?? (p.content.imageSet as { index: number }).index),
      ["first", 1, 2],
    );
  });

  test("a partner slower than the timeout is retried", async () => {
    const s = await start({
      config: { delivery: { timeoutMs: 200, initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 50 } },
    });
    let slow = 1;
    s.sink.respondWith(() => (slow-- > 0 ? { status: 200, delayMs: 1_000 } : undefined));
    await s.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(ev.randomUserId()), "patience")]);
    await waitUntil(async () => (await deliveryRows(s))[0]?.state === "delivered");
    assert.equal(
      (await deliveryRows(s))[0]?.attempts,
      2,
      "the slow answer counted as a failure, the retry as the ack",
    );
  });

  test("redirects are not followed: a 3xx is a failed attempt", async () => {
    const s = await start({
      config: { delivery: { maxAgeMs: 300, initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 50 } },
    });
    s.sink.respondWith((request) => (request.path.startsWith("/line") ? { status: 302 } : undefined));
    await s.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(ev.randomUserId()), "moved")]);
    await waitUntil(async () => (await deliveryRows(s)).at(-1)?.state === "dead");
    assert.equal((await deliveryRows(s)).at(-1)?.last_status, 302);
    assert.ok(s.sink.received.every((r) => r.path === "/line/message"));
  });

  test("a delivery failing past the age limit is dead and stops blocking its conversation", async () => {
    const s = await start({
      config: { delivery: { maxAgeMs: 400, initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 50 } },
    });
    const user = ev.randomUserId();
    s.sink.respondWith((request) =>
      (request.body as PartnerPayload).content.text === "doomed" ? { status: 503 } : undefined,
    );
    const t = Date.now();
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(user), "doomed", { timestamp: t }),
      ev.textEvent(ev.userSource(user), "next", { timestamp: t + 1 }),
    ]);
    await waitUntil(async () => (await deliveryRows(s))[1]?.state === "delivered");
    assert.deepEqual(texts(s.sink.accepted, user), ["next"]);
    const [doomed] = await deliveryRows(s);
    assert.equal(doomed?.state, "dead");
    assert.equal(doomed?.last_status, 503);
    assert.ok((doomed?.attempts ?? 0) >= 2);
  });

  test("private and loopback destinations are refused unless the partner allows them", async () => {
    const s = await start({ partner: { allowPrivateNetwork: false } });
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(ev.randomUserId()), "to 127.0.0.1"),
    ]);
    await waitUntil(async () => ((await deliveryRows(s))[0]?.attempts ?? 0) >= 1);
    assert.equal(s.sink.received.length, 0);
    assert.equal((await deliveryRows(s))[0]?.last_error, "destination is a private address");
  });

  test("a partner failing for a while is paused, not hammered, and resumes by itself when it answers", async () => {
    const s = await start({
      config: {
        delivery: {
          initialBackoffMs: 20,
          maxBackoffMs: 40,
          pollMs: 20,
          pauseAfterFailures: 3,
          pauseInitialMs: 300,
          pauseMaxMs: 600,
        },
      },
    });
    let down = true;
    s.sink.respondWith(() => (down ? { status: 503 } : undefined));
    const users = Array.from({ length: 20 }, () => ev.randomUserId());
    await s.emulator.sendWebhook(
      SENDER_KEY,
      users.map((user) => ev.textEvent(ev.userSource(user), "hello")),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Without the pause, 20 conversations retrying every 20–40 ms would make hundreds of attempts.
    const attempts = s.sink.received.length;
    assert.ok(attempts < 40, `${attempts} attempts in 1.5 s while down`);
    down = false;
    const accepted = await s.sink.waitFor((a) => a.length === users.length);
    assert.equal(new Set(accepted.map((p) => (p as PartnerPayload).user_key)).size, users.length);
    await waitUntil(async () => (await deliveryRows(s)).every((row) => row.state === "delivered"));
  });

  test("a restart resumes pending deliveries", async () => {
    const s = await start();
    s.sink.respondWith(() => ({ status: 503 }));
    const user = ev.randomUserId();
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(user), "one"),
      ev.textEvent(ev.userSource(user), "two", { timestamp: Date.now() + 1 }),
    ]);
    await waitUntil(() => s.sink.received.length >= 1);
    await s.stopTalkgate();
    s.sink.respondWith(undefined);
    await s.restart();
    const accepted = await s.sink.waitFor((a) => texts(a, user).length === 2);
    assert.deepEqual(texts(accepted, user), ["one", "two"]);
  });
});

const waitUntil = (condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) =>
  eventually("the deliveries' condition", condition, timeoutMs);
