// Unit tests for the partner payload (SPEC §3): content per event type, user_key, mode, defaults, the seed example.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonObject } from "./line-event.ts";
import { DEFAULT_LONG_TEXT } from "./long-text.ts";
import {
  buildPartnerPayload,
  eventContent,
  type PartnerPayload,
  type PayloadInput,
} from "./partner-payload.ts";

const USER = "Uae87c693e2897ccc4c7654acd04f9259";
const GROUP = "Ca56f94637cc4347f90a25382909b24b9";
const ROOM = "Ra8dbf4ccc4fd8e94fa2b52f0a1cbb1a3";
const USER_SOURCE = { type: "user", userId: USER };

/** A LINE event with every common field, plus the event-specific ones. */
function lineEvent(type: string, specific: JsonObject, common: JsonObject = {}): JsonObject {
  return {
    type,
    mode: "active",
    timestamp: 1633072250123,
    source: USER_SOURCE,
    webhookEventId: "01FZ74A0TDDPYRVKNK77XKC3ZR",
    deliveryContext: { isRedelivery: false },
    replyToken: "757913772c4646b784d4b7ce46d12671",
    ...specific,
    ...common,
  };
}

function input(event: JsonObject, overrides: Partial<PayloadInput> = {}): PayloadInput {
  return {
    senderKey: "1656168303",
    serialNumber: "Uae87c693e28-0001-6156B47C",
    receivedAt: 1633072251715,
    event,
    userName: "홍길동",
    e164: "01012349876",
    agreeType: 0,
    longText: DEFAULT_LONG_TEXT,
    ...overrides,
  };
}

test("buildPartnerPayload reproduces the seed's text example field for field", () => {
  const event = lineEvent("message", { message: { id: "14839219569333", type: "text", text: "text" } });
  // Copied from seeds/linebiz-receive-api.ko.md, 8.2.1 text message.
  const seed: PartnerPayload = {
    chat_type: "LINE",
    serial_number: "Uae87c693e28-0001-6156B47C",
    sender_key: "1656168303",
    user_key: "Uae87c693e2897ccc4c7654acd04f9259",
    event_type: "message",
    time: 1633072251715,
    mode: "active",
    source: { type: "user", userId: "Uae87c693e2897ccc4c7654acd04f9259" },
    content: { id: "14839219569333", type: "text", text: "text" },
    is_message_attachment: false,
    e164: "01012349876",
    user_name: "홍길동",
    agree_type: 0,
  };
  assert.deepEqual(buildPartnerPayload(input(event)), seed);
  assert.equal(JSON.stringify(buildPartnerPayload(input(event))), JSON.stringify(seed), "same key order");
});

const MESSAGE_CASES: Array<{ name: string; message: JsonObject }> = [
  {
    name: "short text with emojis, mention and tokens",
    message: {
      id: "468789577898262530",
      type: "text",
      quoteToken: "q3Plxr4AgKd",
      markAsReadToken: "30yhdy232",
      text: "@All $ hi",
      emojis: [{ index: 5, length: 1, productId: "5ac1bfd5040ab15980c9b435", emojiId: "001" }],
      mention: { mentionees: [{ index: 0, length: 4, type: "all" }] },
      quotedMessageId: "468789532432007169",
    },
  },
  {
    name: "image from LINE",
    message: {
      id: "354718705033693859",
      type: "image",
      quoteToken: "q3P",
      contentProvider: { type: "line" },
    },
  },
  {
    name: "image from an external provider, in an image set",
    message: {
      id: "354718705033693861",
      type: "image",
      quoteToken: "yHAz4Ua2wx7",
      contentProvider: {
        type: "external",
        originalContentUrl: "https://example.com/original.jpg",
        previewImageUrl: "https://example.com/preview.jpg",
      },
      imageSet: {
        id: "E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855",
        index: 1,
        total: 2,
      },
    },
  },
  {
    name: "video",
    message: {
      id: "325708",
      type: "video",
      quoteToken: "q",
      duration: 60000,
      contentProvider: { type: "line" },
    },
  },
  {
    name: "audio",
    message: { id: "325709", type: "audio", duration: 6449, contentProvider: { type: "line" } },
  },
  {
    name: "file with a Korean name",
    message: { id: "14839507936147", type: "file", fileName: "고해상도7.zip", fileSize: 15280848 },
  },
  {
    name: "location",
    message: {
      id: "325710",
      type: "location",
      title: "my location",
      address: "1-3 Kioicho, Chiyoda-ku, Tokyo",
      latitude: 35.67966,
      longitude: 139.73669,
    },
  },
  {
    name: "sticker with an unknown resource type",
    message: {
      id: "1501597916",
      type: "sticker",
      quoteToken: "q",
      packageId: "446",
      stickerId: "1988",
      stickerResourceType: "HOLOGRAM_2031",
      keywords: ["Happy", "Smile"],
      text: "Let's hang out this weekend!",
    },
  },
  { name: "an unknown message type", message: { id: "1", type: "hologram", depth: 3 } },
];

