// Unit tests for IntakeLoad: busy from the threshold on, and for the hold time after it was last reached.
import assert from "node:assert/strict";
import { test } from "node:test";
import { IntakeLoad } from "./intake-load.ts";

test("busy once `busyAt` webhooks wait together, and for `holdMs` after, though the count dips", () => {
  const clock = { t: 1_000, now: () => clock.t };
  const load = new IntakeLoad({ busyAt: 3, holdMs: 500, clock });
  load.started();
  load.started();
  assert.deepEqual([load.waiting, load.busy], [2, false], "two waiting is not busy");
  load.started();
  assert.deepEqual([load.waiting, load.busy], [3, true]);
  for (let i = 0; i < 3; i++) load.ended();
  assert.deepEqual([load.waiting, load.busy], [0, true], "a commit answered them all: still busy");
  clock.t += 499;
  assert.equal(load.busy, true);
  clock.t += 1;
  assert.equal(load.busy, false, "quiet for holdMs");
});
