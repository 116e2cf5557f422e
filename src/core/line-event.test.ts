// Unit tests for readEventFacts: conversation, prefix, dedupe key, message id and timestamp of any event shape.
import assert from "node:assert/strict";
import { test } from "node:test";
import { asObject, type EventFacts, readEventFacts, senderOf } from "./line-event.ts";

const USER = "Uae87c693e2897ccc4c7654acd04f9259";
const OTHER_USER = "U0123456789abcdef0123456789abcdef";
const GROUP = "Ca56f94637cc4347f90a25382909b24b9";
const ROOM = "Ra8dbf4ccc4fd8e94fa2b52f0a1cbb1a3";
const RECEIVED_AT = 1_700_000_000_123;

function message(source: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "message",
    mode: "active",
    timestamp: 1_700_000_000_000,
    source,
    webhookEventId: "01FZ74A0TDDPYRVKNK77XKC3ZR",
    deliveryContext: { isRedelivery: false },
    replyToken: "757913772c4646b784d4b7ce46d12671",
    message: { id: "444573844083572737", type: "text", quoteToken: "q3Plxr4AgKd", text: "hi" },
    ...extra,
  };
}

const SOURCE_CASES: Array<{
  name: string;
  source: unknown;
  conversation: string;
  userId: string | null;
  serialPrefix: string | null;
}> = [
  {
    name: "user",
    source: { type: "user", userId: USER },
    conversation: `user:${USER}`,
    userId: USER,
    serialPrefix: "Uae87c693e28",
  },
  {
    name: "group with userId",
    source: { type: "group", groupId: GROUP, userId: USER },
    conversation: `group:${GROUP}`,
    userId: USER,
    serialPrefix: "Uae87c693e28",
  },
  {
    name: "group without userId",
    source: { type: "group", groupId: GROUP },
    conversation: `group:${GROUP}`,
    userId: null,
    serialPrefix: "Ca56f94637cc",
  },
  {
    name: "room with userId",
    source: { type: "room", roomId: ROOM, userId: OTHER_USER },
    conversation: `room:${ROOM}`,
    userId: OTHER_USER,
    serialPrefix: "U0123456789a",
  },
  {
    name: "room without userId",
    source: { type: "room", roomId: ROOM },
    conversation: `room:${ROOM}`,
    userId: null,
    serialPrefix: "Ra8dbf4ccc4f",
  },
  { name: "no source", source: undefined, conversation: "channel", userId: null, serialPrefix: null },
  { name: "null source", source: null, conversation: "channel", userId: null, serialPrefix: null },
  {
    name: "source that is a string",
    source: "user",
    conversation: "channel",
    userId: null,
    serialPrefix: null,
  },
  {
    name: "empty userId",
    source: { type: "user", userId: "" },
    conversation: "channel",
    userId: null,
    serialPrefix: null,
  },
];

for (const c of SOURCE_CASES) {
  test(`readEventFacts source: ${c.name}`, () => {
    const event = message(c.source);
    if (c.source === undefined) delete event.source;
    const facts = readEventFacts(event, RECEIVED_AT);
    assert.equal(facts.conversation, c.conversation);
    assert.equal(facts.userId, c.userId);
    assert.equal(facts.serialPrefix, c.serialPrefix);
  });
}

test("readEventFacts reads a full text message event", () => {
  const facts = readEventFacts(message({ type: "user", userId: USER }), RECEIVED_AT);
  assert.deepEqual(facts, {
    key: "01FZ74A0TDDPYRVKNK77XKC3ZR",
    type: "message",
    mode: "active",
    timestamp: 1_700_000_000_000,
    conversation: `user:${USER}`,
    userId: USER,
    messageId: "444573844083572737",
    serialPrefix: "Uae87c693e28",
    sender: { chat: { type: "user" }, userId: USER },
    replyToken: "757913772c4646b784d4b7ce46d12671",
  } satisfies EventFacts);
});

const SENDER_CASES: Array<[string, Record<string, unknown> | null, unknown]> = [
  ["a 1:1 user", { type: "user", userId: "U1" }, { chat: { type: "user" }, userId: "U1" }],
  [
    "a group member",
    { type: "group", groupId: "C1", userId: "U1" },
    { chat: { type: "group", id: "C1" }, userId: "U1" },
  ],
  [
    "a room member",
    { type: "room", roomId: "R1", userId: "U1" },
    { chat: { type: "room", id: "R1" }, userId: "U1" },
  ],
  ["a group without userId", { type: "group", groupId: "C1" }, null],
  ["a room without userId", { type: "room", roomId: "R1" }, null],
  ["no source", null, null],
  ["an empty userId", { type: "user", userId: "" }, null],
];