for (const c of MESSAGE_CASES) {
  test(`message content is LINE's message object as received: ${c.name}`, () => {
    const payload = buildPartnerPayload(input(lineEvent("message", { message: c.message })));
    assert.deepEqual(payload.content, c.message);
    assert.equal(payload.event_type, "message");
    assert.equal(payload.user_key, USER);
    assert.equal(payload.is_message_attachment, false);
  });
}

test("a long text is cut to 300 units and flagged is_message_attachment", () => {
  const message = { id: "1", type: "text", quoteToken: "q", text: "가".repeat(1001) };
  const payload = buildPartnerPayload(input(lineEvent("message", { message })));
  assert.equal(payload.is_message_attachment, true);
  assert.deepEqual(payload.content, { id: "1", type: "text", quoteToken: "q", text: "가".repeat(300) });
  assert.equal(message.text.length, 1001, "the event itself is not changed");
});

test("a long edited text (messageEdited) is cut the same way", () => {
  const message = { id: "2", type: "text", text: "b".repeat(4000) };
  const payload = buildPartnerPayload(
    input(
      lineEvent("messageEdited", { message }, { source: { type: "group", groupId: GROUP, userId: USER } }),
    ),
  );
  assert.equal(payload.is_message_attachment, true);
  assert.equal(payload.content.text, "b".repeat(300));
  assert.equal(payload.event_type, "messageEdited");
});

const POSTBACK_CASES: Array<{ name: string; postback: JsonObject }> = [
  { name: "plain postback", postback: { data: "action=buy&itemid=123" } },
  { name: "datetime picker", postback: { data: "storeId=12345", params: { datetime: "2021-09-27T13:11" } } },
  { name: "date picker", postback: { data: "d", params: { date: "2017-09-03" } } },
  { name: "time picker", postback: { data: "t", params: { time: "10:00" } } },
  {
    name: "rich menu switch",
    postback: {
      data: "richmenu-changed-to-b",
      params: { newRichMenuAliasId: "richmenu-alias-b", status: "SUCCESS" },
    },
  },
];

for (const c of POSTBACK_CASES) {
  test(`postback content is exactly {data, params?}: ${c.name}`, () => {
    const payload = buildPartnerPayload(input(lineEvent("postback", { postback: c.postback })));
    assert.deepEqual(payload.content, c.postback);
    assert.equal("params" in payload.content, "params" in c.postback);
    assert.deepEqual(Object.keys(payload.content), "params" in c.postback ? ["data", "params"] : ["data"]);
    assert.equal(payload.event_type, "postback");
    assert.equal(payload.is_message_attachment, false);
  });
}

const MEMBERS = [
  { type: "user", userId: "U4af4980629..." },
  { type: "user", userId: "U91eeaf62d9..." },
];

const EVENT_CASES: Array<{ name: string; event: JsonObject; content: JsonObject }> = [
  {
    name: "follow",
    event: lineEvent("follow", { follow: { isUnblocked: false } }),
    content: { isUnblocked: false },
  },
  {
    name: "follow (unblocked)",
    event: lineEvent("follow", { follow: { isUnblocked: true } }),
    content: { isUnblocked: true },
  },
  { name: "unfollow", event: lineEvent("unfollow", {}, { replyToken: undefined }), content: {} },
  { name: "join", event: lineEvent("join", {}, { source: { type: "group", groupId: GROUP } }), content: {} },
  {
    name: "leave",
    event: lineEvent("leave", {}, { source: { type: "group", groupId: GROUP } }),
    content: {},
  },
  {
    name: "unsend",
    event: lineEvent("unsend", { unsend: { messageId: "325708" } }),
    content: { messageId: "325708" },
  },
  {
    name: "memberJoined",
    event: lineEvent(
      "memberJoined",
      { joined: { members: MEMBERS } },
      { source: { type: "group", groupId: GROUP } },
    ),
    content: { members: MEMBERS },
  },
  {
    name: "memberLeft",
    event: lineEvent(
      "memberLeft",
      { left: { members: MEMBERS } },
      { source: { type: "room", roomId: ROOM } },
    ),
    content: { members: MEMBERS },
  },
  {
    name: "videoPlayComplete",
    event: lineEvent("videoPlayComplete", { videoPlayComplete: { trackingId: "track-id" } }),
    content: { trackingId: "track-id" },
  },
  {
    name: "messageEdited",
    event: lineEvent("messageEdited", {
      message: { id: "468789577898262530", type: "text", text: "edited" },
    }),
    content: { id: "468789577898262530", type: "text", text: "edited" },
  },
  {
    name: "beacon",
    event: lineEvent("beacon", { beacon: { hwid: "d41d8cd98f", type: "enter" } }),
    content: { hwid: "d41d8cd98f", type: "enter" },
  },
  {
    name: "accountLink",
    event: lineEvent("accountLink", { link: { result: "ok", nonce: "xxxxxxxxxxxxxxx" } }),
    content: { result: "ok", nonce: "xxxxxxxxxxxxxxx" },
  },
  {
    name: "an unknown type with several specific fields",
    event: lineEvent("hologramCall", { hologram: { id: "h1" }, duration: 42, participants: ["a", "b"] }),
    content: { hologram: { id: "h1" }, duration: 42, participants: ["a", "b"] },
  },
  {
    name: "an unknown type with one non-object field",
    event: lineEvent("ping2030", { level: 3 }),
    content: { level: 3 },
  },
];

