// Tests of the LINE emulator over real loopback HTTP: signed webhooks, profiles, reply, push, auth, faults.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { HTTPFetchError, messagingApi, validateSignature } from "@line/bot-sdk";
import { followEvent, randomUserId, redelivered, textEvent, userSource } from "./events.ts";
import { type LineEmulator, startLineEmulator } from "./line-emulator.ts";

const A = { channelId: "1656168303", channelSecret: "secret-a ü", accessToken: "token-a" };
const B = { channelId: "2000000001", channelSecret: "secret-b", accessToken: "token-b" };

type Received = { headers: IncomingHttpHeaders; rawHeaders: string[]; raw: Buffer };

// A tiny webhook receiver standing in for talkgate.
async function startReceiver(): Promise<{
  url: string;
  received: Received[];
  status: number;
  server: Server;
}> {
  const state = { url: "", received: [] as Received[], status: 200, server: createServer() };
  state.server.on("request", (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      state.received.push({ headers: req.headers, rawHeaders: req.rawHeaders, raw: Buffer.concat(chunks) });
      res.writeHead(state.status, { "content-type": "text/plain" }).end(`answered ${state.status}`);
    });
  });
  await new Promise<void>((resolve) => state.server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/line/webhook/${A.channelId}`;
  return state;
}

let clock = 1_700_000_000_000;
let emulator: LineEmulator;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

before(async () => {
  receiver = await startReceiver();
  emulator = await startLineEmulator({
    channels: [{ ...A, webhookUrl: receiver.url }, B],
    now: () => clock,
  });
});

after(async () => {
  await emulator.close();
  await new Promise((resolve) => receiver.server.close(resolve));
});

beforeEach(() => {
  receiver.received.length = 0;
  receiver.status = 200;
  emulator.clearRecords();
  emulator.clearFaults();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${A.accessToken}` },
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const response = await fetch(`${emulator.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text === "" ? {} : JSON.parse(text) };
}

function hmac(secret: string, bytes: Buffer): string {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(bytes).digest("base64");
}

describe("sendWebhook", () => {
  test("posts {destination, events} signed over the exact bytes", async () => {
    const event = textEvent(userSource(randomUserId()), "สวัสดี 🍎");
    const result = await emulator.sendWebhook(A.channelId, [event]);
    assert.deepEqual(result, { status: 200, body: "answered 200" });
    const got = receiver.received[0];
    assert.ok(got);
    assert.equal(got.headers["content-type"], "application/json; charset=utf-8");
    const signature = got.headers["x-line-signature"];
    assert.equal(signature, hmac(A.channelSecret, got.raw));
    assert.ok(validateSignature(got.raw, A.channelSecret, String(signature)));
    const body = JSON.parse(got.raw.toString("utf8"));
    assert.match(body.destination, /^U[0-9a-f]{32}$/);
    assert.deepEqual(body.events, [event]);
    assert.equal(emulator.webhooks[0]?.status, 200);
  });

  test("a rawBody is sent byte for byte and signed as is (unicode escapes kept)", async () => {
    const raw =
      '{"destination":"Uxx","events":[{"type":"message","message":{"type":"text","text":"\\uD83D\\uDE00"}}]}';
    await emulator.sendWebhook(A.channelId, [], { rawBody: raw });
    const got = receiver.received[0];
    assert.ok(got);
    assert.equal(got.raw.toString("utf8"), raw);
    assert.equal(got.headers["x-line-signature"], hmac(A.channelSecret, Buffer.from(raw, "utf8")));
    // Re-serialising changes the bytes, so the signature no longer holds: the reason to verify raw bytes.
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(raw)), "utf8");
    assert.notEqual(hmac(A.channelSecret, reserialised), got.headers["x-line-signature"]);
  });

  test("signature override, omission and header spelling", async () => {
    await emulator.sendWebhook(A.channelId, [], { signature: "bogus" });
    await emulator.sendWebhook(A.channelId, [], { signature: null });
    await emulator.sendWebhook(A.channelId, [], { headerName: "X-LINE-Signature" });
    const [bogus, none, upper] = receiver.received;
    assert.equal(bogus?.headers["x-line-signature"], "bogus");
    assert.equal(none?.headers["x-line-signature"], undefined);
    assert.ok(upper?.rawHeaders.includes("X-LINE-Signature"));
    assert.equal(upper?.headers["x-line-signature"], hmac(A.channelSecret, upper?.raw ?? Buffer.alloc(0)));
  });

  test("returns non-2xx answers and throws on connection errors", async () => {
    receiver.status = 500;
    assert.deepEqual(await emulator.sendWebhook(A.channelId, []), { status: 500, body: "answered 500" });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(
      emulator.sendWebhook(A.channelId, [], { url: `http://127.0.0.1:${port}/x` }),
      /failed/,
    );
    await assert.rejects(emulator.sendWebhook(B.channelId, []), /no webhook URL/);
  });
});

