// Emulator → talkgate → partner sink: every event and message type arrives in the SPEC §3 shape, once, in order.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

const payloads = (stack: Stack) => stack.sink.accepted as PartnerPayload[];

async function relay(stack: Stack, events: object[], count = events.length): Promise<PartnerPayload[]> {
  const before = payloads(stack).length;
  const result = await stack.emulator.sendWebhook(SENDER_KEY, events);
  assert.equal(result.status, 200, result.body);
  await stack.sink.waitFor((accepted) => accepted.length >= before + count);
  return payloads(stack).slice(before);
}

describe("relay of every message and postback", () => {
  let stack: Stack;
  const userId = ev.randomUserId();
  const groupId = ev.randomGroupId();
  const roomId = ev.randomRoomId();
  const member = ev.randomUserId();

  before(async () => {
    stack = await startStack();
    stack.emulator.setProfile(userId, { displayName: "홍길동" });
    stack.emulator.setGroupMemberProfile(groupId, member, { displayName: "สมชาย" });
    stack.emulator.setRoomMemberProfile(roomId, member, { displayName: "Room Member" });
  });
  after(() => stack.close());

  test("a 1:1 text message reaches the partner in the seed shape", async () => {
    const event = ev.textEvent(ev.userSource(userId), "text");
    const [payload] = await relay(stack, [event]);
    assert.ok(payload);
    assert.match(payload.serial_number, new RegExp(`^${userId.slice(0, 12)}-0001-[0-9A-F]{8}$`));
    const { serial_number: _s, time, ...rest } = payload;
    assert.ok(Math.abs(time - Date.now()) < 10_000, "time is talkgate's receive time");
    assert.deepEqual(rest, {
      chat_type: "LINE",
      sender_key: SENDER_KEY,
      user_key: userId,
      event_type: "message",
      mode: "active",
      source: { type: "user", userId },
      content: event.message,
      is_message_attachment: false,
      e164: "",
      user_name: "홍길동",
      agree_type: 0,
    });
    const request = stack.sink.received.at(-1);
    assert.equal(request?.signatureValid, true, "Standard Webhooks signature verifies");
    assert.equal(request?.headers["webhook-id"], `${SENDER_KEY}:${payload.serial_number}`);
  });

  test("every message type keeps LINE's message object as content", async () => {
    const source = ev.userSource(userId);
    const events = [
      ev.imageEvent(source, { imageSet: { id: "SET1", index: 1, total: 2 } }),
      ev.imageEvent(source, {
        contentProvider: {
          type: "external",
          originalContentUrl: "https://example.com/a.jpg",
          previewImageUrl: "https://example.com/p.jpg",
        },
      }),
      ev.videoEvent(source, { duration: 4906 }),
      ev.audioEvent(source, { duration: 6449 }),
      ev.fileEvent(source, { fileName: "고해상도7.zip", fileSize: 15280848 }),
      ev.locationEvent(source, {
        title: "my location",
        address: "Tokyo",
        latitude: 35.67966,
        longitude: 139.73669,
      }),
      ev.stickerEvent(source, {
        packageId: "11537",
        stickerId: "52002738",
        stickerResourceType: "ANIMATION",
        keywords: ["hi"],
      }),
      ev.stickerEvent(source, {
        packageId: "1",
        stickerId: "2",
        stickerResourceType: "SOMETHING_NEW" as "STATIC",
      }),
      ev.textEvent(source, {
        text: "Hi 🍎 $",
        emojis: [{ index: 6, length: 1, productId: "p", emojiId: "001" }],
      }),
    ];
    const received = await relay(stack, events);
    assert.deepEqual(
      received.map((p) => p.content),
      events.map((e) => e.message),
    );
    assert.ok(received.every((p) => p.event_type === "message" && p.is_message_attachment === false));
  });

  test("postbacks carry {data, params} and no params key when LINE sent none", async () => {
    const source = ev.userSource(userId);
    const received = await relay(stack, [
      ev.postbackEvent(source, { data: "action=buy&itemid=123" }),
      ev.postbackEvent(source, { data: "storeId=12345", params: { datetime: "2021-09-27T13:11" } }),
      ev.postbackEvent(source, {
        data: "menu",
        params: { newRichMenuAliasId: "richmenu-b", status: "SUCCESS" },
      }),
    ]);
    assert.deepEqual(
      received.map((p) => [p.event_type, p.content]),
      [
        ["postback", { data: "action=buy&itemid=123" }],
        ["postback", { data: "storeId=12345", params: { datetime: "2021-09-27T13:11" } }],
        ["postback", { data: "menu", params: { newRichMenuAliasId: "richmenu-b", status: "SUCCESS" } }],
      ],
    );
  });

  test("group and room messages carry their source and the member's name", async () => {
    const received = await relay(stack, [
      ev.textEvent(ev.groupSource(groupId, member), "in a group"),
      ev.textEvent(ev.roomSource(roomId, member), "in a room"),
      ev.textEvent(ev.groupSource(groupId), "group member without consent"),
    ]);
    const byText = new Map(received.map((p) => [p.content.text, p]));
    assert.deepEqual(byText.get("in a group")?.source, { type: "group", groupId, userId: member });
    assert.equal(byText.get("in a group")?.user_name, "สมชาย");
    assert.equal(byText.get("in a room")?.user_name, "Room Member");
    assert.deepEqual(byText.get("in a room")?.source, { type: "room", roomId, userId: member });
    const anonymous = byText.get("group member without consent");
    assert.equal(anonymous?.user_key, "");
    assert.equal(anonymous?.user_name, "");
    assert.match(anonymous?.serial_number ?? "", new RegExp(`^${groupId.slice(0, 12)}-0001-`));
  });

  test("a long text is cut to 300 units with is_message_attachment true", async () => {
    const text = `${"가".repeat(299)}😀${"x".repeat(1000)}`;
    const [payload] = await relay(stack, [ev.textEvent(ev.userSource(userId), text)]);
    assert.equal(payload?.is_message_attachment, true);
    assert.equal(payload?.content.text, "가".repeat(299), "the emoji straddling the cut is dropped whole");
  });

  test("standby events are relayed with their mode", async () => {
    const [payload] = await relay(stack, [
      ev.textEvent(ev.userSource(userId), "standby", { mode: "standby" }),
    ]);
    assert.equal(payload?.mode, "standby");
  });

  test("a user nobody can name gets an empty user_name without delaying the relay", async () => {
    const stranger = ev.randomUserId();
    const [payload] = await relay(stack, [ev.textEvent(ev.userSource(stranger), "who am I")]);
    assert.equal(payload?.user_name, "");
    assert.equal(payload?.user_key, stranger);
  });

  test("a slow profile API delays the payload at most the wait bound, then sends an empty name", async () => {
    const slow = ev.randomUserId();
    stack.emulator.setProfile(slow, { displayName: "Slow" });
    stack.emulator.setDelay(new RegExp(`/v2/bot/profile/${slow}`), 3_000);
    const started = Date.now();
    const [payload] = await relay(stack, [ev.textEvent(ev.userSource(slow), "hello")]);
    assert.equal(payload?.user_name, "");
    assert.ok(Date.now() - started < 2_500, "the payload did not wait for the slow lookup");
    stack.emulator.clearFaults();
  });

  test("events other than message and postback are stored but not relayed by default", async () => {
    const source = ev.userSource(userId);
    const result = await stack.emulator.sendWebhook(SENDER_KEY, [
      ev.followEvent(source),
      ev.unfollowEvent(source),
      ev.rawEvent({
        type: "somethingNew",
        source,
        timestamp: Date.now(),
        mode: "active",
        webhookEventId: ev.ulid(),
      }),
    ]);
    assert.equal(result.status, 200);
    assert.deepEqual(JSON.parse(result.body), { code: "0", stored: 3, duplicates: 0 });
    const marker = ev.textEvent(source, "after the others");
    const [next] = await relay(stack, [marker]);
    assert.equal(next?.content.text, "after the others", "nothing else was relayed before it");
  });
});

