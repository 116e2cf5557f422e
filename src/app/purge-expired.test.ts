import assert from "node:assert/strict";
import { test } from "node:test";
import { PurgeExpired } from "./purge-expired.ts";
import type { PurgeBatch, PurgeRequest } from "./store.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 3);
const OPTIONS = { eventsDays: 30, mediaDays: 7, auditDays: 365, intervalMs: 3_600_000, batchSize: 2 };
const silent = { info() {}, error() {} };

/** A store whose batches are given: it records what it was asked. */
function storeOf(batches: Array<Partial<PurgeBatch> | Error>) {
  const asked: PurgeRequest[] = [];
  return {
    asked,
    async purgeBatch(request: PurgeRequest): Promise<PurgeBatch> {
      asked.push(request);
      const next = batches.shift() ?? {};
      if (next instanceof Error) throw next;
      return { events: 0, attachments: 0, sends: 0, audit: 0, files: [], next: 0, done: true, ...next };
    },
  };
}

test("a purge asks batch after batch, from where the last one ended, with each kind's cutoff, until done", async () => {
  const store = storeOf([
    { events: 2, files: ["a.jpg"], next: 7, done: false },
    { events: 1, attachments: 2, sends: 1, files: ["b.jpg", "c.jpg"], next: 9, done: false },
    { audit: 1, next: 9, done: true },
  ]);
  const removed: string[] = [];
  const purged: string[] = [];
  const purge = new PurgeExpired(
    {
      store,
      files: { remove: async (path) => void removed.push(path) },
      clock: { now: () => NOW },
      logger: silent,
      onPurged: (kind, count) => purged.push(`${kind} ${count}`),
    },
    OPTIONS,
  );
  assert.deepEqual(await purge.run(), { events: 3, attachments: 2, sends: 1, audit: 1 });
  assert.deepEqual(
    store.asked.map((r) => r.after),
    [0, 7, 9],
  );
  assert.deepEqual(store.asked[0], {
    eventsBefore: NOW - 30 * DAY,
    mediaBefore: NOW - 7 * DAY,
    auditBefore: NOW - 365 * DAY,
    after: 0,
    limit: 2,
    now: NOW,
  });
  assert.deepEqual(removed, ["a.jpg", "b.jpg", "c.jpg"]);
  assert.deepEqual(purged, ["events 2", "events 1", "attachments 2", "sends 1", "audit 1"]);
});

test("a failed batch ends the purge with what it did, logged; a file that cannot be removed does not stop it", async () => {
  const errors: string[] = [];
  const purge = new PurgeExpired(
    {
      store: storeOf([
        { events: 1, files: ["x.jpg"], next: 1, done: false },
        new Error("database is locked"),
      ]),
      files: { remove: async () => Promise.reject(new Error("EACCES")) },
      clock: { now: () => NOW },
      logger: { info() {}, error: (...args: unknown[]) => void errors.push(String(args[1])) },
    },
    OPTIONS,
  );
  assert.deepEqual(await purge.run(), { events: 1, attachments: 0, sends: 0, audit: 0 });
  assert.deepEqual(errors, ["retention:remove:failed", "retention:purge:failed"]);
});

test("close ends a purge under way after its current batch", async () => {
  let closing: Promise<void> | undefined;
  const asked: number[] = [];
  const purge: PurgeExpired = new PurgeExpired(
    {
      store: {
        async purgeBatch(request) {
          asked.push(request.after);
          closing ??= purge.close();
          return {
            events: 1,
            attachments: 0,
            sends: 0,
            audit: 0,
            files: [],
            next: request.after + 1,
            done: false,
          };
        },
      },
      files: { remove: async () => {} },
      clock: { now: () => NOW },
      logger: silent,
    },
    OPTIONS,
  );
  purge.start();
  await new Promise((resolve) => setImmediate(resolve));
  await closing;
  assert.deepEqual(asked, [0], "no batch after close");
});

test("a purge still running when the next is due is not run again beside it", async (t) => {
  t.mock.timers.enable({ apis: ["setInterval"] });
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let runs = 0;
  const purge = new PurgeExpired(
    {
      store: {
        async purgeBatch() {
          runs++;
          await held;
          return { events: 0, attachments: 0, sends: 0, audit: 0, files: [], next: 0, done: true };
        },
      },
      files: { remove: async () => {} },
      clock: { now: () => NOW },
      logger: silent,
    },
    OPTIONS,
  );
  purge.start();
  t.mock.timers.tick(OPTIONS.intervalMs * 3);
  release();
  await purge.close();
  assert.equal(runs, 1, "the three intervals that passed during one slow purge started none after it");
});