describe("authentication and recording", () => {
  test("missing or unknown tokens answer 401 in LINE's shape", async () => {
    const missing = await call("GET", "/v2/bot/profile/U1", undefined, {});
    assert.equal(missing.status, 401);
    assert.match(String(missing.json.message), /Authorization header required/);
    const wrong = await call("GET", "/v2/bot/profile/U1", undefined, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.json.message), /^Authentication failed/);
    assert.match(wrong.headers.get("x-line-request-id") ?? "", /^[0-9a-f]{32}$/);
  });

  test("every call is recorded without its authorization header", async () => {
    await call("GET", "/v2/bot/profile/U1", undefined, { authorization: "Bearer nope" });
    await call("GET", "/v2/bot/profile/U2", undefined, {
      authorization: `Bearer ${B.accessToken}`,
      "X-Extra": "1",
    });
    assert.equal(emulator.calls.length, 2);
    const [first, second] = emulator.calls;
    assert.deepEqual([first?.channelId, first?.status], [null, 401]);
    assert.deepEqual(
      [second?.channelId, second?.status, second?.path],
      [B.channelId, 404, "/v2/bot/profile/U2"],
    );
    assert.equal(second?.headers.authorization, undefined);
    assert.equal(second?.headers["x-extra"], "1");
    assert.equal(second?.at, clock);
  });
});

describe("profiles", () => {
  test("registered profiles answer 200 (through the official SDK client), others 404", async () => {
    const userId = randomUserId();
    emulator.setProfile(userId, { displayName: "홍길동", language: "ko" });
    const client = new messagingApi.MessagingApiClient({
      channelAccessToken: A.accessToken,
      baseURL: emulator.url,
    });
    assert.deepEqual(await client.getProfile(userId), { displayName: "홍길동", language: "ko", userId });
    const missing = await call("GET", `/v2/bot/profile/${randomUserId()}`);
    assert.deepEqual([missing.status, missing.json], [404, { message: "Not found" }]);
  });

  test("group and room member profiles are separate from 1:1 profiles", async () => {
    const userId = randomUserId();
    emulator.setGroupMemberProfile("Cg", userId, {
      displayName: "G",
      statusMessage: "hidden",
      pictureUrl: "p",
    });
    emulator.setRoomMemberProfile("Rr", userId, { displayName: "R" });
    assert.deepEqual((await call("GET", `/v2/bot/group/Cg/member/${userId}`)).json, {
      displayName: "G",
      userId,
      pictureUrl: "p",
    });
    assert.equal((await call("GET", `/v2/bot/room/Rr/member/${userId}`)).json.displayName, "R");
    assert.equal((await call("GET", `/v2/bot/room/Cg/member/${userId}`)).status, 404);
    assert.equal((await call("GET", `/v2/bot/profile/${userId}`)).status, 404);
  });
});