for (const c of EVENT_CASES) {
  test(`event-specific content: ${c.name}`, () => {
    const event = JSON.parse(JSON.stringify(c.event)) as JsonObject; // drop undefined fields as the wire would
    assert.deepEqual(eventContent(event), c.content);
    const payload = buildPartnerPayload(input(event));
    assert.deepEqual(payload.content, c.content);
    assert.equal(payload.event_type, event.type);
    assert.deepEqual(payload.source, event.source);
  });
}

const SOURCE_CASES: Array<{ name: string; source: JsonObject | undefined; userKey: string }> = [
  { name: "user", source: USER_SOURCE, userKey: USER },
  { name: "group with userId", source: { type: "group", groupId: GROUP, userId: USER }, userKey: USER },
  { name: "group without userId", source: { type: "group", groupId: GROUP }, userKey: "" },
  { name: "room with userId", source: { type: "room", roomId: ROOM, userId: USER }, userKey: USER },
  { name: "room without userId", source: { type: "room", roomId: ROOM }, userKey: "" },
  { name: "no source", source: undefined, userKey: "" },
];

for (const c of SOURCE_CASES) {
  test(`user_key and source for a ${c.name} source`, () => {
    const event = lineEvent("message", { message: { id: "1", type: "text", text: "x" } });
    if (c.source) event.source = c.source;
    else delete event.source;
    const payload = buildPartnerPayload(input(event));
    assert.equal(payload.user_key, c.userKey);
    assert.deepEqual(
      payload.source,
      c.source ?? null,
      "source is LINE's object as received, group/room ids included",
    );
  });
}

test("standby mode is relayed with its mode", () => {
  const event = lineEvent("message", { message: { id: "1", type: "text", text: "x" } }, { mode: "standby" });
  delete event.replyToken;
  assert.equal(buildPartnerPayload(input(event)).mode, "standby");
});

test("a missing mode is relayed as active", () => {
  const event = lineEvent("message", { message: { id: "1", type: "text", text: "x" } });
  delete event.mode;
  assert.equal(buildPartnerPayload(input(event)).mode, "active");
});

test('unknown directory entries give e164 "" and agree_type 0; known ones are carried', () => {
  const event = lineEvent("message", { message: { id: "1", type: "text", text: "x" } });
  const unknown = buildPartnerPayload(input(event, { e164: null, agreeType: null, userName: "" }));
  assert.equal(unknown.e164, "");
  assert.equal(unknown.agree_type, 0);
  assert.equal(unknown.user_name, "");
  const known = buildPartnerPayload(input(event, { e164: "821012345678", agreeType: 1 }));
  assert.equal(known.e164, "821012345678");
  assert.equal(known.agree_type, 1);
});

test("time is talkgate's receive time, not LINE's timestamp", () => {
  const event = lineEvent("message", { message: { id: "1", type: "text", text: "x" } }, { timestamp: 1 });
  assert.equal(buildPartnerPayload(input(event, { receivedAt: 1700000000999 })).time, 1700000000999);
});

test("common fields (replyToken, webhookEventId, deliveryContext, timestamp) never leak into content", () => {
  for (const type of ["unfollow", "join", "leave", "activated", "botSuspended"]) {
    const content = eventContent(lineEvent(type, {}));
    assert.deepEqual(content, {}, type);
  }
});

test("an event without a type never throws and is labelled unknown", () => {
  const payload = buildPartnerPayload(input({}));
  assert.equal(payload.event_type, "unknown");
  assert.deepEqual(payload.content, {});
  assert.equal(payload.source, null);
  assert.equal(payload.user_key, "");
});

// LINE adds fields without notice; the message/postback object must stay the content whatever else the event carries.
test("message content stays LINE's message object when the event carries an extra top-level field", () => {
  const message = { id: "1", type: "text", text: "c".repeat(5000) };
  const payload = buildPartnerPayload(input(lineEvent("message", { message, futureField: { x: 1 } })));
  assert.equal(payload.content.type, "text");
  assert.equal(payload.content.text, "c".repeat(300));
  assert.equal(payload.is_message_attachment, true);
});

test("postback content stays {data, params?} when the event carries an extra top-level field", () => {
  const postback = { data: "a=1", params: { date: "2024-01-01" } };
  const payload = buildPartnerPayload(input(lineEvent("postback", { postback, futureField: true })));
  assert.deepEqual(payload.content, postback);
});
