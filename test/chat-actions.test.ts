// Partner API calls that act on a chat or a channel at LINE (SPEC §6): loading, read, user profile and
// directory, webhook endpoint; end to end against the LINE emulator.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { actionCalls, assertError, callApi } from "./support/partner-api.ts";
import { OTHER_API_KEY, OTHER_SENDER_KEY, SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

describe("chat and channel actions", () => {
  let stack: Stack;
  const logged: Array<Record<string, unknown>> = [];

  before(async () => {
    stack = await startStack({
      config: { send: { retryDelayMs: 20 } },
      partner: { allowWebhookEndpointChange: true },
      logger: pino({ level: "info" }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    });
  });
  after(() => stack.close());

  /** The user messages the account; resolves with the event and the payload the partner received. */
  async function relayed(userId: string, text = "hello") {
    const event = ev.textEvent(ev.userSource(userId), text);
    const result = await stack.emulator.sendWebhook(SENDER_KEY, [event]);
    assert.equal(result.status, 200, result.body);
    const accepted = await stack.sink.waitFor((all) =>
      all.some((p) => (p as PartnerPayload).content.id === event.message.id),
    );
    const payload = (accepted as PartnerPayload[]).find((p) => p.content.id === event.message.id);
    assert.ok(payload);
    return { event, payload };
  }

  test("loading: 5 s reaches LINE; 7 s is refused with -405 naming seconds", async () => {
    const user = ev.randomUserId();
    let mark = stack.emulator.calls.length;
    const answer = await callApi(stack, "POST", "/line/chat/loading", {
      sender_key: SENDER_KEY,
      user_key: user,
      seconds: 5,
    });
    assert.deepEqual(answer, { status: 200, body: { code: "0" } });
    const calls = actionCalls(stack, mark);
    assert.deepEqual(
      calls.map((c) => [c.method, c.path, c.status, c.body]),
      [["POST", "/v2/bot/chat/loading/start", 202, { chatId: user, loadingSeconds: 5 }]],
    );

    mark = stack.emulator.calls.length;
    for (const seconds of [7, 0, 65, 5.5]) {
      const refused = await callApi(stack, "POST", "/line/chat/loading", {
        sender_key: SENDER_KEY,
        user_key: user,
        seconds,
      });
      assertError(refused, 400, "-405", /seconds/);
    }
    assertError(
      await callApi(
        stack,
        "POST",
        "/line/chat/loading",
        { sender_key: SENDER_KEY, user_key: user, seconds: 5 },
        null,
      ),
      401,
      "-401",
    );
    assertError(
      await callApi(
        stack,
        "POST",
        "/line/chat/loading",
        { sender_key: SENDER_KEY, user_key: user, seconds: 5 },
        OTHER_API_KEY,
      ),
      404,
      "-406",
    );
    assert.deepEqual(actionCalls(stack, mark), []);
  });

  test("loading in a group (LINE: 1:1 only) passes LINE's 400 through", async () => {
    const answer = await callApi(stack, "POST", "/line/chat/loading", {
      sender_key: SENDER_KEY,
      user_key: ev.randomGroupId(),
      seconds: 10,
    });
    assertError(answer, 400, "400");
  });

  test("read: marks as read with the message's markAsReadToken; an unknown serial_number is -508", async () => {
    const user = ev.randomUserId();
    const { event, payload } = await relayed(user);
    let mark = stack.emulator.calls.length;
    const answer = await callApi(stack, "POST", "/line/chat/read", {
      sender_key: SENDER_KEY,
      serial_number: payload.serial_number,
    });
    assert.deepEqual(answer, { status: 200, body: { code: "0" } });
    assert.deepEqual(
      actionCalls(stack, mark).map((c) => [c.path, c.status, c.body]),
      [["/v2/bot/chat/markAsRead", 200, { markAsReadToken: event.message.markAsReadToken }]],
    );

    mark = stack.emulator.calls.length;
    assertError(
      await callApi(stack, "POST", "/line/chat/read", {
        sender_key: SENDER_KEY,
        serial_number: "Unope-0001-00000000",
      }),
      404,
      "-508",
    );
    assertError(
      await callApi(
        stack,
        "POST",
        "/line/chat/read",
        { sender_key: SENDER_KEY, serial_number: payload.serial_number },
        OTHER_API_KEY,
      ),
      404,
      "-406",
    );

    // A postback has no markAsReadToken (LINE gives one to messages only).
    const postback = ev.postbackEvent(ev.userSource(user), { data: "action=buy" });
    assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [postback])).status, 200);
    const isPostback = (p: unknown) =>
      (p as PartnerPayload).event_type === "postback" && (p as PartnerPayload).user_key === user;
    const postbackPayload = (await stack.sink.waitFor((all) => all.some(isPostback))).find(isPostback) as
      | PartnerPayload
      | undefined;
    assert.ok(postbackPayload);
    assertError(
      await callApi(stack, "POST", "/line/chat/read", {
        sender_key: SENDER_KEY,
        serial_number: postbackPayload.serial_number,
      }),
      404,
      "-509",
    );
    assert.deepEqual(actionCalls(stack, mark), []);
  });

  test("user profile: LINE's fields with the directory's; an unknown user is LINE's 404 passed through", async () => {
    const user = ev.randomUserId();
    stack.emulator.setProfile(user, {
      displayName: "홍길동",
      pictureUrl: "https://profile.line-scdn.net/abc",
      statusMessage: "상담 중",
      language: "ko",
    });
    const profile = (userKey: string, key?: string) =>
      callApi(
        stack,
        "GET",
        `/line/user/profile?sender_key=${SENDER_KEY}&user_key=${encodeURIComponent(userKey)}`,
        undefined,
        key,
      );

    assert.deepEqual(await profile(user), {
      status: 200,
      body: {
        code: "0",
        user_key: user,
        user_name: "홍길동",
        picture_url: "https://profile.line-scdn.net/abc",
        status_message: "상담 중",
        language: "ko",
        e164: "",
        agree_type: 0,
      },
    });

    const set = await callApi(stack, "POST", "/line/user", {
      sender_key: SENDER_KEY,
      user_key: user,
      e164: "+821012345678",
      agree_type: 1,
    });
    assert.deepEqual(set, { status: 200, body: { code: "0" } });
    const after = await profile(user);
    assert.equal(after.body.e164, "+821012345678");
    assert.equal(after.body.agree_type, 1);
    assert.equal(after.body.user_name, "홍길동");

    // Setting one field keeps the other.
    await callApi(stack, "POST", "/line/user", { sender_key: SENDER_KEY, user_key: user, agree_type: 2 });
    const partial = await profile(user);
    assert.equal(partial.body.e164, "+821012345678");
    assert.equal(partial.body.agree_type, 2);

    const unknown = await profile(ev.randomUserId());
    assertError(unknown, 404, "404", /^Not found$/);
    assertError(await profile(user, OTHER_API_KEY), 404, "-406");
    assertError(
      await callApi(stack, "POST", "/line/user", { sender_key: SENDER_KEY, user_key: user, agree_type: 10 }),
      400,
      "-405",
      /agree_type/,
    );
  });

  test("the directory entry set by POST /line/user is carried in the user's next payloads", async () => {
    const user = ev.randomUserId();
    const before = await relayed(user, "first");
    assert.equal(before.payload.e164, "");
    assert.equal(before.payload.agree_type, 0);
    const set = await callApi(stack, "POST", "/line/user", {
      sender_key: SENDER_KEY,
      user_key: user,
      e164: "+66812345678",
      agree_type: 3,
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const { payload } = await relayed(user, "second");
    assert.equal(payload.user_key, user);
    assert.equal(payload.e164, "+66812345678");
    assert.equal(payload.agree_type, 3);
  });

  test("webhook endpoint: set an https URL at LINE and read it back; http is refused", async () => {
    const talkgateWebhook = `${stack.talkgate.url}/line/webhook/${SENDER_KEY}`;
    const endpoint = "https://relay.example.com/line/webhook/1656168303";
    try {
      let mark = stack.emulator.calls.length;
      const set = await callApi(stack, "POST", "/line/channel/webhook/endpoint/set", {
        sender_key: SENDER_KEY,
        endpoint,
      });
      assert.deepEqual(set, { status: 200, body: { code: "0" } });
      assert.equal(stack.emulator.channel(SENDER_KEY)?.webhookUrl, endpoint);
      assert.deepEqual(
        actionCalls(stack, mark).map((c) => [c.method, c.path, c.status, c.body]),
        [["PUT", "/v2/bot/channel/webhook/endpoint", 200, { endpoint }]],
      );
      // Who moved the channel's webhooks where, by host (a path may carry secrets), never the key itself.
      const change = logged.find((line) => line.msg === "channel:webhook:changed");
      assert.deepEqual(
        change && [change.partner, change.sender_key, change.from_host, change.to_host, typeof change.key_id],
        ["partner", SENDER_KEY, new URL(talkgateWebhook).host, "relay.example.com", "string"],
      );

      const info = await callApi(
        stack,
        "GET",
        `/line/channel/webhook/endpoint/info?sender_key=${SENDER_KEY}`,
      );
      assert.deepEqual(info, { status: 200, body: { code: "0", endpoint, active: true } });
      assert.ok(
        stack.emulator.calls.some((c) => c.method === "GET" && c.path === "/v2/bot/channel/webhook/endpoint"),
      );

      mark = stack.emulator.calls.length;
      for (const bad of ["http://relay.example.com/line/webhook", "not a url"]) {
        const refused = await callApi(stack, "POST", "/line/channel/webhook/endpoint/set", {
          sender_key: SENDER_KEY,
          endpoint: bad,
        });
        assertError(refused, 400, "-405", /endpoint/);
      }
      assertError(
        await callApi(
          stack,
          "POST",
          "/line/channel/webhook/endpoint/set",
          { sender_key: SENDER_KEY, endpoint },
          OTHER_API_KEY,
        ),
        404,
        "-406",
      );
      assert.deepEqual(actionCalls(stack, mark), []);
      assert.equal(stack.emulator.channel(SENDER_KEY)?.webhookUrl, endpoint);
    } finally {
      stack.emulator.setWebhookUrl(SENDER_KEY, talkgateWebhook);
    }
  });

  test("webhook endpoint: a partner without the permission is refused 403 -403 and nothing changes", async () => {
    const mark = stack.emulator.calls.length;
    const refused = await callApi(
      stack,
      "POST",
      "/line/channel/webhook/endpoint/set",
      { sender_key: OTHER_SENDER_KEY, endpoint: "https://attacker.example/hook" },
      OTHER_API_KEY,
    );
    assertError(refused, 403, "-403", /allowWebhookEndpointChange/);
    assert.deepEqual(stack.emulator.calls.slice(mark), []);
  });
});
