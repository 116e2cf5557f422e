// Unit tests of the webhook event factory: LINE-shaped events, unique ids, standby without reply tokens.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  accountLinkEvent,
  activatedEvent,
  audioEvent,
  beaconEvent,
  botResumedEvent,
  botSuspendedEvent,
  buildEvent,
  DEFAULT_DESTINATION,
  deactivatedEvent,
  deliveryEvent,
  EVENT_KINDS,
  fileEvent,
  followEvent,
  groupSource,
  imageEvent,
  joinEvent,
  type LineEvent,
  leaveEvent,
  locationEvent,
  memberJoinedEvent,
  memberLeftEvent,
  membershipEvent,
  messageEditedEvent,
  moduleEvent,
  postbackEvent,
  randomGroupId,
  randomRoomId,
  randomUserId,
  rawEvent,
  redelivered,
  roomSource,
  stickerEvent,
  textEvent,
  ulid,
  unfollowEvent,
  unsendEvent,
  userSource,
  videoEvent,
  videoPlayCompleteEvent,
  webhookBody,
} from "./events.ts";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const user = userSource("U4af4980629aaaaaaaaaaaaaaaaaaaaaa");

describe("ids", () => {
  test("random ids are prefixed 32-hex strings", () => {
    assert.match(randomUserId(), /^U[0-9a-f]{32}$/);
    assert.match(randomGroupId(), /^C[0-9a-f]{32}$/);
    assert.match(randomRoomId(), /^R[0-9a-f]{32}$/);
  });

  test("ulid is 26 Crockford characters, unique even within one millisecond, time first", () => {
    const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
    for (const id of ids) assert.match(id, ULID);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ulid(1) < ulid(2_000_000_000_000));
  });

  test("message ids are increasing numeric strings", () => {
    const a = textEvent(user, "a").message.id;
    const b = imageEvent(user).message.id;
    assert.match(a, /^\d+$/);
    assert.ok(BigInt(b) > BigInt(a));
  });
});

describe("common fields", () => {
  test("a text event looks like LINE's", () => {
    const event = textEvent(user, "hello", { timestamp: 1462629479859 });
    assert.equal(event.type, "message");
    assert.equal(event.mode, "active");
    assert.equal(event.timestamp, 1462629479859);
    assert.deepEqual(event.source, { type: "user", userId: "U4af4980629aaaaaaaaaaaaaaaaaaaaaa" });
    assert.match(event.webhookEventId, ULID);
    assert.deepEqual(event.deliveryContext, { isRedelivery: false });
    assert.match(event.replyToken ?? "", HEX32);
    assert.equal(event.message.type, "text");
    assert.equal(event.message.text, "hello");
    assert.equal(typeof event.message.quoteToken, "string");
    assert.equal(typeof event.message.markAsReadToken, "string");
    assert.equal("emojis" in event.message, false);
  });

  test("every call gets a fresh webhookEventId and replyToken", () => {
    const events = Array.from({ length: 200 }, () => followEvent(user, {}, { timestamp: 5 }));
    assert.equal(new Set(events.map((e) => e.webhookEventId)).size, 200);
    assert.equal(new Set(events.map((e) => e.replyToken)).size, 200);
  });

  test("standby events have no reply token", () => {
    const builders = [
      textEvent(user, "x", { mode: "standby" }),
      followEvent(user, {}, { mode: "standby" }),
      postbackEvent(user, { data: "a=1" }, { mode: "standby" }),
      joinEvent(groupSource(randomGroupId()), { mode: "standby" }),
    ];
    for (const event of builders) {
      assert.equal(event.mode, "standby");
      assert.equal("replyToken" in event, false, event.type);
    }
  });

  test("types LINE sends without a reply token get none", () => {
    const group = groupSource(randomGroupId(), randomUserId());
    const events: object[] = [
      unfollowEvent(user),
      leaveEvent(group),
      memberLeftEvent(group, { userIds: [randomUserId()] }),
      unsendEvent(user, { messageId: "1" }),
      messageEditedEvent(group, { id: "1", text: "fixed" }),
      deactivatedEvent(user),
      botSuspendedEvent(),
    ];
    for (const event of events) assert.equal("replyToken" in event, false, JSON.stringify(event));
  });

  test("overrides are honoured", () => {
    const event = textEvent(user, "x", { webhookEventId: "01FZ74A0TDDPYRVKNK77XKC3ZR", replyToken: "r" });
    assert.equal(event.webhookEventId, "01FZ74A0TDDPYRVKNK77XKC3ZR");
    assert.equal(event.replyToken, "r");
  });
});

