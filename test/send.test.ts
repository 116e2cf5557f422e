// POST /line/message/send (SPEC §6) end to end against the LINE emulator: reply first, push with a retry
// key, never twice, standby refused, every message type, LINE's failures passed through, audited.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { RecordedCall } from "../emulator/line-emulator.ts";
import { retryKeyOf } from "../src/app/send-message.ts";
import { actionCalls, assertError, send, sendRow, serial, sleep, until } from "./support/partner-api.ts";
import {
  API_KEY,
  OTHER_API_KEY,
  OTHER_SENDER_KEY,
  SENDER_KEY,
  type Stack,
  startStack,
} from "./support/stack.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const PUSH = "/v2/bot/message/push";
const REPLY = "/v2/bot/message/reply";
const HTTPS = "https://example.com";

/** The user messages the account (webhook through the emulator); returns the event with its reply token. */
async function userSays(
  stack: Stack,
  source: ev.Source,
  text = "hello",
  common: ev.CommonFields = {},
): Promise<ReturnType<typeof ev.textEvent>> {
  const event = ev.textEvent(source, text, common);
  const result = await stack.emulator.sendWebhook(SENDER_KEY, [event]);
  assert.equal(result.status, 200, result.body);
  return event;
}

const sentTo = (stack: Stack, to: string) => stack.emulator.sent.filter((s) => s.to === to);
const paths = (calls: RecordedCall[]) => calls.map((c) => `${c.method} ${c.path} ${c.status}`);
const text = (t: string) => ({ type: "text", text: t });

// The message types LINE answers a quoteToken for (developers.line.biz, "Get quote tokens").
const QUOTABLE = new Set(["text", "textV2", "sticker", "image", "video", "template", "flex"]);

/** The `sentMessages` LINE answers for `messages`: an id each, a quoteToken for the quotable ones. */
function assertSentMessages(value: unknown, messages: { type: string }[]): void {
  assert.ok(Array.isArray(value), `sent_messages is an array: ${JSON.stringify(value)}`);
  assert.equal(value.length, messages.length);
  (value as Array<{ id?: unknown; quoteToken?: unknown }>).forEach((m, i) => {
    const type = messages[i]?.type ?? "";
    assert.match(String(m.id), /^\d+$/);
    assert.equal(typeof m.quoteToken, QUOTABLE.has(type) ? "string" : "undefined", type);
  });
}

