// Unit tests for PartnerHealth: pause after consecutive failures, one probe at a time, doubling pauses, resume.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PartnerHealth } from "./partner-health.ts";

const policy = { failuresToPause: 3, initialPauseMs: 1_000, maxPauseMs: 5_000 };

test("a healthy partner is always admitted; failures below the threshold do not pause it", () => {
  const health = new PartnerHealth(policy);
  assert.deepEqual(health.admit(0), { send: true, probe: false });
  assert.equal(health.record(false, 0), null);
  assert.equal(health.record(false, 1), null);
  assert.equal(health.record(true, 2), null, "a success resets the count");
  assert.equal(health.record(false, 3), null);
  assert.equal(health.record(false, 4), null);
  assert.equal(health.paused, false);
});

test("the threshold pauses; after the pause one probe goes, others wait; a failed probe doubles the pause", () => {
  const health = new PartnerHealth(policy);
  health.record(false, 0);
  health.record(false, 0);
  assert.equal(health.record(false, 10), 1_010);
  assert.equal(health.paused, true);
  assert.deepEqual(health.admit(500), { send: false, retryAt: 1_010 });
  assert.deepEqual(health.admit(1_010), { send: true, probe: true });
  assert.deepEqual(health.admit(1_011), { send: false, retryAt: 2_011 }, "one probe at a time");
  assert.equal(health.record(false, 1_100), 3_100, "2 s after a failed probe");
  assert.deepEqual(health.admit(3_100), { send: true, probe: true });
  assert.equal(health.record(false, 3_200), 7_200, "4 s");
  health.admit(7_200);
  assert.equal(health.record(false, 7_300), 12_300, "capped at 5 s");
});

test("a successful probe resumes normal sending", () => {
  const health = new PartnerHealth(policy);
  for (let i = 0; i < 3; i++) health.record(false, 0);
  assert.deepEqual(health.admit(1_000), { send: true, probe: true });
  assert.equal(health.record(true, 1_001), null);
  assert.equal(health.paused, false);
  assert.deepEqual(health.admit(1_002), { send: true, probe: false });
  assert.deepEqual(health.admit(1_002), { send: true, probe: false });
});
