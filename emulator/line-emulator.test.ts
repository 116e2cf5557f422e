// Tests of the LINE emulator over real loopback HTTP: signed webhooks, profiles, reply, push, auth, faults.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { HTTPFetchError, messagingApi, validateSignature } from "@line/bot-sdk";
import {
  EVENT_KINDS,
  followEvent,
  imageEvent,
  randomUserId,
  redelivered,
  textEvent,
  userSource,
  webhookBody,
} from "./events.ts";
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

// One valid message of every type LINE accepts, and whether LINE answers a quoteToken for it.
const VALID: { message: Record<string, unknown>; quotable: boolean }[] = [
  { message: { type: "text", text: "🍎".repeat(2500) }, quotable: true },
  {
    message: {
      type: "textV2",
      text: "Hi {user}! {smile} {{literal}}",
      substitution: {
        user: { type: "mention", mentionee: { type: "user", userId: "U1" } },
        smile: { type: "emoji", productId: "5ac1bfd5040ab15980c9b435", emojiId: "001" },
      },
    },
    quotable: true,
  },
  { message: { type: "sticker", packageId: "446", stickerId: "1988" }, quotable: true },
  {
    message: {
      type: "image",
      originalContentUrl: "https://x.test/a.jpg",
      previewImageUrl: "https://x.test/p.jpg",
    },
    quotable: true,
  },
  {
    message: {
      type: "video",
      originalContentUrl: "https://x.test/a.mp4",
      previewImageUrl: "https://x.test/p.jpg",
      trackingId: "track-1",
    },
    quotable: true,
  },
  {
    message: { type: "audio", originalContentUrl: "https://x.test/a.m4a", duration: 60000 },
    quotable: false,
  },
  {
    message: { type: "location", title: "Office", address: "1-3 Kioicho", latitude: 35.6, longitude: 139.7 },
    quotable: false,
  },
  {
    message: {
      type: "imagemap",
      baseUrl: "https://x.test/rm001",
      altText: "imagemap",
      baseSize: { width: 1040, height: 1040 },
      actions: [
        { type: "uri", linkUri: "https://x.test/", area: { x: 0, y: 0, width: 520, height: 1040 } },
        { type: "message", text: "hello", area: { x: 520, y: 0, width: 520, height: 1040 } },
      ],
    },
    quotable: false,
  },
  {
    message: {
      type: "template",
      altText: "buttons",
      template: {
        type: "buttons",
        thumbnailImageUrl: "https://x.test/t.jpg",
        text: "Please select",
        actions: [{ type: "postback", label: "Buy", data: "buy" }],
      },
    },
    quotable: true,
  },
  {
    message: {
      type: "flex",
      altText: "flex",
      contents: {
        type: "bubble",
        hero: { type: "image", url: "https://x.test/h.png" },
        body: { type: "box", layout: "vertical", contents: [{ type: "text", text: "hello" }] },
      },
    },
    quotable: true,
  },
  {
    message: { type: "coupon", couponId: "01JYNW8JMQVFBNWF1APF8Z3FS7", deliveryTag: "winter_2025" },
    quotable: false,
  },
];