describe("sending: reply, push, idempotency, failures", () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ line: { timeoutMs: 600 }, config: { send: { retryDelayMs: 20 } } });
  });
  after(() => stack.close());

  test("reply first with the conversation's token; the next send pushes with a UUID retry key", async () => {
    const user = ev.randomUserId();
    const event = await userSays(stack, ev.userSource(user));
    let mark = stack.emulator.calls.length;

    const first = serial("reply");
    const replied = await send(stack, { user_key: user, serial_number: first, messages: [text("Hi there")] });
    assert.equal(replied.status, 200, JSON.stringify(replied.body));
    assert.equal(replied.body.code, "0");
    assert.equal(replied.body.method, "reply");
    assertSentMessages(replied.body.sent_messages, [text("Hi there")]);
    const replyCalls = actionCalls(stack, mark);
    assert.deepEqual(paths(replyCalls), [`POST ${REPLY} 200`]);
    assert.deepEqual(replyCalls[0]?.body, {
      replyToken: event.replyToken,
      messages: [text("Hi there")],
      notificationDisabled: false,
    });
    assert.equal(replyCalls[0]?.headers["x-line-retry-key"], undefined, "reply takes no retry key");
    assert.deepEqual(
      sentTo(stack, user).map((s) => [s.method, s.messages]),
      [["reply", [text("Hi there")]]],
    );

    mark = stack.emulator.calls.length;
    const second = serial("push");
    const pushed = await send(stack, {
      user_key: user,
      serial_number: second,
      messages: [text("And another thing")],
      notification_disabled: true,
    });
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    assert.equal(pushed.body.code, "0");
    assert.equal(pushed.body.method, "push");
    assertSentMessages(pushed.body.sent_messages, [text("And another thing")]);
    const pushCalls = actionCalls(stack, mark);
    assert.deepEqual(paths(pushCalls), [`POST ${PUSH} 200`], "the used token is not tried again");
    const key = pushCalls[0]?.headers["x-line-retry-key"];
    assert.equal(typeof key, "string");
    assert.match(key as string, UUID_V4);
    assert.equal(key, retryKeyOf(SENDER_KEY, second), "derived from (sender_key, serial_number)");
    assert.deepEqual(pushCalls[0]?.body, {
      to: user,
      messages: [text("And another thing")],
      notificationDisabled: true,
    });
    const seen = sentTo(stack, user);
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.method, "push");
    assert.equal(seen[1]?.retryKey, key);
    assert.equal(seen[1]?.notificationDisabled, true);
  });

  test("the same serial_number again answers the first result and calls LINE no more", async () => {
    const user = ev.randomUserId();
    const serialNumber = serial("twice");
    const body = { user_key: user, serial_number: serialNumber, messages: [text("only once")] };
    const first = await send(stack, body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.method, "push");

    const mark = stack.emulator.calls.length;
    const again = await send(stack, body);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body, "the very same answer");
    assert.deepEqual(actionCalls(stack, mark), [], "no LINE call");
    assert.equal(sentTo(stack, user).length, 1);

    // The same serial_number for other messages, or another recipient: refused, naming serial_number.
    for (const other of [
      { ...body, messages: [text("something else")] },
      { ...body, user_key: ev.randomUserId() },
    ]) {
      const conflict = await send(stack, other);
      assertError(conflict, 400, "-405", /serial_number/);
    }
    assert.deepEqual(actionCalls(stack, mark), []);
    assert.equal(sentTo(stack, user).length, 1);
  });

  test("the same serial_number while its first send is still at LINE answers -423 and sends nothing", async () => {
    const user = ev.randomUserId();
    const body = { user_key: user, serial_number: serial("busy"), messages: [text("slow")] };
    stack.emulator.setDelay(PUSH, 250);
    try {
      const first = send(stack, body);
      await sleep(100);
      const concurrent = await send(stack, body);
      assertError(concurrent, 409, "-423", /being sent/);
      const done = await first;
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.method, "push");
    } finally {
      stack.emulator.setDelay(PUSH, 0);
    }
    assert.equal(sentTo(stack, user).length, 1);
  });

  test("a push answered after talkgate's timeout is retried with the same key: one message, code 0", async () => {
    const user = ev.randomUserId();
    const serialNumber = serial("slow");
    const mark = stack.emulator.calls.length;
    // LINE sends, but answers only after 1.2 s (talkgate gives up at 600 ms).
    stack.emulator.failNext(PUSH, {
      status: 200,
      body: { sentMessages: [] },
      afterProcessing: true,
      delayMs: 1200,
    });
    const answer = await send(stack, {
      user_key: user,
      serial_number: serialNumber,
      messages: [text("late")],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.code, "0");
    assert.equal(answer.body.method, "push");
    assertSentMessages(answer.body.sent_messages, [text("late")]);

    await until("the slow first attempt to be answered", () => actionCalls(stack, mark).length === 2);
    const calls = actionCalls(stack, mark);
    assert.deepEqual(paths(calls).sort(), [`POST ${PUSH} 200`, `POST ${PUSH} 409`]);
    const keys = new Set(calls.map((c) => c.headers["x-line-retry-key"]));
    assert.deepEqual([...keys], [retryKeyOf(SENDER_KEY, serialNumber)], "one retry key on every attempt");
    const seen = sentTo(stack, user);
    assert.equal(seen.length, 1, "the user sees the message once");
    // The audit names the request that sent it (LINE's x-line-accepted-request-id).
    const row = await sendRow(stack, serialNumber);
    assert.equal(row?.state, "sent");
    assert.equal(row?.line_request_id, seen[0]?.requestId);
  });

  test("a push that timed out before LINE took it is sent by the retry, once", async () => {
    const user = ev.randomUserId();
    const mark = stack.emulator.calls.length;
    stack.emulator.failNext(PUSH, { status: 500, delayMs: 1200 });
    const answer = await send(stack, {
      user_key: user,
      serial_number: serial("lost"),
      messages: [text("x")],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.method, "push");
    await until("the slow first attempt to be answered", () => actionCalls(stack, mark).length === 2);
    assert.deepEqual(paths(actionCalls(stack, mark)).sort(), [`POST ${PUSH} 200`, `POST ${PUSH} 500`]);
    assert.equal(sentTo(stack, user).length, 1);
  });

  test("LINE 500 after it sent: the retry's 409 counts as sent, one message seen", async () => {
    const user = ev.randomUserId();
    const serialNumber = serial("500");
    const mark = stack.emulator.calls.length;
    stack.emulator.failNext(PUSH, { status: 500, afterProcessing: true });
    const answer = await send(stack, { user_key: user, serial_number: serialNumber, messages: [text("x")] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.code, "0");
    assert.equal(answer.body.method, "push");
    assertSentMessages(answer.body.sent_messages, [text("x")]);
    const calls = actionCalls(stack, mark);
    assert.deepEqual(paths(calls), [`POST ${PUSH} 500`, `POST ${PUSH} 409`]);
    assert.equal(calls[0]?.headers["x-line-retry-key"], calls[1]?.headers["x-line-retry-key"]);
    const seen = sentTo(stack, user);
    assert.equal(seen.length, 1);
    assert.equal((await sendRow(stack, serialNumber))?.line_request_id, seen[0]?.requestId);
  });

  test("LINE failing with 500 on every attempt answers code 500 after the retries; nothing sent", async () => {
    const user = ev.randomUserId();
    const serialNumber = serial("500x3");
    const mark = stack.emulator.calls.length;
    stack.emulator.failNext(PUSH, { status: 500 }, 3);
    const answer = await send(stack, { user_key: user, serial_number: serialNumber, messages: [text("x")] });
    assertError(answer, 500, "500");
    assert.deepEqual(paths(actionCalls(stack, mark)), Array(3).fill(`POST ${PUSH} 500`));
    assert.equal(sentTo(stack, user).length, 0);
    assert.equal((await sendRow(stack, serialNumber))?.state, "failed");
  });

  test("LINE's monthly limit (429) is passed through with LINE's message, not retried, nothing sent", async () => {
    const user = ev.randomUserId();
    const serialNumber = serial("quota");
    const mark = stack.emulator.calls.length;
    stack.emulator.failNext(PUSH, { status: 429, body: { message: "You have reached your monthly limit." } });
    const answer = await send(stack, { user_key: user, serial_number: serialNumber, messages: [text("x")] });
    assertError(answer, 429, "429", /^You have reached your monthly limit\.$/);
    assert.deepEqual(paths(actionCalls(stack, mark)), [`POST ${PUSH} 429`]);
    assert.equal(sentTo(stack, user).length, 0);
    const row = await sendRow(stack, serialNumber);
    assert.equal(row?.state, "failed");
    assert.equal(row?.error_code, "429");
  });

  test("a reply LINE answers too late is not sent again by push", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user));
    const mark = stack.emulator.calls.length;
    stack.emulator.failNext(REPLY, { status: 200, body: {}, afterProcessing: true, delayMs: 1200 });
    const answer = await send(stack, {
      user_key: user,
      serial_number: serial("rlate"),
      messages: [text("r")],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.code, "0");
    assert.equal(answer.body.method, "reply");
    await until("the slow reply to be answered", () => actionCalls(stack, mark).length === 2);
    // The retry finds the token spent (by the attempt that timed out): sent, no push.
    assert.deepEqual(paths(actionCalls(stack, mark)).sort(), [`POST ${REPLY} 200`, `POST ${REPLY} 400`]);
    assert.deepEqual(
      sentTo(stack, user).map((s) => s.method),
      ["reply"],
    );
  });

  test("two sends racing for one reply token: one replies, the other pushes; both seen", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user));
    const answers = await Promise.all(
      ["one", "two"].map((t) =>
        send(stack, { user_key: user, serial_number: serial(t), messages: [text(t)] }),
      ),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200], JSON.stringify(answers));
    assert.deepEqual(answers.map((a) => a.body.method).sort(), ["push", "reply"]);
    assert.deepEqual(
      sentTo(stack, user)
        .map((s) => s.method)
        .sort(),
      ["push", "reply"],
    );
    const replies = stack.emulator.calls.filter(
      (c) =>
        c.path === REPLY &&
        (c.body as { messages: { text: string }[] }).messages[0]?.text.match(/^(one|two)$/),
    );
    assert.ok(
      replies.every((c) => c.status === 200),
      "the token is never tried twice",
    );
  });

  test("LINE's own 400 is passed through with LINE's message", async () => {
    const mark = stack.emulator.calls.length;
    const answer = await send(stack, {
      user_key: "Xnot-a-line-id",
      serial_number: serial("to"),
      messages: [text("x")],
    });
    assertError(answer, 400, "400", /'to'/);
    assert.deepEqual(paths(actionCalls(stack, mark)), [`POST ${PUSH} 400`], "a 4xx is not retried");
  });

  test("standby: refused with -409 and no LINE call while another module holds the chat", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user), "hello");
    await userSays(stack, ev.userSource(user), "now in standby", { mode: "standby" });
    const serialNumber = serial("standby");
    const body = { user_key: user, serial_number: serialNumber, messages: [text("answer")] };
    const mark = stack.emulator.calls.length;
    const refused = await send(stack, body);
    assertError(refused, 409, "-409", /standby/);
    assert.deepEqual(actionCalls(stack, mark), []);
    assert.equal(sentTo(stack, user).length, 0);
    assert.equal((await sendRow(stack, serialNumber))?.error_code, "-409");

    // The chat comes back (an active event): the same send now goes out, by reply with the new token.
    const back = await userSays(stack, ev.userSource(user), "back to the bot");
    const sent = await send(stack, body);
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal(sent.body.method, "reply");
    const seen = sentTo(stack, user);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.replyToken, back.replyToken);
    assert.deepEqual(seen[0]?.messages, [text("answer")]);
    assert.equal((await sendRow(stack, serialNumber))?.state, "sent");
  });

  test("group and room targets: reply then push to the group's or room's id", async () => {
    for (const [field, id, source] of [
      ["group_id", ev.randomGroupId(), (id: string) => ev.groupSource(id, ev.randomUserId())],
      ["room_id", ev.randomRoomId(), (id: string) => ev.roomSource(id, ev.randomUserId())],
    ] as const) {
      const event = await userSays(stack, source(id));
      let mark = stack.emulator.calls.length;
      const replied = await send(stack, {
        [field]: id,
        serial_number: serial(field),
        messages: [text("hi")],
      });
      assert.equal(replied.status, 200, JSON.stringify(replied.body));
      assert.equal(replied.body.method, "reply", field);
      assert.deepEqual(
        actionCalls(stack, mark).map((c) => [c.path, (c.body as { replyToken?: string }).replyToken]),
        [[REPLY, event.replyToken]],
      );

      mark = stack.emulator.calls.length;
      const pushed = await send(stack, {
        [field]: id,
        serial_number: serial(field),
        messages: [text("more")],
      });
      assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
      assert.equal(pushed.body.method, "push", field);
      const calls = actionCalls(stack, mark);
      assert.deepEqual(
        calls.map((c) => [c.path, (c.body as { to?: string }).to]),
        [[PUSH, id]],
      );
      assert.deepEqual(
        sentTo(stack, id).map((s) => s.method),
        ["reply", "push"],
      );
    }
  });

  test("a group's reply token is never used for a send to one of its members (user_key)", async () => {
    const member = ev.randomUserId();
    const groupId = ev.randomGroupId();
    await userSays(stack, ev.groupSource(groupId, member), "in the group");
    const mark = stack.emulator.calls.length;
    const answer = await send(stack, {
      user_key: member,
      serial_number: serial("member"),
      messages: [text("dm")],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.method, "push");
    assert.deepEqual(
      actionCalls(stack, mark).map((c) => [c.path, (c.body as { to?: string }).to]),
      [[PUSH, member]],
    );
    assert.equal(sentTo(stack, groupId).length, 0, "nothing said in the group");
  });

  test("two targets, or none, are refused with -405 naming the fields", async () => {
    const mark = stack.emulator.calls.length;
    const user = ev.randomUserId();
    for (const targets of [
      { user_key: user, group_id: ev.randomGroupId() },
      { group_id: ev.randomGroupId(), room_id: ev.randomRoomId() },
      {},
    ]) {
      const answer = await send(stack, { ...targets, serial_number: serial("t"), messages: [text("x")] });
      assertError(answer, 400, "-405", /user_key.*group_id.*room_id/);
    }
    assert.deepEqual(actionCalls(stack, mark), []);
  });

  test("every LINE message type is sent as given", async () => {
    const user = ev.randomUserId();
    const quickReply = {
      items: [
        {
          type: "action",
          imageUrl: `${HTTPS}/i.png`,
          action: { type: "message", label: "Yes", text: "Yes" },
        },
        { type: "action", action: { type: "camera", label: "Camera" } },
        { type: "action", action: { type: "location", label: "Location" } },
      ],
    };
    const first = [
      {
        type: "text",
        text: "Hello $",
        emojis: [{ index: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "001" }],
      },
      { type: "sticker", packageId: "446", stickerId: "1988" },
      { type: "image", originalContentUrl: `${HTTPS}/o.jpg`, previewImageUrl: `${HTTPS}/p.jpg` },
      {
        type: "video",
        originalContentUrl: `${HTTPS}/o.mp4`,
        previewImageUrl: `${HTTPS}/p.jpg`,
        trackingId: "t-1",
      },
      { type: "audio", originalContentUrl: `${HTTPS}/o.m4a`, duration: 60000 },
    ];
    const second = [
      {
        type: "location",
        title: "office",
        address: "1-3 Kioicho, Tokyo",
        latitude: 35.67966,
        longitude: 139.73669,
      },
      {
        type: "imagemap",
        baseUrl: `${HTTPS}/bot/images/rm001`,
        altText: "This is an imagemap",
        baseSize: { width: 1040, height: 1040 },
        actions: [
          { type: "uri", linkUri: `${HTTPS}/`, area: { x: 0, y: 586, width: 520, height: 454 } },
          { type: "message", text: "Hello", area: { x: 520, y: 586, width: 520, height: 454 } },
        ],
      },
      {
        type: "template",
        altText: "this is a confirm template",
        template: {
          type: "confirm",
          text: "Are you sure?",
          actions: [
            { type: "message", label: "Yes", text: "Yes" },
            { type: "postback", label: "No", data: "answer=no", displayText: "No" },
          ],
        },
      },
      {
        type: "flex",
        altText: "Brown Cafe",
        contents: {
          type: "bubble",
          body: {
            type: "box",
            layout: "vertical",
            contents: [
              { type: "text", text: "Brown Cafe", weight: "bold", size: "xl" },
              { type: "button", action: { type: "uri", label: "WEBSITE", uri: HTTPS } },
            ],
          },
        },
        quickReply,
      },
      { type: "text", text: "🍎".repeat(2500), quickReply },
    ];
    for (const messages of [first, second]) {
      const answer = await send(stack, { user_key: user, serial_number: serial("types"), messages });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assertSentMessages(answer.body.sent_messages, messages);
    }
    assert.deepEqual(
      sentTo(stack, user).map((s) => s.messages),
      [first, second],
    );
  });

  test("bad messages are refused with -405 naming the field; LINE is not called", async () => {
    const user = ev.randomUserId();
    const mark = stack.emulator.calls.length;
    const cases: [unknown[], RegExp][] = [
      [[{ type: "text", text: "a".repeat(5001) }], /messages\[0\]\.text/],
      [[text("ok"), { type: "text", text: `${"🍎".repeat(2500)}a` }], /messages\[1\]\.text/],
      [
        [
          {
            type: "image",
            originalContentUrl: "http://example.com/o.jpg",
            previewImageUrl: `${HTTPS}/p.jpg`,
          },
        ],
        /messages\[0\]\.originalContentUrl: must be an https:\/\/ URL/,
      ],
      [Array.from({ length: 6 }, (_, i) => text(`m${i}`)), /messages: .*5/],
      [[], /messages/],
      [[{ type: "file", fileName: "a.pdf" }], /messages\[0\]\.type/],
    ];
    for (const [messages, field] of cases) {
      const answer = await send(stack, { user_key: user, serial_number: serial("bad"), messages });
      assertError(answer, 400, "-405", field);
    }
    const good = { user_key: user, serial_number: serial("bad"), messages: [text("x")] };
    const params: [Record<string, unknown>, RegExp][] = [
      [{ ...good, serial_number: "x".repeat(31) }, /serial_number/],
      [{ ...good, serial_number: "" }, /serial_number/],
      [{ ...good, notification_disabled: "yes" }, /notification_disabled/],
      [{ ...good, messages: text("not an array") }, /messages/],
      [{ ...good, sender_key: undefined }, /sender_key/],
    ];
    for (const [body, field] of params) {
      assertError(await send(stack, body), 400, "-405", field);
    }
    assert.deepEqual(actionCalls(stack, mark), []);
    assert.equal(sentTo(stack, user).length, 0);
  });

  test("keys: none → 401 -401; another partner's key → 404 -406; a channel without a token → 503 -407", async () => {
    const mark = stack.emulator.calls.length;
    const body = { user_key: ev.randomUserId(), serial_number: serial("key"), messages: [text("x")] };
    assertError(await send(stack, body, null), 401, "-401");
    assertError(await send(stack, body, "not-a-key-of-anyone-at-all"), 401, "-401");
    assertError(await send(stack, body, OTHER_API_KEY), 404, "-406", new RegExp(SENDER_KEY));
    assertError(await send(stack, { ...body, sender_key: OTHER_SENDER_KEY }, API_KEY), 404, "-406");
    assertError(await send(stack, { ...body, sender_key: "9999999999" }, API_KEY), 404, "-406");
    assertError(await send(stack, { ...body, sender_key: OTHER_SENDER_KEY }, OTHER_API_KEY), 503, "-407");
    assert.deepEqual(actionCalls(stack, mark), []);
    assert.equal(await sendRow(stack, body.serial_number), undefined, "nothing recorded for a refused key");
  });

  test("every send is recorded for audit with LINE's request id", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user));
    const byReply = serial("audit-r");
    const byPush = serial("audit-p");
    for (const serialNumber of [byReply, byPush]) {
      const mark = stack.emulator.calls.length;
      const answer = await send(stack, {
        user_key: user,
        serial_number: serialNumber,
        messages: [text("a")],
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const [call] = actionCalls(stack, mark);
      const row = await sendRow(stack, serialNumber);
      assert.ok(row, `a sends row for ${serialNumber}`);
      assert.deepEqual(
        { ...row },
        {
          sender_key: SENDER_KEY,
          serial_number: serialNumber,
          partner_id: "partner",
          conversation: `user:${user}`,
          recipient: user,
          state: "sent",
          method: serialNumber === byReply ? "reply" : "push",
          line_request_id: call?.requestId ?? "missing",
          error_code: null,
          attempts: 1,
        },
      );
    }
  });
});

