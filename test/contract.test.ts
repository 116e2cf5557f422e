// The partner contract off the happy path: what outside clients and a hostile probe found (issue 11), each pinned
// down — strict request validation, replays that name their deliveries, webhook-ids unique across channels, LINE's
// event fields on request.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { assertError, callApi, send } from "./support/partner-api.ts";
import { SENDER_KEY, SIGNING_SECRET, type Stack, startStack } from "./support/stack.ts";

const SECOND_CHANNEL = "1656160002";

describe("request validation: the server enforces what the document says, in talkgate's words", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  test("query numbers that are not plain integers are refused, never coerced (Infinity, 1e400, 0x10)", async () => {
    for (const query of [
      "limit=Infinity",
      "limit=1e400",
      "from=-Infinity",
      "limit=0x10",
      "limit=%205",
      "to=1.5",
    ]) {
      const answer = await callApi(stack, "GET", `/line/deliveries?${query}`);
      const field = query.split("=")[0] ?? "";
      assertError(answer, 400, "-405", new RegExp(`^${field}: must be an integer$`));
    }
    assertError(
      await callApi(stack, "GET", "/line/deliveries?limit=1001"),
      400,
      "-405",
      /^limit: must be at most 1000$/,
    );
    assert.equal((await callApi(stack, "GET", "/line/deliveries?limit=5")).status, 200);
  });

  test("unknown fields are refused by name, in bodies and query strings", async () => {
    const typo = await send(stack, {
      user_key: ev.randomUserId(),
      serial_number: "typo-1",
      messages: [{ type: "text", text: "hi" }],
      notification_disable: true,
    });
    assertError(typo, 400, "-405", /^notification_disable: unknown field$/);
    assertError(
      await callApi(stack, "GET", "/line/deliveries?stat=dead"),
      400,
      "-405",
      /^stat: unknown field$/,
    );
  });

  test("JSON strings are not taken for booleans or integers", async () => {
    const user = ev.randomUserId();
    for (const value of ["true", "1"]) {
      const answer = await send(stack, {
        user_key: user,
        serial_number: `s-${value}`,
        messages: [{ type: "text", text: "hi" }],
        notification_disabled: value,
      });
      assertError(answer, 400, "-405", /^notification_disabled: must be true or false$/);
    }
    const loading = await callApi(stack, "POST", "/line/chat/loading", {
      sender_key: SENDER_KEY,
      user_key: user,
      seconds: "10",
    });
    assertError(loading, 400, "-405", /^seconds: must be an integer$/);
  });

  test("allowed values are listed once, not once per alternative", async () => {
    const answer = await callApi(stack, "GET", "/line/deliveries?state=lost");
    assertError(answer, 400, "-405", /^state: must be one of "pending", "retrying", "delivered", "dead"$/);
  });

  test("messages: 1 to 5, checked before anything else", async () => {
    const base = { user_key: ev.randomUserId(), serial_number: "count-1" };
    assertError(
      await send(stack, { ...base, messages: [] }),
      400,
      "-405",
      /^messages: must have at least 1 item$/,
    );
    const six = Array.from({ length: 6 }, () => ({ type: "text", text: "x" }));
    assertError(
      await send(stack, { ...base, messages: six }),
      400,
      "-405",
      /^messages: must have at most 5 items$/,
    );
  });

  test("a body nested thousands deep is refused 400, not answered 500", async () => {
    let deep = '{"type":"text","text":"x"}';
    for (let i = 0; i < 4_400; i++) deep = `{"a":${deep}}`;
    let deepArray = "1";
    for (let i = 0; i < 4_400; i++) deepArray = `[${deepArray}]`;
    for (const messages of [`[${deep}]`, deepArray]) {
      const response = await fetch(`${stack.talkgate.url}/line/message/send`, {
        method: "POST",
        headers: { authorization: "Bearer test-partner-api-key-0001", "content-type": "application/json" },
        body: `{"sender_key":"${SENDER_KEY}","user_key":"${ev.randomUserId()}","serial_number":"deep","messages":${messages}}`,
      });
      assert.equal(response.status, 400);
      assert.deepEqual(await response.json(), {
        code: "-405",
        message: "body: nested more than 64 levels deep",
      });
    }
  });
});

