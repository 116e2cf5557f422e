// Unit tests for the outbox's in-memory schedule: due times, leases, wake-ups during a lease, expiry.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ConversationRef, ConversationSchedule } from "./conversation-schedule.ts";

const conv = (n: number, senderKey = "1656168303"): ConversationRef => ({
  senderKey,
  conversation: `user:U${n}`,
});
const names = (refs: ConversationRef[]) => refs.map((ref) => `${ref.senderKey}/${ref.conversation}`);

test("due conversations are leased earliest first, up to the limit, and only once due", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), 300);
  schedule.wake(conv(2), 100);
  schedule.wake(conv(3), 200);
  schedule.wake(conv(4), 900);
  assert.equal(schedule.nextDueAt(), 100);
  assert.deepEqual(names(schedule.lease(50, 10, "w", 10_000)), [], "nothing is due yet");
  assert.deepEqual(names(schedule.lease(300, 2, "w", 10_000)), names([conv(2), conv(3)]));
  assert.deepEqual(names(schedule.lease(300, 10, "w", 10_000)), names([conv(1)]));
  assert.equal(schedule.nextDueAt(), 900);
});

test("a wake-up only ever makes a conversation due sooner", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), 500);
  schedule.wake(conv(1), 800);
  assert.equal(schedule.nextDueAt(), 500);
  schedule.wake(conv(1), 200);
  assert.equal(schedule.nextDueAt(), 200);
  assert.deepEqual(names(schedule.lease(200, 10, "w", 1_000)), names([conv(1)]), "leased once");
});

test("the same conversation id in two channels is two conversations", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1, "A"), 0);
  schedule.wake(conv(1, "B"), 0);
  assert.equal(schedule.lease(0, 10, "w", 100).length, 2);
});

test("a wake-up during a lease makes the conversation due by then once released, even with nothing seen waiting", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), 0);
  schedule.lease(0, 10, "w", 1_000);
  schedule.wake(conv(1), 40); // new work committed after the holder last looked at the conversation
  assert.equal(schedule.nextDueAt(), 1_000, "not before the release");
  schedule.release(conv(1), "w", null);
  assert.equal(schedule.nextDueAt(), 40);
  schedule.lease(40, 10, "w", 1_000);
  schedule.release(conv(1), "w", 30);
  assert.equal(schedule.nextDueAt(), 30, "a wake-up before the lease is not kept past it");
});

test("a leased conversation waits out wake-ups and is due again when its lease ends", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), 0);
  schedule.lease(0, 10, "w1", 1_000);
  schedule.wake(conv(1), 10);
  assert.equal(schedule.nextDueAt(), 1_000, "a past time would make idle workers spin on it");
  assert.deepEqual(schedule.lease(999, 10, "w2", 2_000), []);
  assert.deepEqual(names(schedule.lease(1_000, 10, "w2", 2_000)), names([conv(1)]), "taken over");
  schedule.release(conv(1), "w1", 5);
  assert.equal(schedule.nextDueAt(), 2_000, "the first holder's late release changes nothing");
  schedule.release(conv(1), "w2", 5);
  assert.equal(schedule.nextDueAt(), 5, "the holder's release sets the next due time");
});

test("released with nothing waiting, a conversation leaves the schedule until woken again", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), 0);
  schedule.wake(conv(2), 50);
  schedule.lease(0, 1, "w", 1_000);
  schedule.release(conv(1), "w", null);
  assert.equal(schedule.nextDueAt(), 50);
  schedule.lease(50, 1, "w", 1_000);
  schedule.release(conv(2), "w", null);
  assert.equal(schedule.nextDueAt(), null);
  schedule.wake(conv(1), 70);
  assert.deepEqual(names(schedule.lease(70, 10, "w", 1_000)), names([conv(1)]));
});

test("many conversations with changing due times come out in order (heap)", () => {
  const schedule = new ConversationSchedule();
  const due = new Map<number, number>();
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 2_000; round++) {
    const n = Math.floor(random() * 300);
    const at = Math.floor(random() * 10_000);
    schedule.wake(conv(n), at);
    due.set(n, Math.min(due.get(n) ?? Infinity, at));
  }
  const expected = [...due.entries()].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  const leased: number[] = [];
  let previous = -Infinity;
  for (;;) {
    const next = schedule.nextDueAt();
    if (next === null || next >= 1e9) break;
    assert.ok(next >= previous, "never earlier than the one before");
    previous = next;
    for (const ref of schedule.lease(next, 1, "w", 1e9)) leased.push(Number(ref.conversation.slice(6)));
  }
  assert.equal(leased.length, expected.length);
  assert.deepEqual(
    leased.map((n) => due.get(n)),
    expected.map(([, at]) => at),
  );
});