describe("message builders", () => {
  test("text carries emojis, mention and quotedMessageId when given", () => {
    const event = textEvent(groupSource("Cabc", "Udef"), {
      text: "@All @example Good Morning!! (love)",
      emojis: [{ index: 29, length: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "001" }],
      mention: {
        mentionees: [
          { index: 0, length: 4, type: "all" },
          { index: 5, length: 8, userId: "U49585cd0d5", type: "user" },
        ],
      },
      quotedMessageId: "444573844083572737",
    });
    assert.deepEqual(event.source, { type: "group", groupId: "Cabc", userId: "Udef" });
    assert.equal(event.message.emojis?.[0]?.emojiId, "001");
    assert.equal(event.message.mention?.mentionees.length, 2);
    assert.equal(event.message.quotedMessageId, "444573844083572737");
  });

  test("image defaults to LINE content and carries an imageSet", () => {
    const event = imageEvent(user, { imageSet: { id: "E005", index: 1, total: 2 } });
    assert.deepEqual(event.message.contentProvider, { type: "line" });
    assert.deepEqual(event.message.imageSet, { id: "E005", index: 1, total: 2 });
    assert.equal(typeof event.message.quoteToken, "string");
  });

  test("video, audio and file", () => {
    const external = {
      type: "external" as const,
      originalContentUrl: "https://example.com/original.mp4",
      previewImageUrl: "https://example.com/preview.jpg",
    };
    const video = videoEvent(user, { duration: 1234, contentProvider: external });
    assert.equal(video.message.duration, 1234);
    assert.deepEqual(video.message.contentProvider, external);
    assert.equal(typeof video.message.quoteToken, "string");

    const audio = audioEvent(user, { duration: 60000 });
    assert.equal(audio.message.type, "audio");
    assert.equal("quoteToken" in audio.message, false);
    assert.equal(typeof audio.message.markAsReadToken, "string");

    const file = fileEvent(user, { fileName: "a.pdf", fileSize: 10 });
    assert.deepEqual(
      [file.message.type, file.message.fileName, file.message.fileSize],
      ["file", "a.pdf", 10],
    );
    assert.equal("quoteToken" in file.message, false);
  });

  test("location and sticker", () => {
    const location = locationEvent(user, { title: "my location", latitude: 35.67966, longitude: 139.73669 });
    assert.deepEqual([location.message.title, location.message.latitude], ["my location", 35.67966]);
    assert.equal("address" in location.message, false);

    const sticker = stickerEvent(user, {
      packageId: "12287",
      stickerId: "738839",
      stickerResourceType: "MESSAGE",
      keywords: ["Sparkle"],
      text: "Let's\nhang out",
    });
    assert.equal(sticker.message.stickerResourceType, "MESSAGE");
    assert.deepEqual(sticker.message.keywords, ["Sparkle"]);
    assert.equal(sticker.message.text, "Let's\nhang out");
    assert.equal(
      stickerEvent(user, { stickerResourceType: "FUTURE_TYPE" }).message.stickerResourceType,
      "FUTURE_TYPE",
    );
  });
});

describe("other event builders", () => {
  const group = groupSource(randomGroupId(), randomUserId());

  test("each type carries its own object", () => {
    assert.deepEqual(postbackEvent(user, { data: "a=1", params: { date: "2024-01-01" } }).postback, {
      data: "a=1",
      params: { date: "2024-01-01" },
    });
    assert.deepEqual(postbackEvent(user, { data: "a=1" }).postback, { data: "a=1" });
    assert.deepEqual(followEvent(user, { isUnblocked: true }).follow, { isUnblocked: true });
    assert.deepEqual(memberJoinedEvent(group, { userIds: ["U1"] }).joined, {
      members: [{ type: "user", userId: "U1" }],
    });
    assert.deepEqual(memberLeftEvent(group, { userIds: ["U2"] }).left, {
      members: [{ type: "user", userId: "U2" }],
    });
    assert.deepEqual(unsendEvent(user, { messageId: "325708" }).unsend, { messageId: "325708" });
    assert.deepEqual(videoPlayCompleteEvent(user, { trackingId: "t1" }).videoPlayComplete, {
      trackingId: "t1",
    });
    assert.deepEqual(beaconEvent(user, { dm: "1234" }).beacon, {
      hwid: "d41d8cd98f",
      type: "enter",
      dm: "1234",
    });
    assert.equal(accountLinkEvent(user, { nonce: "n" }).link.nonce, "n");
    assert.deepEqual(membershipEvent(user, { type: "left", membershipId: 7 }).membership, {
      type: "left",
      membershipId: 7,
    });
    assert.deepEqual(activatedEvent(user, { expireAt: 99 }).chatControl, { expireAt: 99 });
    assert.deepEqual(deliveryEvent({ data: "hash" }).delivery, { data: "hash" });
  });

  test("messageEdited carries the edited text message with the original id", () => {
    const event = messageEditedEvent(group, { id: "555", text: "edited" });
    assert.equal(event.type, "messageEdited");
    assert.deepEqual([event.message.id, event.message.type, event.message.text], ["555", "text", "edited"]);
  });

  test("reply tokens where LINE sends them", () => {
    const replyable = [
      postbackEvent(user, { data: "x" }),
      followEvent(user),
      joinEvent(group),
      memberJoinedEvent(group, { userIds: ["U1"] }),
      videoPlayCompleteEvent(user, { trackingId: "t" }),
      beaconEvent(user),
      accountLinkEvent(user),
      membershipEvent(user),
    ];
    for (const event of replyable) assert.match(event.replyToken ?? "", HEX32, event.type);
  });

  test("module-channel events have no source unless given", () => {
    const attached = moduleEvent({ type: "attached", botId: "U1", scopes: ["message:send"] });
    assert.equal("source" in attached, false);
    assert.equal(attached.module.type, "attached");
    assert.equal("source" in botResumedEvent(), false);
    assert.deepEqual(botSuspendedEvent({ source: user }).source, user);
    assert.deepEqual(roomSource("Rx"), { type: "room", roomId: "Rx" });
  });
});