// Requests LINE refuses, with the details it answers. `messages` replaces the whole list when given.
const REFUSED: { name: string; message?: unknown; messages?: unknown; details: [string, string][] }[] = [
  { name: "no messages", messages: undefined, details: [["messages", "must be specified"]] },
  { name: "an empty list", messages: [], details: [["messages", "Size must be between 1 and 5"]] },
  { name: "a message that is not an object", message: "hi", details: [["messages[0]", "must be an object"]] },
  {
    name: "an unknown type",
    message: { type: "richmessage", text: "x" },
    details: [
      [
        "messages[0].type",
        "Must be one of the following values: [text, textV2, sticker, image, video, audio, location, imagemap, template, flex, coupon]",
      ],
    ],
  },
  { name: "no type", message: { text: "x" }, details: [["messages[0].type", "must be specified"]] },
  {
    name: "text: empty",
    message: { type: "text", text: "" },
    details: [["messages[0].text", "May not be empty"]],
  },
  {
    name: "text: 5,001 UTF-16 units",
    message: { type: "text", text: `${"🍎".repeat(2500)}!` },
    details: [["messages[0].text", "Length must be between 0 and 5000"]],
  },
  {
    name: "text: an emoji without ids",
    message: { type: "text", text: "$", emojis: [{ index: 0 }] },
    details: [
      ["messages[0].emojis[0].productId", "must be specified"],
      ["messages[0].emojis[0].emojiId", "must be specified"],
    ],
  },
  {
    name: "textV2: a placeholder without substitution, a bad key, a mention without mentionee",
    message: {
      type: "textV2",
      text: "{a} {b}",
      substitution: { a: { type: "mention" }, "bad-key": { type: "emoji" } },
    },
    details: [
      ["messages[0].substitution.a.mentionee", "must be specified"],
      ["messages[0].substitution.bad-key", "key must be 1 to 20 characters of 0-9, A-Z, a-z and _"],
      ["messages[0].substitution.bad-key.productId", "must be specified"],
      ["messages[0].substitution.bad-key.emojiId", "must be specified"],
      ["messages[0].text", "{b} has no entry in substitution"],
    ],
  },
  {
    name: "textV2: an unpaired brace",
    message: { type: "textV2", text: "a } b" },
    details: [["messages[0].text", "{ and } must be used in pairs (write {{ and }} for literal braces)"]],
  },
  {
    name: "sticker: no ids",
    message: { type: "sticker" },
    details: [
      ["messages[0].packageId", "must be specified"],
      ["messages[0].stickerId", "must be specified"],
    ],
  },
  {
    name: "sticker: numeric ids",
    message: { type: "sticker", packageId: 446, stickerId: "1988" },
    details: [["messages[0].packageId", "must be a string"]],
  },
  {
    name: "image: http:// URLs",
    message: {
      type: "image",
      originalContentUrl: "http://x.test/a.jpg",
      previewImageUrl: "http://x.test/p.jpg",
    },
    details: [
      ["messages[0].originalContentUrl", "must be a valid HTTPS URL"],
      ["messages[0].previewImageUrl", "must be a valid HTTPS URL"],
    ],
  },
  {
    name: "image: no preview, a URL over 2,000 characters",
    message: { type: "image", originalContentUrl: `https://x.test/${"a".repeat(2000)}` },
    details: [
      ["messages[0].originalContentUrl", "Length must be between 0 and 2000"],
      ["messages[0].previewImageUrl", "must be specified"],
    ],
  },
  {
    name: "video: a bad trackingId, no preview",
    message: { type: "video", originalContentUrl: "https://x.test/a.mp4", trackingId: "a b" },
    details: [
      ["messages[0].previewImageUrl", "must be specified"],
      ["messages[0].trackingId", "may contain only A-Z, a-z, 0-9 and -.=,+*()%$&;:@{}!?<>[]"],
    ],
  },
  {
    name: "audio: http:// URL, no duration",
    message: { type: "audio", originalContentUrl: "http://x.test/a.m4a" },
    details: [
      ["messages[0].originalContentUrl", "must be a valid HTTPS URL"],
      ["messages[0].duration", "must be specified"],
    ],
  },
  {
    name: "location: no title or address, latitude as a string",
    message: { type: "location", latitude: "35.6", longitude: 139.7 },
    details: [
      ["messages[0].title", "must be specified"],
      ["messages[0].address", "must be specified"],
      ["messages[0].latitude", "must be a number"],
    ],
  },
  {
    name: "imagemap: http:// baseUrl, no actions",
    message: {
      type: "imagemap",
      baseUrl: "http://x.test/rm",
      altText: "a",
      baseSize: { width: 1040, height: 1040 },
      actions: [],
    },
    details: [
      ["messages[0].baseUrl", "must be a valid HTTPS URL"],
      ["messages[0].actions", "Size must be between 1 and 50"],
    ],
  },
  {
    name: "imagemap: an action without area, a ftp link",
    message: {
      type: "imagemap",
      baseUrl: "https://x.test/rm",
      altText: "a",
      baseSize: { width: 1040, height: 1040 },
      actions: [{ type: "uri", linkUri: "ftp://x.test/" }],
    },
    details: [
      ["messages[0].actions[0].linkUri", "must be a URI with scheme http, https, line or tel"],
      ["messages[0].actions[0].area", "must be specified"],
    ],
  },
  {
    name: "template: http:// thumbnail, no altText, a postback without data",
    message: {
      type: "template",
      template: {
        type: "buttons",
        thumbnailImageUrl: "http://x.test/t.jpg",
        text: "pick",
        actions: [{ type: "postback", label: "Buy" }],
      },
    },
    details: [
      ["messages[0].altText", "must be specified"],
      ["messages[0].template.thumbnailImageUrl", "must be a valid HTTPS URL"],
      ["messages[0].template.actions[0].data", "must be specified"],
    ],
  },
  {
    name: "template: a confirm with one action, an unknown template type",
    messages: [
      {
        type: "template",
        altText: "a",
        template: { type: "confirm", text: "ok?", actions: [{ type: "message", text: "y" }] },
      },
      { type: "template", altText: "a", template: { type: "list" } },
    ],
    details: [
      ["messages[0].template.actions", "Size must be between 2 and 2"],
      [
        "messages[1].template.type",
        "Must be one of the following values: [buttons, confirm, carousel, image_carousel]",
      ],
    ],
  },
  {
    name: "template: image carousel column with http:// image and no action",
    message: {
      type: "template",
      altText: "a",
      template: { type: "image_carousel", columns: [{ imageUrl: "http://x.test/i.jpg" }] },
    },
    details: [
      ["messages[0].template.columns[0].imageUrl", "must be a valid HTTPS URL"],
      ["messages[0].template.columns[0].action", "must be specified"],
    ],
  },
  {
    name: "flex: no altText, an http:// image deep inside, a video without preview",
    message: {
      type: "flex",
      contents: {
        type: "bubble",
        body: {
          type: "box",
          layout: "vertical",
          contents: [
            { type: "image", url: "http://x.test/i.png" },
            { type: "video", url: "https://x.test/v.mp4", altContent: { type: "text", text: "v" } },
          ],
        },
      },
    },
    details: [
      ["messages[0].altText", "must be specified"],
      ["messages[0].contents.body.contents[0].url", "must be a valid HTTPS URL"],
      ["messages[0].contents.body.contents[1].previewUrl", "must be specified"],
    ],
  },
  {
    name: "flex: 13 bubbles in a carousel",
    message: {
      type: "flex",
      altText: "a",
      contents: { type: "carousel", contents: Array(13).fill({ type: "bubble" }) },
    },
    details: [["messages[0].contents.contents", "Size must be between 1 and 12"]],
  },
  {
    name: "coupon: no couponId, a bad deliveryTag",
    message: { type: "coupon", deliveryTag: "winter-2025" },
    details: [
      ["messages[0].couponId", "must be specified"],
      ["messages[0].deliveryTag", "may contain only A-Z, a-z, 0-9 and _"],
    ],
  },
  {
    name: "quick reply: 14 items",
    message: {
      type: "text",
      text: "q",
      quickReply: {
        items: Array(14).fill({ type: "action", action: { type: "message", label: "y", text: "y" } }),
      },
    },
    details: [["messages[0].quickReply.items", "Size must be between 1 and 13"]],
  },
  {
    name: "quick reply: http:// icon, an action of an unknown type",
    message: {
      type: "text",
      text: "q",
      quickReply: { items: [{ type: "action", imageUrl: "http://x.test/i.png", action: { type: "call" } }] },
    },
    details: [
      ["messages[0].quickReply.items[0].imageUrl", "must be a valid HTTPS URL"],
      [
        "messages[0].quickReply.items[0].action.type",
        "Must be one of the following values: [postback, message, uri, datetimepicker, camera, cameraRoll, location, richmenuswitch, clipboard]",
      ],
    ],
  },
  {
    name: "sender: http:// icon, a 21-character name",
    message: { type: "text", text: "q", sender: { name: "a".repeat(21), iconUrl: "http://x.test/i.png" } },
    details: [
      ["messages[0].sender.name", "Length must be between 0 and 20"],
      ["messages[0].sender.iconUrl", "must be a valid HTTPS URL"],
    ],
  },
];

