// Unit tests for the outbox's in-memory schedule: due times, leases, wake-ups during a lease, expiry, and the
// slots shared fairly among partners.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ConversationRef, ConversationSchedule, type Slots } from "./conversation-schedule.ts";

const ANY: Slots = () => Number.POSITIVE_INFINITY;

/** The schedule of a single partner with no cap, as most tests here need it. */
function single() {
  const schedule = new ConversationSchedule();
  return {
    wake: (ref: ConversationRef, at: number) => schedule.wake(ref, "p", at),
    lease: (now: number, limit: number, owner: string, until: number) =>
      schedule.lease(now, limit, ANY, owner, until),
    release: (ref: ConversationRef, owner: string, nextAt: number | null) =>
      schedule.release(ref, owner, nextAt),
    nextDueAt: () => schedule.nextDueAt(0, ANY),
  };
}

const conv = (n: number, senderKey = "1656168303"): ConversationRef => ({
  senderKey,
  conversation: `user:U${n}`,
});
const names = (refs: ConversationRef[]) => refs.map((ref) => `${ref.senderKey}/${ref.conversation}`);

test("due conversations are leased earliest first, up to the limit, and only once due", () => {
  const schedule = single();
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
  const schedule = single();
  schedule.wake(conv(1), 500);
  schedule.wake(conv(1), 800);
  assert.equal(schedule.nextDueAt(), 500);
  schedule.wake(conv(1), 200);
  assert.equal(schedule.nextDueAt(), 200);
  assert.deepEqual(names(schedule.lease(200, 10, "w", 1_000)), names([conv(1)]), "leased once");
});

test("the same conversation id in two channels is two conversations", () => {
  const schedule = single();
  schedule.wake(conv(1, "A"), 0);
  schedule.wake(conv(1, "B"), 0);
  assert.equal(schedule.lease(0, 10, "w", 100).length, 2);
});

test("a wake-up during a lease makes the conversation due by then once released, even with nothing seen waiting", () => {
  const schedule = single();
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
  const schedule = single();
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
  const schedule = single();
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
  const schedule = single();
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

test("slots are shared: a partner never holds more than its share, and the one holding fewest goes first", () => {
  const schedule = new ConversationSchedule();
  for (let n = 0; n < 10; n++) schedule.wake(conv(n, "A"), "slow", n); // the slow partner's backlog, due first
  schedule.wake(conv(100, "B"), "healthy", 50);
  schedule.wake(conv(101, "B"), "healthy", 60);
  const slots: Slots = (partner) => (partner === "slow" ? 3 : 8);
  const first = schedule.lease(100, 4, slots, "w", 10_000);
  assert.deepEqual(
    names(first).sort(),
    [...names([conv(0, "A"), conv(1, "A")]), ...names([conv(100, "B"), conv(101, "B")])].sort(),
    "two each: the healthy partner is not starved by the older backlog",
  );
  assert.deepEqual(names(schedule.lease(100, 10, slots, "w", 10_000)), names([conv(2, "A")]), "the cap of 3");
  assert.equal(schedule.held("slow", 100), 3);
  assert.deepEqual(schedule.lease(100, 10, slots, "w", 10_000), [], "nothing more until a release");
  schedule.release(conv(0, "A"), "w", null);
  assert.deepEqual(names(schedule.lease(100, 10, slots, "w", 10_000)), names([conv(3, "A")]));
  // A lease that ran out no longer counts against the cap.
  assert.equal(schedule.held("slow", 10_000), 0);
});

test("a partner with no slot (paused) is skipped, and idle workers do not wake for its due conversations", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1, "A"), "paused", 0);
  schedule.wake(conv(2, "B"), "healthy", 500);
  const slots: Slots = (partner) => (partner === "paused" ? 0 : 4);
  assert.equal(schedule.nextDueAt(100, slots), 500, "not 0: that would make idle workers spin");
  assert.deepEqual(schedule.lease(100, 10, slots, "w", 1_000), []);
  assert.deepEqual(names(schedule.lease(500, 10, slots, "w", 1_000)), names([conv(2, "B")]));
  assert.equal(schedule.nextDueAt(500, slots), 1_000, "the healthy lease's end");
  // Probing: one slot.
  assert.deepEqual(names(schedule.lease(600, 10, () => 1, "w", 2_000)), names([conv(1, "A")]));
});

test("a partner whose slots are all held counts only from its first lease's end", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), "p", 0);
  schedule.wake(conv(2), "p", 0);
  schedule.lease(0, 1, () => 1, "w", 5_000);
  assert.equal(
    schedule.nextDueAt(10, () => 1),
    5_000,
    "conversation 2 is due but no slot is free",
  );
  assert.equal(
    schedule.nextDueAt(10, () => 2),
    0,
    "with a free slot it is due now",
  );
});

test("a conversation whose channel moved to another partner moves with it, lease and all", () => {
  const schedule = new ConversationSchedule();
  schedule.wake(conv(1), "old", 0);
  schedule.lease(0, 1, ANY, "w", 1_000);
  schedule.wake(conv(1), "new", 10);
  assert.equal(schedule.held("old", 10), 0);
  assert.equal(schedule.held("new", 10), 1);
  schedule.release(conv(1), "w", 20);
  assert.deepEqual(schedule.lease(20, 5, (p) => (p === "new" ? 1 : 0), "w", 1_000).length, 1);
});
