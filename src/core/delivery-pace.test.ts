// Unit tests for the delivery pace: back off when intake's commits slow down, come back when they are fast.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeliveryPace } from "./delivery-pace.ts";

const options = { max: 64, targetMs: 50, windowMs: 100 };

/** Runs one window with these commit times (and outbox waits); answers the limit after it. */
function window(pace: DeliveryPace, at: number, commits: number[], waits: number[] = []) {
  for (const ms of commits) pace.observeCommit(ms);
  for (const ms of waits) pace.observeWait(ms);
  return pace.limit(at);
}

test("slow commits halve the limit each window, down to one delivery and no further", () => {
  const pace = new DeliveryPace(options);
  assert.equal(pace.limit(0), 64);
  const slow = Array.from({ length: 20 }, () => 80);
  const limits = [100, 200, 300, 400, 500, 600, 700, 800].map((at) => window(pace, at, slow));
  assert.deepEqual(limits, [32, 16, 8, 4, 2, 1, 1, 1]);
});

test("fast commits bring it back an eighth at a time, or doubling while deliveries wait long", () => {
  const pace = new DeliveryPace(options);
  window(pace, 100, [80, 90]);
  window(pace, 200, [80, 90]);
  assert.equal(pace.limit(250), 16, "unchanged within a window");
  assert.equal(window(pace, 300, [5, 6]), 24);
  assert.equal(window(pace, 400, [5], [500]), 48, "the outbox waits: doubling");
  assert.equal(window(pace, 500, []), 56, "no intake at all is fast intake");
  assert.equal(window(pace, 600, []), 64);
  assert.equal(window(pace, 700, []), 64, "never above the maximum");
});

test("the 90th percentile decides: a few slow commits among fast ones do not back off", () => {
  const pace = new DeliveryPace(options);
  const mostlyFast = [...Array.from({ length: 19 }, () => 5), 500];
  assert.equal(window(pace, 100, mostlyFast), 64);
  const tenthSlow = [...Array.from({ length: 8 }, () => 5), 500, 500];
  assert.equal(window(pace, 200, tenthSlow), 32);
});
