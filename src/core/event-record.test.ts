// Unit tests for how a new event is recorded and what it changes of its conversation (pure: no database).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ConversationState, conversationAfter, recordEvent } from "./event-record.ts";
import { readEventFacts } from "./line-event.ts";

const T = 1_700_000_000_000;
const user = { type: "user", userId: "Uae87c693e2897ccc4c7654acd04f9259" };
const event = (extra: Record<string, unknown>) => ({
  type: "message",
  mode: "active",
  timestamp: 1_000,
  source: user,
  webhookEventId: "e1",
  ...extra,
});

test("recordEvent: unsend first, attachments held, deliveries only for forwarded types", () => {
  const image = event({ message: { id: "m1", type: "image", contentProvider: { type: "line" } } });
  const text = event({ message: { id: "m2", type: "text", text: "secret" } });
  const unsend = event({ type: "unsend", unsend: { messageId: "m2" } });
  const cases: Array<
    [
      string,
      Record<string, unknown>,
      { forward: boolean; media: "image" | null; unsentBefore: boolean },
      object,
    ]
  > = [
    [
      "an image waits for its content, at most mediaWaitMs",
      image,
      { forward: true, media: "image", unsentBefore: false },
      {
        unsentAt: null,
        media: { kind: "image", state: "pending", goneReason: null },
        delivery: { relayAt: T + 30_000 },
        takesBack: null,
      },
    ],
    [
      "an image its user unsent first: stored without content, gone at once, relayed now",
      image,
      { forward: true, media: "image", unsentBefore: true },
      {
        unsentAt: T,
        media: { kind: "image", state: "gone", goneReason: "unsent" },
        delivery: { relayAt: T },
        takesBack: null,
      },
    ],
    [
      "a text that is not forwarded: stored, no delivery",
      text,
      { forward: false, media: null, unsentBefore: false },
      { unsentAt: null, media: null, delivery: null, takesBack: null },
    ],
    [
      "an unsend takes its message back, and is never itself taken back",
      unsend,
      { forward: true, media: null, unsentBefore: true },
      { unsentAt: null, media: null, delivery: { relayAt: T }, takesBack: "m2" },
    ],
  ];
  for (const [name, raw, input, expected] of cases) {
    const facts = readEventFacts(raw, T);
    const { body: _body, ...record } = recordEvent(
      facts,
      { body: JSON.stringify(raw), ...input },
      {
        receivedAt: T,
        mediaWaitMs: 30_000,
        unsentBefore: input.unsentBefore,
      },
    );
    assert.deepEqual(record, expected, name);
  }
  const unsent = recordEvent(
    readEventFacts(text, T),
    { body: JSON.stringify(text), forward: true, media: null },
    {
      receivedAt: T,
      mediaWaitMs: 0,
      unsentBefore: true,
    },
  );
  assert.deepEqual(
    JSON.parse(unsent.body).message,
    { id: "m2", type: "text" },
    "the text itself is never stored",
  );
});

test("conversationAfter: the latest event by LINE timestamp wins the mode and, when it has one, the reply token", () => {
  const at = (timestamp: number, mode: string, replyToken: string | null) => ({
    conversation: "user:U1",
    timestamp,
    mode,
    replyToken,
  });
  const used: ConversationState = {
    lastEventAt: 2_000,
    lastMode: "active",
    replyToken: "r-old",
    replyTokenAt: T,
    replyTokenUsedBy: "send-1",
  };
  const cases: Array<[string, ConversationState | null, ReturnType<typeof at>, ConversationState | null]> = [
    [
      "a first event",
      null,
      at(1_000, "active", "r1"),
      {
        lastEventAt: 1_000,
        lastMode: "active",
        replyToken: "r1",
        replyTokenAt: T + 5,
        replyTokenUsedBy: null,
      },
    ],
    [
      "a newer token is unused again",
      used,
      at(3_000, "active", "r2"),
      {
        lastEventAt: 3_000,
        lastMode: "active",
        replyToken: "r2",
        replyTokenAt: T + 5,
        replyTokenUsedBy: null,
      },
    ],
    [
      "a newer standby event (no token) keeps the token, used or not",
      used,
      at(3_000, "standby", null),
      { ...used, lastEventAt: 3_000, lastMode: "standby" },
    ],
    [
      "an older active event arriving late changes nothing",
      { ...used, lastMode: "standby" },
      at(1_500, "active", "r-late"),
      { ...used, lastMode: "standby" },
    ],
    [
      "the same timestamp counts as newer",
      used,
      at(2_000, "standby", null),
      { ...used, lastMode: "standby" },
    ],
  ];
  for (const [name, current, facts, expected] of cases)
    assert.deepEqual(conversationAfter(current, facts, T + 5), expected, name);
  assert.equal(
    conversationAfter(null, { ...at(1, "active", null), conversation: "channel" }, T),
    null,
    "no conversation",
  );
});