describe("reply", () => {
  const messages = [{ type: "text", text: "hi" }];

  test("a token works once, only after its webhook was sent, only for its channel", async () => {
    const userId = randomUserId();
    const event = textEvent(userSource(userId), "question");
    const unsent = await call("POST", "/v2/bot/message/reply", { replyToken: event.replyToken, messages });
    assert.deepEqual([unsent.status, unsent.json], [400, { message: "Invalid reply token" }]);

    await emulator.sendWebhook(A.channelId, [event]);
    const other = await call(
      "POST",
      "/v2/bot/message/reply",
      { replyToken: event.replyToken, messages },
      {
        authorization: `Bearer ${B.accessToken}`,
      },
    );
    assert.equal(other.status, 400);

    const first = await call("POST", "/v2/bot/message/reply", { replyToken: event.replyToken, messages });
    assert.equal(first.status, 200);
    const sentMessages = first.json.sentMessages as { id: string; quoteToken: string }[];
    assert.equal(sentMessages.length, 1);
    assert.match(sentMessages[0]?.id ?? "", /^\d+$/);
    assert.equal(typeof sentMessages[0]?.quoteToken, "string");
    assert.deepEqual(
      emulator.sent.map((s) => [s.method, s.to, s.messages]),
      [["reply", userId, messages]],
    );

    const again = await call("POST", "/v2/bot/message/reply", { replyToken: event.replyToken, messages });
    assert.deepEqual([again.status, again.json.message], [400, "Invalid reply token"]);
  });

  test("a token expires 60 s after sending; a redelivery refreshes it", async () => {
    const event = followEvent(userSource(randomUserId()), {}, { timestamp: clock });
    await emulator.sendWebhook(A.channelId, [event]);
    clock += 61_000;
    const late = await call("POST", "/v2/bot/message/reply", { replyToken: event.replyToken, messages });
    assert.equal(late.status, 400);
    await emulator.sendWebhook(A.channelId, [redelivered(event)]);
    const fresh = await call("POST", "/v2/bot/message/reply", { replyToken: event.replyToken, messages });
    assert.equal(fresh.status, 200);
  });

  test("a redelivery never extends a token past 20 minutes from the event", async () => {
    const event = textEvent(userSource(randomUserId()), "old", { timestamp: clock - 20 * 60_000 });
    await emulator.sendWebhook(A.channelId, [redelivered(event)]);
    const result = await call("POST", "/v2/bot/message/reply", { replyToken: event.replyToken, messages });
    assert.equal(result.status, 400);
  });

  test("messages must number 1 to 5", async () => {
    const event = textEvent(userSource(randomUserId()), "q");
    await emulator.sendWebhook(A.channelId, [event]);
    const six = Array.from({ length: 6 }, () => messages[0]);
    const tooMany = await call("POST", "/v2/bot/message/reply", {
      replyToken: event.replyToken,
      messages: six,
    });
    assert.equal(tooMany.status, 400);
    assert.deepEqual(tooMany.json.details, [
      { message: "Size must be between 1 and 5", property: "messages" },
    ]);
    assert.equal(emulator.sent.length, 0);
  });
});