describe("sending: reply token age", () => {
  let stack: Stack;

  before(async () => {
    // LINE (the emulator) expires reply tokens after 300 ms; talkgate trusts them for 1 s.
    stack = await startStack({
      emulator: { replyTokenTtlMs: 300 },
      config: { send: { replyTokenMaxAgeMs: 1000, retryDelayMs: 20 } },
    });
  });
  after(() => stack.close());

  test("a token LINE calls invalid falls back to push: one message seen", async () => {
    const user = ev.randomUserId();
    const event = await userSays(stack, ev.userSource(user));
    await sleep(450);
    const mark = stack.emulator.calls.length;
    const serialNumber = serial("expired");
    const answer = await send(stack, { user_key: user, serial_number: serialNumber, messages: [text("x")] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.code, "0");
    assert.equal(answer.body.method, "push");
    const calls = actionCalls(stack, mark);
    assert.deepEqual(paths(calls), [`POST ${REPLY} 400`, `POST ${PUSH} 200`]);
    assert.equal((calls[0]?.body as { replyToken?: string } | undefined)?.replyToken, event.replyToken);
    assert.deepEqual(
      sentTo(stack, user).map((s) => s.method),
      ["push"],
    );
    assert.equal((await sendRow(stack, serialNumber))?.method, "push");
  });

  test("a token older than send.replyTokenMaxAgeMs is not tried", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user));
    await sleep(1100);
    const mark = stack.emulator.calls.length;
    const answer = await send(stack, { user_key: user, serial_number: serial("old"), messages: [text("x")] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.method, "push");
    assert.deepEqual(paths(actionCalls(stack, mark)), [`POST ${PUSH} 200`]);
    assert.equal(sentTo(stack, user).length, 1);
  });

  test("a young token is used", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user));
    const answer = await send(stack, {
      user_key: user,
      serial_number: serial("young"),
      messages: [text("x")],
    });
    assert.equal(answer.body.method, "reply", JSON.stringify(answer.body));
    assert.equal(sentTo(stack, user).length, 1);
  });

  test("a serial_number refused in standby, sent again with a token LINE calls invalid, is pushed (not lost)", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user), "to the other module", { mode: "standby" });
    const body = { user_key: user, serial_number: serial("sb-retry"), messages: [text("we are back")] };
    assertError(await send(stack, body), 409, "-409");

    await userSays(stack, ev.userSource(user), "back");
    await sleep(450); // expired at LINE, still young for talkgate
    const mark = stack.emulator.calls.length;
    const answer = await send(stack, body);
    const summary = JSON.stringify({ answer, calls: paths(actionCalls(stack, mark)) });
    // The refused attempt never reached LINE, so "Invalid reply token" cannot mean that it spent the token.
    assert.deepEqual(
      sentTo(stack, user).map((s) => s.messages),
      [[text("we are back")]],
      `the user gets the message: ${summary}`,
    );
    assert.equal(answer.status, 200, summary);
    assert.equal(answer.body.method, "push", summary);
    assert.deepEqual(paths(actionCalls(stack, mark)), [`POST ${REPLY} 400`, `POST ${PUSH} 200`]);
  });

  test("a serial_number whose push failed (429) after LINE refused its token is pushed when sent again", async () => {
    const user = ev.randomUserId();
    await userSays(stack, ev.userSource(user));
    await sleep(450); // expired at LINE, still young for talkgate
    const body = { user_key: user, serial_number: serial("429-retry"), messages: [text("try again")] };
    stack.emulator.failNext(PUSH, { status: 429, body: { message: "You have reached your monthly limit." } });
    let mark = stack.emulator.calls.length;
    assertError(await send(stack, body), 429, "429");
    assert.deepEqual(paths(actionCalls(stack, mark)), [`POST ${REPLY} 400`, `POST ${PUSH} 429`]);

    // The quota is raised; the partner sends the same serial_number again.
    mark = stack.emulator.calls.length;
    const answer = await send(stack, body);
    const summary = JSON.stringify({ answer, calls: paths(actionCalls(stack, mark)) });
    // Nothing was ever sent: LINE said so for both calls of the first attempt.
    assert.deepEqual(
      sentTo(stack, user).map((s) => s.messages),
      [[text("try again")]],
      `the user gets the message: ${summary}`,
    );
    assert.equal(answer.status, 200, summary);
    assert.equal(answer.body.method, "push", summary);
  });
});

describe("sending: LINE unreachable", () => {
  let stack: Stack;

  before(async () => {
    // A port that was free a moment ago and has nothing listening now.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    stack = await startStack({
      line: { apiBaseUrl: `http://127.0.0.1:${port}` },
      config: { send: { retryDelayMs: 20 } },
    });
  });
  after(() => stack.close());

  test("answers 502 -404 after its retries; recorded as failed", async () => {
    const serialNumber = serial("down");
    const answer = await send(stack, {
      user_key: ev.randomUserId(),
      serial_number: serialNumber,
      messages: [text("x")],
    });
    assertError(answer, 502, "-404", /unreachable/i);
    assert.equal(stack.emulator.sent.length, 0);
    const row = await sendRow(stack, serialNumber);
    assert.equal(row?.state, "failed");
    assert.equal(row?.error_code, "-404");
  });
});