for (const [name, source, expected] of SENDER_CASES) {
  test(`senderOf names ${name}`, () => {
    assert.deepEqual(senderOf(source), expected);
  });
}

test("readEventFacts keeps standby mode and defaults a missing mode to active", () => {
  assert.equal(
    readEventFacts(message({ type: "user", userId: USER }, { mode: "standby" }), RECEIVED_AT).mode,
    "standby",
  );
  const noMode = message({ type: "user", userId: USER });
  delete noMode.mode;
  assert.equal(readEventFacts(noMode, RECEIVED_AT).mode, "active");
});

test("readEventFacts uses webhookEventId as the key when present", () => {
  const a = readEventFacts(
    message({ type: "user", userId: USER }, { webhookEventId: "01HAAAAAAAAAAAAAAAAAAAAAAA" }),
    1,
  );
  const b = readEventFacts(
    message({ type: "user", userId: USER }, { webhookEventId: "01HBBBBBBBBBBBBBBBBBBBBBBB" }),
    1,
  );
  assert.equal(a.key, "01HAAAAAAAAAAAAAAAAAAAAAAA");
  assert.equal(b.key, "01HBBBBBBBBBBBBBBBBBBBBBBB");
});

function withoutId(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const event = message({ type: "user", userId: USER }, extra);
  delete event.webhookEventId;
  return event;
}

test("readEventFacts hashes events without webhookEventId; a redelivery differing in deliveryContext hashes equal", () => {
  const first = readEventFacts(withoutId(), RECEIVED_AT);
  const redelivered = readEventFacts(
    withoutId({ deliveryContext: { isRedelivery: true } }),
    RECEIVED_AT + 5000,
  );
  const noContext = withoutId();
  delete noContext.deliveryContext;
  assert.match(first.key, /^sha256:[0-9a-f]{64}$/);
  assert.equal(redelivered.key, first.key);
  assert.equal(readEventFacts(noContext, RECEIVED_AT).key, first.key);
});

const DIFFERENT_EVENTS: Array<{ name: string; extra: Record<string, unknown> }> = [
  { name: "another timestamp", extra: { timestamp: 1_700_000_000_001 } },
  { name: "another message", extra: { message: { id: "444573844083572738", type: "text", text: "hi" } } },
  { name: "another reply token", extra: { replyToken: "other" } },
  { name: "another source", extra: { source: { type: "user", userId: OTHER_USER } } },
  { name: "another mode", extra: { mode: "standby" } },
];

for (const c of DIFFERENT_EVENTS) {
  test(`readEventFacts hash key differs for a different event: ${c.name}`, () => {
    assert.notEqual(
      readEventFacts(withoutId(c.extra), RECEIVED_AT).key,
      readEventFacts(withoutId(), RECEIVED_AT).key,
    );
  });
}

test("readEventFacts: an empty webhookEventId falls back to the hash", () => {
  assert.match(
    readEventFacts(message({ type: "user", userId: USER }, { webhookEventId: "" }), 1).key,
    /^sha256:/,
  );
});

test("readEventFacts: text no store can hold counts as absent, a timestamp that is no safe integer as missing", () => {
  for (const bad of ["U\u0000\u0000", "U\ud800lone", "\udc00"]) {
    const facts = readEventFacts(message({ type: "user", userId: bad }, { webhookEventId: bad }), 7);
    assert.equal(facts.userId, null, JSON.stringify(bad));
    assert.equal(facts.conversation, "channel");
    assert.match(facts.key, /^sha256:/);
  }
  const paired = "U\ud83d\ude00"; // a surrogate pair (an emoji) is well-formed
  assert.equal(readEventFacts(message({ type: "user", userId: paired }), 7).userId, paired);
  for (const timestamp of [1.5, 1e30, -9.2e18, Number.NaN, "1700000000000"])
    assert.equal(readEventFacts(message({ type: "user", userId: USER }, { timestamp }), 7).timestamp, 7);
  assert.equal(
    readEventFacts(message({ type: "user", userId: USER }, { timestamp: 1_700_000_000_000 }), 7).timestamp,
    1_700_000_000_000,
  );
});

