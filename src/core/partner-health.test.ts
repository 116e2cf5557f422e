// Unit tests for PartnerHealth: one pause per outage, one probe at a time, a pause doubling only per failed probe.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PartnerHealth } from "./partner-health.ts";

const policy = { failuresToPause: 3, initialPauseMs: 1_000, maxPauseMs: 5_000 };

/** Fails it `n` times at `at`, as attempts in flight together would. */
function fail(health: PartnerHealth, n: number, at: number) {
  return Array.from({ length: n }, () => health.record(false, at, false));
}

test("a healthy partner is always admitted; failures below the threshold do not pause it", () => {
  const health = new PartnerHealth(policy);
  assert.deepEqual(health.admit(0), { send: true, probe: false });
  assert.deepEqual(fail(health, 2, 0), [null, null]);
  assert.equal(health.record(true, 2, false), null, "a success resets the count");
  assert.deepEqual(fail(health, 2, 3), [null, null]);
  assert.deepEqual(health.state(4), { state: "delivering" });
  assert.equal(health.slots(4, 32), 32);
});

test("the threshold pauses once: failures of attempts already in flight do not lengthen the pause", () => {
  const health = new PartnerHealth(policy);
  const results = fail(health, 40, 10); // 40 attempts that were in flight fail within the same moment
  assert.deepEqual(results[2], { pausedUntil: 1_010 });
  assert.ok(
    results.slice(3).every((r) => r === null),
    "one pause, not 5 s → 600 s within milliseconds",
  );
  assert.deepEqual(health.state(500), { state: "paused", until: 1_010 });
  assert.equal(health.slots(500, 32), 0);
  assert.deepEqual(health.admit(500), { send: false });
});

test("after the pause one probe goes and the others wait; only a failed probe doubles the pause", () => {
  const health = new PartnerHealth(policy);
  fail(health, 3, 10);
  assert.deepEqual(health.state(1_010), { state: "probing" });
  assert.equal(health.slots(1_010, 32), 1, "one conversation: the probe's");
  assert.deepEqual(health.admit(1_010), { send: true, probe: true });
  assert.deepEqual(health.admit(1_011), { send: false }, "one probe at a time");
  assert.equal(
    health.record(false, 1_050, false),
    null,
    "a late failure of an older attempt changes nothing",
  );
  assert.deepEqual(health.record(false, 1_100, true), { pausedUntil: 3_100 }, "2 s after a failed probe");
  assert.deepEqual(health.admit(3_100), { send: true, probe: true });
  assert.deepEqual(health.record(false, 3_200, true), { pausedUntil: 7_200 }, "4 s");
  health.admit(7_200);
  assert.deepEqual(health.record(false, 7_300, true), { pausedUntil: 12_300 }, "capped at 5 s");
});

test("a successful probe, or any success, resumes everything at once", () => {
  const health = new PartnerHealth(policy);
  fail(health, 3, 0);
  assert.deepEqual(health.admit(1_000), { send: true, probe: true });
  assert.deepEqual(health.record(true, 1_001, true), { resumed: true });
  assert.deepEqual(health.state(1_002), { state: "delivering" });
  assert.equal(health.slots(1_002, 32), 32);
  assert.deepEqual(health.admit(1_002), { send: true, probe: false });

  fail(health, 3, 2_000);
  assert.deepEqual(
    health.record(true, 2_001, false),
    { resumed: true },
    "an attempt from before the pause got through",
  );
  assert.deepEqual(health.state(2_002), { state: "delivering" });
  assert.deepEqual(fail(health, 2, 2_003), [null, null], "the count starts over");
});

test("a probe that never went out (talkgate failed, not the partner) lets the next attempt probe", () => {
  const health = new PartnerHealth(policy);
  fail(health, 3, 0);
  assert.deepEqual(health.admit(1_000), { send: true, probe: true });
  assert.deepEqual(health.admit(1_000), { send: false });
  health.abandonProbe();
  assert.deepEqual(health.admit(1_001), { send: true, probe: true });
});
