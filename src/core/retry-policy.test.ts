// Unit tests for delivery backoff (1 s doubling, 10 min cap, equal jitter) and the 24 h dead line (SPEC §4).
import assert from "node:assert/strict";
import { test } from "node:test";
import { afterFailure, DEFAULT_RETRY_POLICY, retryDelay } from "./retry-policy.ts";

const low = () => 0;
const high = () => 1;
const middle = () => 0.5;

const DELAY_CASES: Array<{ attempts: number; ceiling: number }> = [
  { attempts: 1, ceiling: 1_000 },
  { attempts: 2, ceiling: 2_000 },
  { attempts: 3, ceiling: 4_000 },
  { attempts: 4, ceiling: 8_000 },
  { attempts: 8, ceiling: 128_000 },
  { attempts: 10, ceiling: 512_000 },
  { attempts: 11, ceiling: 600_000 }, // 1,024,000 capped at 10 min
  { attempts: 12, ceiling: 600_000 },
  { attempts: 50, ceiling: 600_000 },
  { attempts: 10_000, ceiling: 600_000 },
  { attempts: 0, ceiling: 1_000 },
];

for (const c of DELAY_CASES) {
  test(`retryDelay after ${c.attempts} failure(s) is within [${c.ceiling / 2}, ${c.ceiling}] ms`, () => {
    assert.equal(retryDelay(c.attempts, DEFAULT_RETRY_POLICY, low), c.ceiling / 2);
    assert.equal(retryDelay(c.attempts, DEFAULT_RETRY_POLICY, high), c.ceiling);
    assert.equal(retryDelay(c.attempts, DEFAULT_RETRY_POLICY, middle), (c.ceiling * 3) / 4);
  });
}

test("retryDelay with real randomness stays within [half, full] and is not constant", () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const delay = retryDelay(5, DEFAULT_RETRY_POLICY);
    assert.ok(delay >= 8_000 && delay <= 16_000, `${delay}`);
    seen.add(delay);
  }
  assert.ok(seen.size > 1);
});

test("retryDelay never exceeds the cap and is always finite", () => {
  for (let attempts = 0; attempts < 2_000; attempts += 7) {
    const delay = retryDelay(attempts, DEFAULT_RETRY_POLICY, high);
    assert.ok(Number.isFinite(delay) && delay <= DEFAULT_RETRY_POLICY.maxDelayMs, `${attempts}: ${delay}`);
  }
});

test("retryDelay follows a configured policy", () => {
  const policy = { initialDelayMs: 250, maxDelayMs: 3_000, maxAgeMs: 60_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((attempts) => retryDelay(attempts, policy, high)),
    [250, 500, 1_000, 2_000, 3_000, 3_000],
  );
});

const CREATED = 1_700_000_000_000;
const DAY = 24 * 60 * 60_000;

const AFTER_CASES: Array<{
  name: string;
  attempts: number;
  now: number;
  random: () => number;
  expected: ReturnType<typeof afterFailure>;
}> = [
  {
    name: "first failure",
    attempts: 1,
    now: CREATED + 10,
    random: high,
    expected: { state: "retrying", nextAttemptAt: CREATED + 1_010 },
  },
  {
    name: "first failure, low jitter",
    attempts: 1,
    now: CREATED + 10,
    random: low,
    expected: { state: "retrying", nextAttemptAt: CREATED + 510 },
  },
  {
    name: "fifth failure",
    attempts: 5,
    now: CREATED + 60_000,
    random: high,
    expected: { state: "retrying", nextAttemptAt: CREATED + 76_000 },
  },
  {
    name: "a delay past the deadline is clipped to the deadline",
    attempts: 20,
    now: CREATED + DAY - 1_000,
    random: high,
    expected: { state: "retrying", nextAttemptAt: CREATED + DAY },
  },
  {
    name: "one ms before the deadline",
    attempts: 20,
    now: CREATED + DAY - 1,
    random: low,
    expected: { state: "retrying", nextAttemptAt: CREATED + DAY },
  },
  {
    name: "exactly at the deadline",
    attempts: 20,
    now: CREATED + DAY,
    random: high,
    expected: { state: "dead" },
  },
  {
    name: "past the deadline",
    attempts: 3,
    now: CREATED + DAY + 5_000,
    random: high,
    expected: { state: "dead" },
  },
];

for (const c of AFTER_CASES) {
  test(`afterFailure: ${c.name}`, () => {
    assert.deepEqual(
      afterFailure({ attempts: c.attempts, createdAt: CREATED }, c.now, DEFAULT_RETRY_POLICY, c.random),
      c.expected,
    );
  });
}

test("afterFailure: a delivery failing forever retries until createdAt + maxAge, then is dead", () => {
  let now = CREATED;
  let attempts = 0;
  let tries = 0;
  for (;;) {
    attempts++;
    const next = afterFailure({ attempts, createdAt: CREATED }, now, DEFAULT_RETRY_POLICY, high);
    if (next.state === "dead") break;
    assert.ok(next.nextAttemptAt > now, "time moves forward");
    assert.ok(next.nextAttemptAt <= CREATED + DAY, "never scheduled past the deadline");
    now = next.nextAttemptAt;
    tries++;
  }
  assert.equal(now, CREATED + DAY, "the last try is made right at the deadline");
  // 10 doubling retries (1+2+…+512 s = 1,023 s), then every 10 min until the day is over (the last one clipped).
  assert.equal(tries, 10 + Math.ceil((86_400 - 1_023) / 600));
});