const MESSAGE_ID_CASES: Array<{ name: string; event: Record<string, unknown>; messageId: string | null }> = [
  { name: "message", event: message({ type: "user", userId: USER }), messageId: "444573844083572737" },
  {
    name: "unsend",
    event: {
      type: "unsend",
      mode: "active",
      timestamp: 1,
      source: { type: "user", userId: USER },
      unsend: { messageId: "325708" },
    },
    messageId: "325708",
  },
  {
    name: "messageEdited",
    event: {
      type: "messageEdited",
      mode: "active",
      timestamp: 1,
      source: { type: "group", groupId: GROUP, userId: USER },
      message: { id: "468789577898262530", type: "text", text: "edited" },
    },
    messageId: "468789577898262530",
  },
  {
    name: "follow",
    event: { type: "follow", timestamp: 1, follow: { isUnblocked: false } },
    messageId: null,
  },
  {
    name: "message with numeric id",
    event: { type: "message", message: { id: 42, type: "text" } },
    messageId: null,
  },
  { name: "unsend without messageId", event: { type: "unsend", unsend: {} }, messageId: null },
];

for (const c of MESSAGE_ID_CASES) {
  test(`readEventFacts messageId: ${c.name}`, () => {
    assert.equal(readEventFacts(c.event, RECEIVED_AT).messageId, c.messageId);
  });
}

const TIMESTAMP_CASES: Array<{ name: string; timestamp: unknown; expected: number }> = [
  { name: "a number", timestamp: 1_600_000_000_000, expected: 1_600_000_000_000 },
  { name: "missing", timestamp: undefined, expected: RECEIVED_AT },
  { name: "a string", timestamp: "1600000000000", expected: RECEIVED_AT },
  { name: "null", timestamp: null, expected: RECEIVED_AT },
  { name: "NaN", timestamp: Number.NaN, expected: RECEIVED_AT },
  { name: "Infinity", timestamp: Number.POSITIVE_INFINITY, expected: RECEIVED_AT },
];

for (const c of TIMESTAMP_CASES) {
  test(`readEventFacts timestamp ${c.name}`, () => {
    const event = message({ type: "user", userId: USER }, { timestamp: c.timestamp });
    if (c.timestamp === undefined) delete event.timestamp;
    assert.equal(readEventFacts(event, RECEIVED_AT).timestamp, c.expected);
  });
}

const ODD_EVENTS: Array<{ name: string; raw: unknown }> = [
  { name: "null", raw: null },
  { name: "undefined", raw: undefined },
  { name: "a number", raw: 5 },
  { name: "a string", raw: "x" },
  { name: "an array", raw: [] },
  { name: "an array of events", raw: [message({ type: "user", userId: USER })] },
  { name: "an empty object", raw: {} },
  { name: "type is a number", raw: { type: 7, source: 3, message: "m", unsend: [1] } },
];

for (const c of ODD_EVENTS) {
  test(`readEventFacts never throws on ${c.name}`, () => {
    const facts = readEventFacts(c.raw, RECEIVED_AT);
    assert.equal(facts.type, "unknown");
    assert.equal(facts.mode, "active");
    assert.equal(facts.timestamp, RECEIVED_AT);
    assert.equal(facts.conversation, "channel");
    assert.equal(facts.userId, null);
    assert.equal(facts.messageId, null);
    assert.equal(facts.serialPrefix, null);
    assert.match(facts.key, /^sha256:[0-9a-f]{64}$/);
  });
}

test("readEventFacts keeps unknown event and source types", () => {
  const facts = readEventFacts(
    {
      type: "somethingNew2030",
      timestamp: 12,
      source: { type: "community", communityId: "X1", userId: USER },
      webhookEventId: "01HNEW",
    },
    RECEIVED_AT,
  );
  assert.equal(facts.type, "somethingNew2030");
  assert.equal(facts.key, "01HNEW");
  assert.equal(facts.conversation, `user:${USER}`);
  assert.equal(facts.serialPrefix, "Uae87c693e28");
});

test("asObject accepts only plain objects", () => {
  assert.deepEqual(asObject({ a: 1 }), { a: 1 });
  for (const value of [null, undefined, 1, "s", [], true]) assert.equal(asObject(value), null);
});