describe("push", () => {
  const to = randomUserId();
  const messages = [{ type: "text", text: "hello" }];

  test("a repeated retry key answers 409 with the first request id and sentMessages", async () => {
    const key = randomUUID();
    const headers = { authorization: `Bearer ${A.accessToken}`, "x-line-retry-key": key };
    const first = await call("POST", "/v2/bot/message/push", { to, messages }, headers);
    assert.equal(first.status, 200);
    const second = await call("POST", "/v2/bot/message/push", { to, messages }, headers);
    assert.equal(second.status, 409);
    assert.equal(second.headers.get("x-line-accepted-request-id"), first.headers.get("x-line-request-id"));
    assert.deepEqual(second.json, {
      message: "The retry key is already accepted",
      sentMessages: first.json.sentMessages,
    });
    assert.equal(emulator.sent.length, 1);
    assert.equal(emulator.sent[0]?.retryKey, key);

    // The same key in another channel is a different request.
    const other = await call(
      "POST",
      "/v2/bot/message/push",
      { to, messages },
      {
        ...headers,
        authorization: `Bearer ${B.accessToken}`,
      },
    );
    assert.equal(other.status, 200);

    clock += 24 * 60 * 60 * 1000;
    assert.equal((await call("POST", "/v2/bot/message/push", { to, messages }, headers)).status, 200);
  });

  test("the official SDK sees the 409 as an HTTPFetchError", async () => {
    const client = new messagingApi.MessagingApiClient({
      channelAccessToken: A.accessToken,
      baseURL: emulator.url,
    });
    const key = randomUUID();
    const ok = await client.pushMessage({ to, messages: [{ type: "text", text: "x" }] }, key);
    assert.equal(ok.sentMessages?.length, 1);
    await assert.rejects(
      client.pushMessage({ to, messages: [{ type: "text", text: "x" }] }, key),
      (error) => {
        assert.ok(error instanceof HTTPFetchError);
        assert.equal(error.status, 409);
        assert.match(error.headers.get("x-line-accepted-request-id") ?? "", /^[0-9a-f]{32}$/);
        return true;
      },
    );
  });

  test("pushes without a key are never deduplicated; a malformed key is refused", async () => {
    assert.equal((await call("POST", "/v2/bot/message/push", { to, messages })).status, 200);
    assert.equal((await call("POST", "/v2/bot/message/push", { to, messages })).status, 200);
    assert.equal(emulator.sent.length, 2);
    const bad = await call(
      "POST",
      "/v2/bot/message/push",
      { to, messages },
      {
        authorization: `Bearer ${A.accessToken}`,
        "x-line-retry-key": "not-a-uuid",
      },
    );
    assert.equal(bad.status, 400);
    assert.equal((await call("POST", "/v2/bot/message/push", { to: "", messages })).status, 400);
  });
});

describe("fault injection", () => {
  const to = randomUserId();
  const messages = [{ type: "text", text: "hello" }];

  test("failNext answers the next matching calls, then normal service resumes", async () => {
    emulator.failNext("/v2/bot/message/push", { status: 500 }, 2);
    emulator.failNext(/\/profile\//, {
      status: 429,
      body: { message: "You have reached your monthly limit." },
    });
    const a = await call("POST", "/v2/bot/message/push", { to, messages });
    const b = await call("POST", "/v2/bot/message/push", { to, messages });
    const c = await call("POST", "/v2/bot/message/push", { to, messages });
    assert.deepEqual([a.status, b.status, c.status], [500, 500, 200]);
    assert.deepEqual(a.json, { message: "Internal server error" });
    const limited = await call("GET", "/v2/bot/profile/U1");
    assert.deepEqual([limited.status, limited.json.message], [429, "You have reached your monthly limit."]);
    assert.equal(emulator.sent.length, 1);
    assert.deepEqual(
      emulator.calls.map((x) => x.status),
      [500, 500, 200, 429],
    );
  });

  test("afterProcessing sends the messages but loses the answer; the retry gets 409", async () => {
    const key = randomUUID();
    const headers = { authorization: `Bearer ${A.accessToken}`, "x-line-retry-key": key };
    emulator.failNext("/v2/bot/message/push", { status: 500, afterProcessing: true });
    assert.equal((await call("POST", "/v2/bot/message/push", { to, messages }, headers)).status, 500);
    assert.equal((await call("POST", "/v2/bot/message/push", { to, messages }, headers)).status, 409);
    assert.equal(emulator.sent.length, 1);
  });

  test("delays slow the matching answers down", async () => {
    emulator.setDelay("/v2/bot/profile/", 150);
    let started = performance.now();
    await call("GET", "/v2/bot/profile/U1");
    assert.ok(performance.now() - started >= 140);
    emulator.setDelay("/v2/bot/profile/", 0);
    emulator.failNext("/v2/bot/profile/", { status: 503, delayMs: 100 });
    started = performance.now();
    assert.equal((await call("GET", "/v2/bot/profile/U1")).status, 503);
    assert.ok(performance.now() - started >= 90);
  });
});