describe("markAsReadToken", () => {
  test("every message builder carries a fresh one, as LINE's message events do", () => {
    const messages = [
      textEvent(user, "x").message,
      imageEvent(user).message,
      videoEvent(user).message,
      audioEvent(user).message,
      fileEvent(user).message,
      locationEvent(user, { latitude: 1, longitude: 2 }).message,
      stickerEvent(user).message,
    ];
    const tokens = messages.map((m) => m.markAsReadToken);
    for (const token of tokens) assert.match(token ?? "", /^[A-Za-z0-9_-]{64}$/);
    assert.equal(new Set(tokens).size, tokens.length);
    assert.equal(imageEvent(user, { markAsReadToken: "given" }).message.markAsReadToken, "given");
  });
});

describe("buildEvent (the control API's events)", () => {
  function built(...args: Parameters<typeof buildEvent>): LineEvent {
    const event = buildEvent(...args);
    assert.notEqual(typeof event, "string", String(event));
    return event as LineEvent;
  }

  test("a message type makes a message event, another kind the event of that type", () => {
    const image = built("image", user, { imageSet: { id: "s", index: 1, total: 2 } });
    const message = image.message as Record<string, unknown>;
    assert.equal(image.type, "message");
    assert.deepEqual(message, {
      ...message,
      type: "image",
      contentProvider: { type: "line" },
      imageSet: { id: "s", index: 1, total: 2 },
    });
    const follow = built("follow", user, { isUnblocked: true }, { mode: "standby" });
    assert.deepEqual([follow.type, follow.mode, "replyToken" in follow], ["follow", "standby", false]);
    assert.deepEqual(follow.follow, { isUnblocked: true });
  });

  test("every kind builds with its required fields", () => {
    const fields: Record<string, Record<string, unknown>> = {
      text: { text: "x" },
      location: { latitude: 1, longitude: 2 },
      postback: { data: "a=1" },
      memberJoined: { userIds: ["U1"] },
      memberLeft: { userIds: ["U1"] },
      unsend: { messageId: "1" },
      videoPlayComplete: { trackingId: "t" },
      messageEdited: { id: "1", text: "fixed" },
      module: { type: "attached", botId: "U1", scopes: ["message:send"] },
      delivery: { data: "hash" },
    };
    const messageKinds = ["text", "image", "video", "audio", "file", "location", "sticker"];
    for (const kind of EVENT_KINDS) {
      assert.equal(
        built(kind, user, fields[kind] ?? {}).type,
        messageKinds.includes(kind) ? "message" : kind,
      );
    }
  });

  test("an unknown kind, a missing required field or a missing source is named", () => {
    assert.match(String(buildEvent("things", user, {})), /^unknown event kind "things"; one of text, /);
    assert.equal(buildEvent("postback", user, {}), "postback needs data (string)");
    assert.equal(buildEvent("memberJoined", user, { userIds: "U1" }), "memberJoined needs userIds (array)");
    assert.equal(buildEvent("follow", undefined, {}), "follow needs a source");
    const module = built("module", undefined, { type: "detached", botId: "U1", reason: "bot_deleted" });
    assert.equal("source" in module, false);
  });
});

describe("bodies", () => {
  test("webhookBody wraps events with a destination", () => {
    const event = unfollowEvent(user);
    assert.deepEqual(webhookBody([event]), { destination: DEFAULT_DESTINATION, events: [event] });
    assert.deepEqual(webhookBody([], "Ubot"), { destination: "Ubot", events: [] });
  });

  test("redelivered changes only isRedelivery and leaves the original alone", () => {
    const event = textEvent(user, "again");
    const copy = redelivered(event);
    assert.equal(copy.deliveryContext.isRedelivery, true);
    assert.equal(event.deliveryContext.isRedelivery, false);
    assert.deepEqual({ ...copy, deliveryContext: event.deliveryContext }, event);
  });

  test("rawEvent passes unknown types through unchanged", () => {
    const unknown = { type: "somethingNew", mode: "active", timestamp: 1, extra: { a: 1 } };
    assert.equal(rawEvent(unknown), unknown);
  });
});
