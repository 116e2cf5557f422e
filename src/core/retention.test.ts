import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type AgedEvent,
  expiredEvents,
  oldestCounterDay,
  purgeBatchOf,
  retentionCutoffs,
} from "./retention.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 3);
const event = (id: number, daysOld: number, extra: Partial<AgedEvent> = {}): AgedEvent => ({
  id,
  receivedAt: NOW - daysOld * DAY,
  delivery: "delivered",
  mediaState: null,
  path: null,
  ...extra,
});

test("cutoffs: each kind its own number of days before now", () => {
  assert.deepEqual(retentionCutoffs(NOW, { eventsDays: 30, mediaDays: 7, auditDays: 365 }), {
    eventsBefore: NOW - 30 * DAY,
    mediaBefore: NOW - 7 * DAY,
    auditBefore: NOW - 365 * DAY,
  });
});

test("old events go with their stored files; waiting ones stay; the first young one ends the purge", () => {
  const before = NOW - 30 * DAY;
  const batch = [
    event(1, 40, { mediaState: "stored", path: "a/1.jpg" }),
    event(2, 39, { delivery: "retrying" }),
    event(3, 38, { delivery: "dead", mediaState: "gone", path: "a/3.jpg" }),
    event(4, 37, { delivery: null }),
    event(5, 35, { delivery: "pending" }),
    event(6, 29),
    event(7, 40),
  ];
  assert.deepEqual(expiredEvents(batch, before, 0, 10), {
    ids: [1, 3, 4],
    newest: NOW - 37 * DAY,
    files: ["a/1.jpg"],
    next: 5,
    done: true,
  });
});

test("a full batch of old events asks for the next one, after its last id; a short one is the end", () => {
  const before = NOW - 30 * DAY;
  const full = [event(10, 50), event(11, 50, { delivery: "pending" }), event(12, 50)];
  const newest = NOW - 50 * DAY;
  assert.deepEqual(expiredEvents(full, before, 9, 3), {
    ids: [10, 12],
    newest,
    files: [],
    next: 12,
    done: false,
  });
  assert.deepEqual(expiredEvents(full.slice(0, 2), before, 9, 3), {
    ids: [10],
    newest,
    files: [],
    next: 11,
    done: true,
  });
  assert.deepEqual(expiredEvents([], before, 12, 3), {
    ids: [],
    newest: null,
    files: [],
    next: 12,
    done: true,
  });
});

test("a batch is the last when its events are done and no other kind filled the limit; files of both kinds", () => {
  const expired = { ids: [1, 2], newest: NOW, files: ["a.jpg"], next: 2, done: true };
  const deleted = { attachments: [{ path: "b.jpg" }, { path: null }], sends: 1, counters: 0, audit: 0 };
  assert.deepEqual(purgeBatchOf(expired, deleted, 3), {
    events: 2,
    attachments: 2,
    sends: 1,
    audit: 0,
    files: ["a.jpg", "b.jpg"],
    next: 2,
    done: true,
  });
  for (const full of [{ sends: 3 }, { counters: 3 }, { audit: 3 }])
    assert.equal(purgeBatchOf(expired, { ...deleted, ...full }, 3).done, false, JSON.stringify(full));
  assert.equal(purgeBatchOf({ ...expired, done: false }, deleted, 3).done, false);
});

test("serial counters are kept from the UTC day of the events cutoff on", () => {
  assert.equal(oldestCounterDay(Date.UTC(2026, 10, 3, 23, 59)), "2026-11-03");
});