describe("other endpoints", () => {
  test("webhook endpoint set and info, per channel by token", async () => {
    const auth = { authorization: `Bearer ${B.accessToken}` };
    assert.deepEqual((await call("GET", "/v2/bot/channel/webhook/endpoint", undefined, auth)).json, {
      endpoint: "",
      active: false,
    });
    const put = await call(
      "PUT",
      "/v2/bot/channel/webhook/endpoint",
      { endpoint: "https://x.test/hook" },
      auth,
    );
    assert.equal(put.status, 200);
    assert.deepEqual((await call("GET", "/v2/bot/channel/webhook/endpoint", undefined, auth)).json, {
      endpoint: "https://x.test/hook",
      active: true,
    });
    assert.equal(emulator.channel(A.channelId)?.webhookUrl, receiver.url);
  });

  test("content: 200 bytes, 202 while transcoding, 410 when unsent, 404 when unknown", async () => {
    emulator.setContent("m1", { body: "PNGDATA", contentType: "image/png" });
    emulator.setContent("m2", { body: "", transcoding: "processing" });
    emulator.setContent("m3", { body: "x", gone: true });
    const auth = { authorization: `Bearer ${A.accessToken}` };
    const ok = await fetch(`${emulator.url}/v2/bot/message/m1/content`, { headers: auth });
    assert.deepEqual(
      [ok.status, ok.headers.get("content-type"), await ok.text()],
      [200, "image/png", "PNGDATA"],
    );
    assert.equal((await call("GET", "/v2/bot/message/m2/content")).status, 202);
    assert.deepEqual((await call("GET", "/v2/bot/message/m2/content/transcoding")).json, {
      status: "processing",
    });
    assert.equal((await call("GET", "/v2/bot/message/m3/content")).status, 410);
    assert.equal((await call("GET", "/v2/bot/message/m4/content")).status, 404);
  });

  test("loading animation and mark-as-read", async () => {
    assert.equal(
      (await call("POST", "/v2/bot/chat/loading/start", { chatId: "U1", loadingSeconds: 5 })).status,
      202,
    );
    assert.equal(
      (await call("POST", "/v2/bot/chat/loading/start", { chatId: "U1", loadingSeconds: 7 })).status,
      400,
    );
    assert.equal((await call("POST", "/v2/bot/chat/markAsRead", { markAsReadToken: "t" })).status, 200);
  });
});

describe("control API", () => {
  test("say sends a signed text webhook; sent and calls are listed", async () => {
    const userId = randomUserId();
    const said = await call("POST", `/_emulator/channels/${A.channelId}/say`, { userId, text: "hello" }, {});
    assert.equal(said.status, 200);
    assert.equal(said.json.status, 200);
    const got = receiver.received[0];
    assert.ok(got);
    assert.equal(got.headers["x-line-signature"], hmac(A.channelSecret, got.raw));
    const event = JSON.parse(got.raw.toString("utf8")).events[0];
    assert.deepEqual([event.source.userId, event.message.text], [userId, "hello"]);

    await call("POST", "/_emulator/profiles", { userId, displayName: "Somchai" }, {});
    assert.equal((await call("GET", `/v2/bot/profile/${userId}`)).json.displayName, "Somchai");
    const reply = await call("POST", "/v2/bot/message/reply", {
      replyToken: event.replyToken,
      messages: [{ type: "text", text: "hi" }],
    });
    assert.equal(reply.status, 200);
    const sent = (await fetch(`${emulator.url}/_emulator/sent`).then((r) => r.json())) as unknown[];
    assert.equal(sent.length, 1);
    const calls = (await fetch(`${emulator.url}/_emulator/calls`).then((r) => r.json())) as {
      path: string;
    }[];
    assert.deepEqual(
      calls.map((c) => c.path),
      [`/v2/bot/profile/${userId}`, "/v2/bot/message/reply"],
    );
  });

  test("webhook relays given events; unknown channels answer 404", async () => {
    const event = textEvent(userSource(randomUserId()), "via control");
    const result = await call("POST", `/_emulator/channels/${A.channelId}/webhook`, { events: [event] }, {});
    assert.deepEqual(result.json, { status: 200, body: "answered 200" });
    assert.deepEqual(JSON.parse(receiver.received[0]?.raw.toString("utf8") ?? "").events, [event]);
    assert.equal((await call("POST", "/_emulator/channels/999/say", { text: "x" }, {})).status, 404);
  });
});