describe("opt-in event types", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      forwardEventTypes: [
        "message",
        "postback",
        "follow",
        "unfollow",
        "unsend",
        "join",
        "leave",
        "memberJoined",
        "memberLeft",
        "videoPlayComplete",
        "messageEdited",
      ],
    });
  });
  after(() => stack.close());

  test("each opted-in type arrives with LINE's event-specific object as content", async () => {
    const user = ev.randomUserId();
    const group = ev.randomGroupId();
    const other = ev.randomUserId();
    const t = Date.now();
    const events = [
      ev.followEvent(ev.userSource(user), { isUnblocked: true }, { timestamp: t }),
      ev.videoPlayCompleteEvent(ev.userSource(user), { trackingId: "track-1" }, { timestamp: t + 1 }),
      ev.unsendEvent(ev.userSource(user), { messageId: "325708" }, { timestamp: t + 2 }),
      ev.unfollowEvent(ev.userSource(user), { timestamp: t + 3 }),
      ev.joinEvent(ev.groupSource(group), { timestamp: t }),
      ev.memberJoinedEvent(ev.groupSource(group), { userIds: [other] }, { timestamp: t + 1 }),
      ev.memberLeftEvent(ev.groupSource(group), { userIds: [other] }, { timestamp: t + 2 }),
      ev.messageEditedEvent(
        ev.groupSource(group, user),
        { id: "1234", text: "edited" },
        { timestamp: t + 3 },
      ),
      ev.leaveEvent(ev.groupSource(group), { timestamp: t + 4 }),
    ];
    const received = await relay(stack, events);
    const inChat = (id: string) =>
      received
        .filter((p) => (p.source?.groupId ?? p.source?.userId) === id)
        .map((p) => [p.event_type, p.content]);
    assert.deepEqual(inChat(user), [
      ["follow", { isUnblocked: true }],
      ["videoPlayComplete", { trackingId: "track-1" }],
      ["unsend", { messageId: "325708" }],
      ["unfollow", {}],
    ]);
    assert.deepEqual(inChat(group), [
      ["join", {}],
      ["memberJoined", { members: [{ type: "user", userId: other }] }],
      ["memberLeft", { members: [{ type: "user", userId: other }] }],
      ["messageEdited", (events[7] as { message: object }).message],
      ["leave", {}],
    ]);
  });
});