describe("outbound messages (reply and push) are checked as LINE does", () => {
  const to = randomUserId();

  for (const { name, message, messages, details } of REFUSED) {
    test(`refused: ${name}`, async () => {
      const body = { to, messages: message === undefined ? messages : [message] };
      const answer = await call("POST", "/v2/bot/message/push", body);
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.json, {
        message: `The request body has ${details.length} error(s)`,
        details: details.map(([property, message]) => ({ message, property })),
      });
      assert.equal(emulator.sent.length, 0);
    });
  }

  test("refused: notificationDisabled that is not a boolean", async () => {
    const answer = await call("POST", "/v2/bot/message/push", {
      to,
      messages: [{ type: "text", text: "hi" }],
      notificationDisabled: "true",
    });
    assert.deepEqual(answer.json, {
      message: "The property, 'notificationDisabled', in the request body is invalid (line: -, column: -)",
    });
    assert.equal(emulator.sent.length, 0);
  });

  test("refused in a reply too, which leaves the reply token unused", async () => {
    const event = textEvent(userSource(randomUserId()), "q");
    await emulator.sendWebhook(A.channelId, [event]);
    const bad = await call("POST", "/v2/bot/message/reply", {
      replyToken: event.replyToken,
      messages: [{ type: "sticker", packageId: "446" }],
    });
    assert.deepEqual(bad.json.details, [{ message: "must be specified", property: "messages[0].stickerId" }]);
    const good = await call("POST", "/v2/bot/message/reply", {
      replyToken: event.replyToken,
      messages: [{ type: "sticker", packageId: "446", stickerId: "1988" }],
      notificationDisabled: true,
    });
    assert.equal(good.status, 200);
    assert.equal(emulator.sent[0]?.notificationDisabled, true);
  });

  for (const { message } of VALID) {
    test(`accepted: ${message.type}`, async () => {
      const answer = await call("POST", "/v2/bot/message/push", { to, messages: [message] });
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual(emulator.sent[0]?.messages, [message]);
    });
  }

  test("sentMessages carry a quoteToken only for the types LINE lets be quoted", async () => {
    const all = VALID.map((v) => v.message);
    const answers = [
      await call("POST", "/v2/bot/message/push", { to, messages: all.slice(0, 5) }),
      await call("POST", "/v2/bot/message/push", { to, messages: all.slice(5, 10) }),
      await call("POST", "/v2/bot/message/push", { to, messages: all.slice(10) }),
    ];
    const sentMessages = answers.flatMap((a) => a.json.sentMessages as { id: string; quoteToken?: string }[]);
    assert.equal(sentMessages.length, VALID.length);
    VALID.forEach(({ message, quotable }, i) => {
      assert.match(sentMessages[i]?.id ?? "", /^\d+$/);
      assert.equal(typeof sentMessages[i]?.quoteToken === "string", quotable, String(message.type));
    });
  });

  test("the same in the 409 of a repeated retry key", async () => {
    const key = randomUUID();
    const headers = { authorization: `Bearer ${A.accessToken}`, "x-line-retry-key": key };
    const body = { to, messages: [VALID[5]?.message, VALID[0]?.message] };
    const first = await call("POST", "/v2/bot/message/push", body, headers);
    const again = await call("POST", "/v2/bot/message/push", body, headers);
    assert.equal(again.status, 409);
    const sentMessages = again.json.sentMessages as { quoteToken?: string }[];
    assert.deepEqual(sentMessages, first.json.sentMessages);
    assert.deepEqual(
      sentMessages.map((m) => m.quoteToken !== undefined),
      [false, true],
    );
  });
});