describe("range replay names its deliveries", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  const replay = (body: Record<string, unknown>) =>
    callApi(stack, "POST", "/line/deliveries/replay", { sender_key: SENDER_KEY, ...body });

  test("missing, null or unparseable times are refused naming the field; nothing is replayed", async () => {
    const user = ev.randomUserId();
    await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "one")]);
    await stack.sink.waitFor((accepted) => accepted.some((p) => (p as PartnerPayload).user_key === user));
    const before = stack.sink.received.length;
    const now = Date.now();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ from: null }, /^from: must be an integer$/],
      [{ from: "yesterday", to: now }, /^from: must be an integer$/],
      [{ from: 0, to: null }, /^to: must be an integer$/],
      [{ from: 0 }, /^to: missing/],
      [{ to: now }, /^from: missing/],
      [{ from: now, to: now }, /^to: must be later than from$/],
      [{}, /^serial_numbers, from, to: give serial_numbers, or a time range with from and to$/],
    ];
    for (const [body, message] of cases) assertError(await replay(body), 400, "-405", message);
    assert.equal(stack.sink.received.length, before, "nothing was delivered again");
  });

  test("dry_run counts what a range matches and replays nothing", async () => {
    const from = Date.now();
    const user = ev.randomUserId();
    await stack.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(user), "a", { timestamp: from }),
      ev.textEvent(ev.userSource(user), "b", { timestamp: from + 1 }),
    ]);
    await stack.sink.waitFor((a) => a.filter((p) => (p as PartnerPayload).user_key === user).length === 2);
    const to = Date.now() + 1;
    const before = stack.sink.received.length;
    const counted = await replay({ from, to, dry_run: true });
    assert.deepEqual(counted.body, { code: "0", matched: 2, replayed: 0, serial_numbers: [], not_found: [] });
    const ghost = await replay({ serial_numbers: ["Nobody-0001-00000000"], dry_run: true });
    assert.deepEqual(ghost.body, {
      code: "0",
      matched: 0,
      replayed: 0,
      serial_numbers: [],
      not_found: ["Nobody-0001-00000000"],
    });
    assert.equal(stack.sink.received.length, before);
    const done = await replay({ from, to });
    assert.equal(done.body.matched, 2);
    assert.equal(done.body.replayed, 2);
    await stack.sink.waitFor((a) => a.filter((p) => (p as PartnerPayload).user_key === user).length === 4);
  });
});

describe("webhook-id is unique across a partner's channels", () => {
  let stack: Stack;
  // A clock that stands still: both events are received in the same second, so their serial_numbers match.
  const frozen = Date.now();
  before(async () => {
    stack = await startStack({ moreChannels: [SECOND_CHANNEL], clock: { now: () => frozen } });
  });
  after(() => stack.close());

  test("the same user in two channels in the same second: equal serial_numbers, different webhook-ids", async () => {
    const user = ev.randomUserId();
    const at = Date.now();
    await Promise.all([
      stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "one", { timestamp: at })]),
      stack.emulator.sendWebhook(SECOND_CHANNEL, [
        ev.textEvent(ev.userSource(user), "two", { timestamp: at }),
      ]),
    ]);
    await stack.sink.waitFor((a) => a.filter((p) => (p as PartnerPayload).user_key === user).length === 2);
    const requests = stack.sink.received.filter(
      (r) => (r.body as PartnerPayload | undefined)?.user_key === user,
    );
    const payloads = requests.map((r) => r.body as PartnerPayload);
    // Each serial_number is unique only within its channel: here both are the same.
    assert.equal(payloads[0]?.serial_number, payloads[1]?.serial_number);
    assert.notEqual(payloads[0]?.sender_key, payloads[1]?.sender_key);
    const ids = requests.map((r) => r.headers["webhook-id"]);
    assert.deepEqual(
      [...ids].sort(),
      payloads.map((p) => `${p.sender_key}:${p.serial_number}`).sort(),
      "webhook-id is <sender_key>:<serial_number>",
    );
    assert.equal(new Set(ids).size, 2);
    // What a partner's Standard Webhooks library makes of them.
    const webhook = new Webhook(SIGNING_SECRET);
    for (const request of requests) webhook.verify(request.raw, request.headers as Record<string, string>);
  });
});

