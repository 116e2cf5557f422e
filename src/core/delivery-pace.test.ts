// Unit tests for the delivery pace: back off when intake's commits slow down on a busy event loop, come back when
// they are fast.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeliveryPace } from "./delivery-pace.ts";

/** A pace whose event loop is as busy as `busy.now` says. */
function pace() {
  const busy = { now: 1 };
  return { busy, pace: new DeliveryPace({ max: 64, targetMs: 25, windowMs: 100, loopBusy: () => busy.now }) };
}

/** Runs one window with these commit times (and outbox waits); answers the limit after it. */
function window(p: DeliveryPace, at: number, commits: number[], waits: number[] = []) {
  for (const ms of commits) p.observeCommit(ms);
  for (const ms of waits) p.observeWait(ms);
  return p.limit(at);
}

const slow = Array.from({ length: 20 }, () => 80);

test("slow commits on a busy event loop halve the limit each window, down to one delivery and no further", () => {
  const { pace: p } = pace();
  assert.equal(p.limit(0), 64);
  const limits = [100, 200, 300, 400, 500, 600, 700, 800].map((at) => window(p, at, slow));
  assert.deepEqual(limits, [32, 16, 8, 4, 2, 1, 1, 1]);
});

test("slow commits on an idle loop (the disk's doing) keep the limit", () => {
  const { pace: p, busy } = pace();
  window(p, 100, slow);
  busy.now = 0.4;
  assert.equal(window(p, 200, slow), 32);
  assert.equal(window(p, 300, slow), 32);
});

test("fast commits bring it back an eighth at a time, or doubling while deliveries wait long", () => {
  const { pace: p } = pace();
  window(p, 100, slow);
  window(p, 200, slow);
  assert.equal(p.limit(250), 16, "unchanged within a window");
  assert.equal(window(p, 300, [5, 6]), 24);
  assert.equal(window(p, 400, [5], [500]), 48, "the outbox waits: doubling");
  assert.equal(window(p, 500, []), 56, "no intake at all is fast intake");
  assert.equal(window(p, 600, []), 64);
  assert.equal(window(p, 700, []), 64, "never above the maximum");
});

test("the 90th percentile decides: a few slow commits among fast ones do not back off", () => {
  const { pace: p } = pace();
  const mostlyFast = [...Array.from({ length: 19 }, () => 5), 500];
  assert.equal(window(p, 100, mostlyFast), 64);
  const tenthSlow = [...Array.from({ length: 8 }, () => 5), 500, 500];
  assert.equal(window(p, 200, tenthSlow), 32);
});