describe("httpMediaOrigins (a development allowance LINE never makes)", () => {
  let dev: LineEmulator;
  before(async () => {
    dev = await startLineEmulator({ channels: [A], httpMediaOrigins: ["http://127.0.0.1:8080/"] });
  });
  after(() => dev.close());

  async function pushImage(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${dev.url}/v2/bot/message/push`, {
      method: "POST",
      headers: { authorization: `Bearer ${A.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        to: randomUserId(),
        messages: [{ type: "image", originalContentUrl: url, previewImageUrl: url }],
      }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  test("accepted: http:// URLs of a listed origin", async () => {
    assert.equal((await pushImage("http://127.0.0.1:8080/media/2026/a.jpg")).status, 200);
  });

  test("refused: http:// URLs of any other origin, and by an emulator without the option", async () => {
    for (const url of ["http://127.0.0.1:8081/media/a.jpg", "http://localhost:8080/media/a.jpg"]) {
      const answer = await pushImage(url);
      assert.equal(answer.status, 400, url);
      assert.equal(answer.json.message, "The request body has 2 error(s)");
    }
    const strict = await call("POST", "/v2/bot/message/push", {
      to: randomUserId(),
      messages: [{ type: "audio", originalContentUrl: "http://127.0.0.1:8080/media/a.m4a", duration: 1 }],
    });
    assert.equal(strict.status, 400);
  });

  test("an entry that is not an http(s) URL stops the emulator from starting", async () => {
    await assert.rejects(
      startLineEmulator({ channels: [A], httpMediaOrigins: ["127.0.0.1:8080"] }),
      /httpMediaOrigins/,
    );
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

  test("loading animation", async () => {
    assert.equal(
      (await call("POST", "/v2/bot/chat/loading/start", { chatId: "U1", loadingSeconds: 5 })).status,
      202,
    );
    assert.equal(
      (await call("POST", "/v2/bot/chat/loading/start", { chatId: "U1", loadingSeconds: 7 })).status,
      400,
    );
  });
});

describe("webhook endpoint URL (LINE: a valid HTTPS URL of at most 500 characters)", () => {
  const auth = { authorization: `Bearer ${B.accessToken}` };
  const refused = { message: "Invalid webhook endpoint URL" };

  for (const [name, endpoint] of [
    ["http://", "http://x.test/hook"],
    ["501 characters", `https://x.test/${"a".repeat(501 - "https://x.test/".length)}`],
    ["not a URL", "x.test/hook"],
    ["missing", undefined],
    ["not a string", 443],
  ] as const) {
    test(`refused: ${name}`, async () => {
      emulator.setWebhookUrl(B.channelId, "https://before.test/hook");
      const put = await call("PUT", "/v2/bot/channel/webhook/endpoint", { endpoint }, auth);
      assert.deepEqual([put.status, put.json], [400, refused]);
      assert.equal(emulator.channel(B.channelId)?.webhookUrl, "https://before.test/hook");
    });
  }

  test("accepted: https:// up to 500 characters", async () => {
    const endpoint = `https://x.test/${"a".repeat(500 - "https://x.test/".length)}`;
    const put = await call("PUT", "/v2/bot/channel/webhook/endpoint", { endpoint }, auth);
    assert.deepEqual([put.status, put.json], [200, {}]);
    assert.equal(emulator.channel(B.channelId)?.webhookUrl, endpoint);
  });
});

describe("mark as read", () => {
  const refused = {
    message: "Invalid markAsReadToken. Tokens must be used by the bot that received them via Webhook.",
  };

  test("accepted: the token of a message event the emulator sent, as often as asked", async () => {
    const event = textEvent(userSource(randomUserId()), "read me");
    await emulator.sendWebhook(A.channelId, [event]);
    const body = { markAsReadToken: event.message.markAsReadToken };
    assert.deepEqual((await call("POST", "/v2/bot/chat/markAsRead", body)).json, {});
    // LINE's read tokens have no expiry.
    clock += 24 * 60 * 60 * 1000;
    assert.equal((await call("POST", "/v2/bot/chat/markAsRead", body)).status, 200);
  });

  test("accepted: a token carried by a raw webhook body", async () => {
    const event = imageEvent(userSource(randomUserId()));
    await emulator.sendWebhook(A.channelId, [], { rawBody: JSON.stringify(webhookBody([event])) });
    const body = { markAsReadToken: event.message.markAsReadToken };
    assert.equal((await call("POST", "/v2/bot/chat/markAsRead", body)).status, 200);
  });

  test("refused: a token never sent, made up, or sent to another channel", async () => {
    const unsent = textEvent(userSource(randomUserId()), "never sent");
    for (const markAsReadToken of [unsent.message.markAsReadToken, "t"]) {
      const answer = await call("POST", "/v2/bot/chat/markAsRead", { markAsReadToken });
      assert.deepEqual([answer.status, answer.json], [400, refused]);
    }
    const event = textEvent(userSource(randomUserId()), "to A");
    await emulator.sendWebhook(A.channelId, [event]);
    const otherBot = await call(
      "POST",
      "/v2/bot/chat/markAsRead",
      { markAsReadToken: event.message.markAsReadToken },
      { authorization: `Bearer ${B.accessToken}` },
    );
    assert.deepEqual([otherBot.status, otherBot.json], [400, refused]);
  });

  test("refused: no token", async () => {
    const answer = await call("POST", "/v2/bot/chat/markAsRead", {});
    assert.deepEqual(answer.json.details, [{ message: "must be specified", property: "markAsReadToken" }]);
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

  test("events/:kind sends any event a builder makes, in the chat the ids name", async () => {
    const userId = randomUserId();
    const image = await call(
      "POST",
      `/_emulator/channels/${A.channelId}/events/image`,
      {
        groupId: "Cgroup",
        userId,
        contentProvider: { type: "external", originalContentUrl: "https://x.test/a.jpg" },
      },
      {},
    );
    assert.equal(image.json.status, 200);
    const sent = JSON.parse(receiver.received[0]?.raw.toString("utf8") ?? "").events[0];
    assert.deepEqual(sent.source, { type: "group", groupId: "Cgroup", userId });
    assert.deepEqual(
      [sent.type, sent.message.type, sent.message.contentProvider.type],
      ["message", "image", "external"],
    );
    assert.equal("userId" in sent.message, false);
    // Its tokens work like those of any sent webhook.
    const read = await call("POST", "/v2/bot/chat/markAsRead", {
      markAsReadToken: sent.message.markAsReadToken,
    });
    assert.equal(read.status, 200);
    assert.deepEqual(sent, image.json.event);
  });

  test("events/:kind takes the common fields; the default user speaks when no id is given", async () => {
    const result = await call(
      "POST",
      `/_emulator/channels/${A.channelId}/events/postback`,
      {
        data: "action=buy",
        params: { date: "2026-01-02" },
        mode: "standby",
        timestamp: 1_700_000_000_000,
        isRedelivery: true,
      },
      {},
    );
    const event = result.json.event as Record<string, unknown>;
    assert.deepEqual(event.source, { type: "user", userId: emulator.defaultUserId });
    assert.deepEqual(event.postback, { data: "action=buy", params: { date: "2026-01-02" } });
    assert.deepEqual(
      [event.mode, event.timestamp, event.deliveryContext, "replyToken" in event],
      ["standby", 1_700_000_000_000, { isRedelivery: true }, false],
    );
    const module = await call(
      "POST",
      `/_emulator/channels/${A.channelId}/events/module`,
      { type: "attached", botId: "U1", scopes: ["message:send"] },
      {},
    );
    assert.equal("source" in (module.json.event as object), false);
  });

  test("events/:kind refuses unknown kinds, missing fields and unknown channels", async () => {
    const unknown = await call("POST", `/_emulator/channels/${A.channelId}/events/things`, {}, {});
    assert.equal(unknown.status, 400);
    assert.match(String(unknown.json.message), /^unknown event kind "things"/);
    const missing = await call("POST", `/_emulator/channels/${A.channelId}/events/postback`, {}, {});
    assert.deepEqual([missing.status, missing.json], [400, { message: "postback needs data (string)" }]);
    assert.equal((await call("POST", "/_emulator/channels/999/events/follow", {}, {})).status, 404);
    assert.equal(receiver.received.length, 0);
  });
});

describe("docs/emulator.md stays true to the code", () => {
  const page = readFileSync("docs/emulator.md", "utf8");
  const source = readFileSync("emulator/line-emulator.ts", "utf8");

  // The backticked names in the first cells of the first table after `heading` (header row excepted).
  function firstCells(heading: string): string[] {
    const start = page.indexOf(heading);
    assert.ok(start >= 0, heading);
    const lines = page.slice(start).split("\n");
    const first = lines.findIndex((line) => line.startsWith("|"));
    const end = lines.findIndex((line, i) => i > first && !line.startsWith("|"));
    return lines
      .slice(first + 2, end)
      .flatMap((row) => [...(row.split("|")[1] ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ""));
  }

  // The members of an exported interface of line-emulator.ts.
  function members(name: string): string[] {
    const body = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(source)?.[1] ?? "";
    return [...body.matchAll(/^ {2}(?:readonly )?(\w+)\??[:(]/gm)].map((m) => m[1] ?? "");
  }

  test("every route it lists is served, and every route served is listed", () => {
    const documented = new Set(
      [...page.matchAll(/^\| `(GET|POST|PUT) (\/[^`]+)`/gm)].map((m) => `${m[1]} ${m[2]}`),
    );
    const served = new Set([
      ...[...source.matchAll(/api\("(GET|POST|PUT)", "([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`),
      ...[...source.matchAll(/app\.(get|post|put)\("(\/_emulator[^"]*)"/g)].map(
        (m) => `${m[1]?.toUpperCase()} ${m[2]}`,
      ),
    ]);
    assert.deepEqual([...documented].sort(), [...served].sort());
  });

  test("every option and member it lists exists, and every one that exists is listed", () => {
    assert.deepEqual(
      firstCells("`startLineEmulator(options)` takes").sort(),
      members("EmulatorOptions").sort(),
    );
    assert.deepEqual(
      firstCells("The running emulator (`LineEmulator`) has").sort(),
      members("LineEmulator").sort(),
    );
  });

  test("the event kinds are those buildEvent makes", () => {
    assert.deepEqual(firstCells("### Events of any kind").sort(), [...EVENT_KINDS].sort());
  });

  test("every ContentEntry JSON field is read by the control API", async () => {
    const fields = firstCells("### ContentEntry as JSON");
    assert.ok(fields.length >= 13);
    for (const field of fields) {
      // A value of the wrong type is refused by name: proof that the field is read.
      const answer = await call("POST", "/_emulator/content/doc-check", { [field]: { wrong: true } }, {});
      assert.equal(answer.status, 400, field);
      assert.match(String(answer.json.message), new RegExp(`^${field} must be`));
    }
  });
});