describe("LINE's own event fields, for partners that opt in", () => {
  test("line_timestamp, webhook_event_id and is_redelivery join the payload; other partners get none", async () => {
    const stack = await startStack({ partner: { lineEventFields: true } });
    try {
      const user = ev.randomUserId();
      const event = ev.textEvent(ev.userSource(user), "when did I write?", {
        timestamp: Date.now() - 90_000,
      });
      const redelivered = ev.redelivered(ev.textEvent(ev.userSource(user), "again"));
      await stack.emulator.sendWebhook(SENDER_KEY, [event, redelivered]);
      const accepted = (await stack.sink.waitFor(
        (a) => a.filter((p) => (p as PartnerPayload).user_key === user).length === 2,
      )) as PartnerPayload[];
      const [first, second] = accepted.filter((p) => p.user_key === user);
      assert.deepEqual(
        [first?.line_timestamp, first?.webhook_event_id, first?.is_redelivery],
        [event.timestamp, event.webhookEventId, false],
      );
      assert.equal(second?.is_redelivery, true);
      assert.ok(
        (first?.time ?? 0) - (first?.line_timestamp ?? 0) >= 90_000,
        "time stays talkgate's receive time",
      );
    } finally {
      await stack.close();
    }
    const plain = await startStack();
    try {
      const user = ev.randomUserId();
      await plain.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "hi")]);
      const [payload] = (await plain.sink.waitFor((a) =>
        a.some((p) => (p as PartnerPayload).user_key === user),
      )) as PartnerPayload[];
      assert.ok(payload);
      for (const field of ["line_timestamp", "webhook_event_id", "is_redelivery"])
        assert.ok(!(field in payload));
    } finally {
      await plain.close();
    }
  });
});

describe("a message unsent before it was relayed", () => {
  test("is relayed in its place with content {id, type} only; its text answers 410", async () => {
    const stack = await startStack({ forwardEventTypes: ["message", "postback", "unsend"] });
    try {
      const user = ev.randomUserId();
      const mine = (p: unknown) => (p as PartnerPayload).user_key === user;
      // The partner is down while the user writes and takes the message back.
      stack.sink.respondWith((request) => (mine(request.body) ? { status: 503 } : undefined));
      const text = ev.textEvent(ev.userSource(user), "a secret I regret");
      await stack.emulator.sendWebhook(SENDER_KEY, [text]);
      const failed = () => stack.sink.received.some((r) => mine(r.body) && r.status === 503);
      for (let i = 0; i < 500 && !failed(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(failed(), "the first attempt failed");
      await stack.emulator.sendWebhook(SENDER_KEY, [
        ev.unsendEvent(ev.userSource(user), { messageId: text.message.id }),
      ]);
      stack.sink.respondWith(undefined);
      const accepted = (await stack.sink.waitFor((a) => a.filter(mine).length === 2)) as PartnerPayload[];
      const [message, unsend] = accepted.filter(mine);
      assert.deepEqual(message?.content, { id: text.message.id, type: "text" });
      assert.equal(unsend?.event_type, "unsend");
      assert.ok(!stack.sink.received.some((r) => r.raw.includes("a secret I regret") && r.status === 200));
      const long = await callApi(
        stack,
        "GET",
        `/line/message/long?sender_key=${SENDER_KEY}&serial_number=${message?.serial_number}`,
      );
      assertError(long, 410, "-410");
    } finally {
      await stack.close();
    }
  });
});

describe("replays are budgeted per partner", () => {
  test("past partnerApi.replayMax per window: what is left is replayed, then 429 -429 with Retry-After", async () => {
    const stack = await startStack({ config: { partnerApi: { replayMax: 3, replayWindowMs: 60_000 } } });
    try {
      const user = ev.randomUserId();
      const events = [1, 2, 3, 4].map((i) =>
        ev.textEvent(ev.userSource(user), `r${i}`, { timestamp: Date.now() + i }),
      );
      await stack.emulator.sendWebhook(SENDER_KEY, events);
      const accepted = (await stack.sink.waitFor(
        (a) => a.filter((p) => (p as PartnerPayload).user_key === user).length === 4,
      )) as PartnerPayload[];
      const serials = accepted.filter((p) => p.user_key === user).map((p) => p.serial_number);
      const replay = (serial_numbers: string[]) =>
        callApi(stack, "POST", "/line/deliveries/replay", { sender_key: SENDER_KEY, serial_numbers });
      assert.equal((await replay(serials.slice(0, 2))).body.replayed, 2);
      const partly = await replay(serials.slice(2));
      assert.equal(partly.body.matched, 2);
      assert.equal(partly.body.replayed, 1, "the one left of the budget");
      const refused = await fetch(`${stack.talkgate.url}/line/deliveries/replay`, {
        method: "POST",
        headers: { authorization: "Bearer test-partner-api-key-0001", "content-type": "application/json" },
        body: JSON.stringify({ sender_key: SENDER_KEY, serial_numbers: serials.slice(3) }),
      });
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get("retry-after")) > 0);
      assert.match(((await refused.json()) as { message: string }).message, /at most 3 deliveries per 60 s/);
      const dry = await callApi(stack, "POST", "/line/deliveries/replay", {
        sender_key: SENDER_KEY,
        serial_numbers: serials,
        dry_run: true,
      });
      assert.equal(dry.body.matched, 4, "counting is free");
    } finally {
      await stack.close();
    }
  });
});
