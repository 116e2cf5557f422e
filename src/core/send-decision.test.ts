// Unit tests for the send decision: each serial_number once, interrupted sends finished the same way, standby.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConversationState } from "./event-record.ts";
import { decideSend, type SendRecord } from "./send-decision.ts";

const NOW = 1_700_000_000_000;
const timing = { staleAfterMs: 60_000, replyTokenMaxAgeMs: 50_000 };
const row = (extra: Partial<SendRecord>): SendRecord => ({
  state: "sending",
  requestHash: "h",
  answer: null,
  updatedAt: NOW,
  attemptMethod: null,
  attemptToken: null,
  attemptTokenAt: null,
  ...extra,
});
const chat = (extra: Partial<ConversationState> = {}): ConversationState => ({
  lastEventAt: 1,
  lastMode: "active",
  replyToken: "r1",
  replyTokenAt: NOW - 1_000,
  replyTokenUsedBy: null,
  ...extra,
});
const answer = { method: "reply", sentMessages: [{ id: "1" }], requestId: "q" };

test("decideSend, one case at a time", () => {
  const cases: Array<[string, SendRecord | null, ConversationState | null, object]> = [
    [
      "a first send with a fresh reply token",
      null,
      chat(),
      {
        begin: { kind: "go", replyToken: "r1", interrupted: null },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "…without a conversation: push",
      null,
      null,
      {
        begin: { kind: "go", replyToken: null, interrupted: null },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "a token older than replyTokenMaxAgeMs is not offered",
      null,
      chat({ replyTokenAt: NOW - 50_000 }),
      {
        begin: { kind: "go", replyToken: null, interrupted: null },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "a token another send used is not offered",
      null,
      chat({ replyTokenUsedBy: "other" }),
      {
        begin: { kind: "go", replyToken: null, interrupted: null },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "standby refuses, recorded as failed -409",
      null,
      chat({ lastMode: "standby" }),
      { begin: { kind: "standby" }, write: { state: "failed", errorCode: "-409" } },
    ],
    [
      "other messages under the same serial_number",
      row({ requestHash: "other" }),
      chat(),
      { begin: { kind: "conflict" }, write: null },
    ],
    [
      "sent before: its answer again",
      row({ state: "sent", answer: JSON.stringify(answer) }),
      chat(),
      { begin: { kind: "done", answer }, write: null },
    ],
    [
      "undecidable before: the same failure",
      row({ state: "unknown", answer: '{"code":"-424","message":"m"}' }),
      chat(),
      { begin: { kind: "failed", error: { code: "-424", message: "m" } }, write: null },
    ],
    ["in progress: busy", row({ updatedAt: NOW - 59_999 }), chat(), { begin: { kind: "busy" }, write: null }],
    [
      "in progress past staleAfterMs: resumed",
      row({ updatedAt: NOW - 60_000 }),
      chat(),
      {
        begin: { kind: "go", replyToken: "r1", interrupted: null },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "a failed send may be tried again",
      row({ state: "failed" }),
      chat(),
      {
        begin: { kind: "go", replyToken: "r1", interrupted: null },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "an interrupted push is finished as a push, standby or not",
      row({ state: "failed", attemptMethod: "push" }),
      chat({ lastMode: "standby" }),
      {
        begin: { kind: "go", replyToken: "r1", interrupted: { method: "push" } },
        write: { state: "sending", errorCode: null },
      },
    ],
    [
      "an interrupted reply keeps its token",
      row({ state: "failed", attemptMethod: "reply", attemptToken: "r0", attemptTokenAt: NOW - 5 }),
      chat(),
      {
        begin: {
          kind: "go",
          replyToken: "r1",
          interrupted: { method: "reply", token: "r0", tokenAt: NOW - 5 },
        },
        write: { state: "sending", errorCode: null },
      },
    ],
  ];
  for (const [name, previous, conversation, expected] of cases)
    assert.deepEqual(decideSend(previous, conversation, "h", NOW, timing), expected, name);
});
