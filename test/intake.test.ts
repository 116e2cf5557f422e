// Intake (SPEC §2): signatures on raw bytes, refusals with status + code + message, dedupe, durability before 200.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import { lineSignature } from "../src/core/signature.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { listDeliveries } from "./support/deliveries.ts";
import { readCount, readRows } from "./support/read-rows.ts";
import { CHANNEL_SECRET, SENDER_KEY, type Stack, sqlitePath, startStack } from "./support/stack.ts";

describe("webhook intake", () => {
  let stack: Stack;
  // Every event stored, relayed or not (only relayed ones are in GET /line/deliveries).
  const countEvents = () => readCount(stack.config.database, "SELECT count(*) AS n FROM events");
  const webhookUrl = () => `${stack.talkgate.url}/line/webhook/${SENDER_KEY}`;

  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack.close();
  });

  async function post(body: string | Buffer, headers: Record<string, string>, url = webhookUrl()) {
    const response = await fetch(url, { method: "POST", body, headers });
    return { status: response.status, body: (await response.json()) as { code: string; message?: string } };
  }

  test("a missing or wrong signature is refused with 401 and stores nothing", async () => {
    const before = await countEvents();
    const events = [ev.textEvent(ev.userSource(ev.randomUserId()), "unsigned")];
    for (const signature of [
      null,
      "",
      "bm90IHRoZSBzaWduYXR1cmU=",
      lineSignature("other-secret", "{}"),
      "%%%",
    ]) {
      const result = await stack.emulator.sendWebhook(SENDER_KEY, events, { signature });
      assert.equal(result.status, 401, `signature ${signature}`);
      assert.equal(JSON.parse(result.body).code, "-412");
    }
    assert.equal(await countEvents(), before);
  });

  test("the signature header is found in any letter case", async () => {
    const result = await stack.emulator.sendWebhook(
      SENDER_KEY,
      [ev.textEvent(ev.userSource(ev.randomUserId()), "x")],
      {
        headerName: "X-Line-Signature",
      },
    );
    assert.equal(result.status, 200);
  });

  test("the signature is checked on the exact bytes: escaped unicode verifies as sent", async () => {
    const userId = ev.randomUserId();
    const event = ev.textEvent(ev.userSource(userId), "placeholder");
    const raw = JSON.stringify({ destination: ev.DEFAULT_DESTINATION, events: [event] }).replace(
      '"placeholder"',
      '"\\uD83D\\uDE00 \\u00e9\\"quoted\\"\\n"',
    );
    const result = await stack.emulator.sendWebhook(SENDER_KEY, [], { rawBody: raw });
    assert.equal(result.status, 200, result.body);
    const [payload] = (
      await stack.sink.waitFor((a) => a.some((p) => (p as { user_key: string }).user_key === userId))
    ).filter((p) => (p as { user_key: string }).user_key === userId) as Array<{ content: { text: string } }>;
    assert.equal(payload?.content.text, '😀 é"quoted"\n');
  });

  test("an unknown sender_key answers 404", async () => {
    const body = JSON.stringify({ events: [] });
    const result = await post(
      body,
      { "x-line-signature": lineSignature(CHANNEL_SECRET, body), "content-type": "application/json" },
      `${stack.talkgate.url}/line/webhook/999`,
    );
    assert.equal(result.status, 404);
    assert.equal(result.body.code, "-406");
    assert.ok(result.body.message);
  });

  test("a body over 2 MiB answers 413", async () => {
    const body = Buffer.alloc(2 * 1024 * 1024 + 1, 0x20);
    const result = await post(body, {
      "x-line-signature": lineSignature(CHANNEL_SECRET, body),
      "content-type": "application/json",
    });
    assert.equal(result.status, 413);
    assert.equal(result.body.code, "-413");
  });

  test("a signed body that is not JSON answers 400", async () => {
    const result = await stack.emulator.sendWebhook(SENDER_KEY, [], { rawBody: "{not json" });
    assert.equal(result.status, 400);
    assert.equal(JSON.parse(result.body).code, "-405");
  });

  test("LINE's URL check and bodies without events answer 200 and store nothing", async () => {
    const before = await countEvents();
    for (const raw of ['{"destination":"U0","events":[]}', "{}", '{"events":"nope"}', "[]", "42"]) {
      const result = await stack.emulator.sendWebhook(SENDER_KEY, [], { rawBody: raw });
      assert.equal(result.status, 200, raw);
    }
    assert.equal(await countEvents(), before);
  });

  test("any content type is accepted: LINE's bytes are what is signed", async () => {
    const body = JSON.stringify({ events: [ev.textEvent(ev.userSource(ev.randomUserId()), "plain")] });
    const result = await post(body, {
      "x-line-signature": lineSignature(CHANNEL_SECRET, body),
      "content-type": "text/plain",
    });
    assert.equal(result.status, 200);
  });

  test("a redelivered event is answered 200 and changes nothing", async () => {
    const userId = ev.randomUserId();
    const event = ev.textEvent(ev.userSource(userId), "once");
    const first = await stack.emulator.sendWebhook(SENDER_KEY, [event]);
    assert.deepEqual(JSON.parse(first.body), { code: "0", stored: 1, duplicates: 0 });
    const again = await stack.emulator.sendWebhook(SENDER_KEY, [ev.redelivered(event), event]);
    assert.equal(again.status, 200);
    assert.deepEqual(JSON.parse(again.body), { code: "0", stored: 0, duplicates: 2 });

    const marker = ev.textEvent(ev.userSource(userId), "marker");
    await stack.emulator.sendWebhook(SENDER_KEY, [marker]);
    const mine = (
      await stack.sink.waitFor((a) =>
        a.some((p) => (p as { content: { text?: string } }).content.text === "marker"),
      )
    )
      .map((p) => p as { user_key: string; content: { text: string } })
      .filter((p) => p.user_key === userId);
    assert.deepEqual(
      mine.map((p) => p.content.text),
      ["once", "marker"],
    );
  });

  test("events without webhookEventId are deduped on their content", async () => {
    const { webhookEventId: _id, ...legacy } = ev.textEvent(ev.userSource(ev.randomUserId()), "legacy");
    const first = await stack.emulator.sendWebhook(SENDER_KEY, [legacy]);
    const again = await stack.emulator.sendWebhook(SENDER_KEY, [ev.redelivered(legacy)]);
    assert.equal(JSON.parse(first.body).stored, 1);
    assert.equal(JSON.parse(again.body).duplicates, 1);
  });

  test("every event type LINE documents is stored; only message and postback are relayed by default", async () => {
    const userId = ev.randomUserId();
    const user = ev.userSource(userId);
    const group = ev.groupSource(ev.randomGroupId(), userId);
    const t = Date.now();
    const events = [
      ev.textEvent(user, "text"),
      ev.imageEvent(user),
      ev.videoEvent(user, { duration: 1000 }),
      ev.audioEvent(user, { duration: 1000 }),
      ev.fileEvent(user, { fileName: "a.pdf", fileSize: 10 }),
      ev.locationEvent(user, { latitude: 1, longitude: 2 }),
      ev.stickerEvent(user, { packageId: "1", stickerId: "1", stickerResourceType: "STATIC" }),
      ev.unsendEvent(user, { messageId: "1" }),
      ev.followEvent(user, { isUnblocked: true }),
      ev.unfollowEvent(user),
      ev.joinEvent(group),
      ev.leaveEvent(group),
      ev.memberJoinedEvent(group, { userIds: [userId] }),
      ev.memberLeftEvent(group, { userIds: [userId] }),
      ev.postbackEvent(user, { data: "a=1", params: { date: "2026-11-22" } }),
      ev.videoPlayCompleteEvent(user, { trackingId: "t" }),
      ev.messageEditedEvent(group, { id: "2", text: "edited" }),
      ev.beaconEvent(user),
      ev.accountLinkEvent(user),
      ev.membershipEvent(user),
      ev.moduleEvent({ type: "attached", botId: "U1", scopes: ["message:send"] }),
      ev.activatedEvent(user),
      ev.deactivatedEvent(user),
      ev.botSuspendedEvent(),
      ev.botResumedEvent(),
      ev.deliveryEvent({ data: "hash" }),
    ].map((event, i) => ({ ...event, timestamp: t + i }));
    const result = await stack.emulator.sendWebhook(SENDER_KEY, events);
    assert.deepEqual(JSON.parse(result.body), { code: "0", stored: events.length, duplicates: 0 });

    const keys = events.map((e) => e.webhookEventId);
    const stored = await readRows<{ type: string; body: string }>(
      stack.config.database,
      `SELECT type, body FROM events WHERE event_key IN (${keys.map((_, i) => `$${i + 1}`).join(",")}) ORDER BY id`,
      ...keys,
    );
    assert.deepEqual(
      stored.map((row) => row.type),
      events.map((e) => e.type),
    );
    assert.deepEqual(
      stored.map((row) => JSON.parse(row.body)),
      events,
      "each event is stored exactly as received",
    );
    // The user and the group are new: their conversations' deliveries are these events' (in the order stored).
    const conversations = [`user:${userId}`, `group:${group.groupId}`];
    const relayed = (await listDeliveries(stack.talkgate)).filter((d) =>
      conversations.includes(d.conversation),
    );
    assert.deepEqual(
      relayed.map((delivery) => delivery.event_type),
      [...Array(7).fill("message"), "postback"],
    );
  });

  test("unknown event, source and message types are stored and never crash anything", async () => {
    const result = await stack.emulator.sendWebhook(SENDER_KEY, [
      {
        type: "brandNewEvent",
        timestamp: Date.now(),
        mode: "active",
        webhookEventId: ev.ulid(),
        whatever: { a: 1 },
      },
      {
        type: "message",
        source: { type: "square", squareId: "S1" },
        message: { id: "1", type: "hologram" },
        webhookEventId: ev.ulid(),
      },
      { type: "message", webhookEventId: ev.ulid() },
      null,
      "text",
    ]);
    assert.equal(result.status, 200);
    assert.equal(JSON.parse(result.body).stored, 5);
  });

  test("when the database cannot commit, the answer is 5xx and a redelivery stores the events", {
    skip: TEST_DATABASE === "postgres" && "a locked SQLite file is SQLite's own failure mode",
  }, async () => {
    const userId = ev.randomUserId();
    const event = ev.textEvent(ev.userSource(userId), "survives a locked database");
    const locker = new DatabaseSync(sqlitePath(stack.config));
    locker.exec("BEGIN EXCLUSIVE");
    const before = await countEvents();
    let refused: Awaited<ReturnType<typeof stack.emulator.sendWebhook>>;
    try {
      refused = await stack.emulator.sendWebhook(SENDER_KEY, [event]);
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
    }
    assert.equal(refused.status, 500);
    assert.equal(JSON.parse(refused.body).code, "-600");
    assert.equal(await countEvents(), before, "nothing half-written");

    const redelivery = await stack.emulator.sendWebhook(SENDER_KEY, [ev.redelivered(event)]);
    assert.equal(redelivery.status, 200);
    await stack.sink.waitFor((a) => a.some((p) => (p as { user_key: string }).user_key === userId));
  });
});
