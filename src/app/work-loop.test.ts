// Unit tests for WorkLoop with fake claim/process/nextDueAt: the concurrency bound, wake-ups, stop, failures, sleeps.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { pino } from "pino";
import type { Clock } from "./ports.ts";
import { WorkLoop } from "./work-loop.ts";

/** A promise with its resolve and reject at hand. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Polls `condition` until it holds, failing after `ms` (generous: these are correctness checks, not timing ones). */
async function eventually(condition: () => boolean, what: string, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await delay(5);
  }
}

/** A silent pino logger that also records the messages of its error lines. */
function recordingLogger() {
  const errors: string[] = [];
  const logger = pino(
    { level: "error" },
    { write: (line: string) => errors.push((JSON.parse(line) as { msg: string }).msg) },
  );
  return { logger, errors };
}

/** Every test ends well within this, or fails instead of hanging (a loop that never stops, say). */
const LIMIT = { timeout: 5_000 };

const clock: Clock & { t: number } = { t: 1_700_000_000_000, now: () => clock.t };

/** A loop over an in-memory queue of numbers; each item is processed until the test releases it. */
function queueLoop(options: { concurrency: number; pollMs: number; items?: number; limit?: () => number }) {
  const queue = Array.from({ length: options.items ?? 0 }, (_, i) => i);
  const releases = new Map<number, () => void>();
  const limits: number[] = [];
  const done: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const loop = new WorkLoop<number>({
    name: "test",
    concurrency: options.concurrency,
    ...(options.limit && { limit: options.limit }),
    pollMs: options.pollMs,
    clock,
    logger: pino({ level: "silent" }),
    claim: async (limit) => {
      limits.push(limit);
      return queue.splice(0, limit);
    },
    process: async (item) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const gate = deferred();
      releases.set(item, gate.resolve);
      await gate.promise;
      inFlight--;
      done.push(item);
    },
    nextDueAt: async () => null,
  });
  return {
    loop,
    queue,
    releases,
    limits,
    done,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    /** Lets every item now in flight finish. */
    releaseAll() {
      for (const [item, release] of releases) {
        releases.delete(item);
        release();
      }
    },
  };
}

test(
  "never more than `concurrency` items are in flight, and claim asks only for the free slots",
  LIMIT,
  async () => {
    const q = queueLoop({ concurrency: 3, pollMs: 60_000, items: 10 });
    q.loop.start();
    try {
      await eventually(() => q.inFlight() === 3, "three items in flight");
      await delay(50);
      assert.equal(q.inFlight(), 3, "no fourth item while three are in flight");
      // Finish one: exactly one more is claimed.
      const first = [...q.releases.keys()][0] as number;
      q.releases.get(first)?.();
      q.releases.delete(first);
      await eventually(() => q.done.length === 1 && q.inFlight() === 3, "a free slot filled again");
      await eventually(() => {
        q.releaseAll();
        return q.done.length === 10;
      }, "every item done");
      assert.equal(q.maxInFlight(), 3);
      assert.deepEqual(
        q.done.toSorted((a, b) => a - b),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
      assert.ok(
        q.limits.every((limit) => limit >= 1 && limit <= 3),
        `claim limits ${q.limits.join(",")}`,
      );
      assert.equal(q.limits[0], 3, "the first claim asks for every slot");
    } finally {
      q.releaseAll();
      await q.loop.stop();
    }
  },
);

test("a lower limit for now holds new claims down to it until it rises again", LIMIT, async () => {
  let limit = 1;
  const q = queueLoop({ concurrency: 4, pollMs: 60_000, items: 10, limit: () => limit });
  q.loop.start();
  try {
    await eventually(() => q.inFlight() === 1, "one item in flight");
    await delay(50);
    assert.equal(q.inFlight(), 1, "no second item while the limit is 1");
    limit = 4;
    q.loop.wake();
    await eventually(() => q.inFlight() === 4, "up to concurrency once the limit rose");
    assert.equal(q.maxInFlight(), 4);
  } finally {
    q.releaseAll();
    await q.loop.stop();
  }
});

test("an item finishing wakes a full loop at once, without waiting pollMs", LIMIT, async () => {
  const q = queueLoop({ concurrency: 1, pollMs: 60_000, items: 3 });
  q.loop.start();
  try {
    for (let n = 1; n <= 3; n++) {
      await eventually(() => q.releases.size === 1, `item ${n} in flight`);
      q.releaseAll();
      await eventually(() => q.done.length === n, `item ${n} done`);
    }
    assert.deepEqual(q.done, [0, 1, 2]);
  } finally {
    q.releaseAll();
    await q.loop.stop();
  }
});

test("wake() during an idle sleep claims at once", LIMIT, async () => {
  const q = queueLoop({ concurrency: 2, pollMs: 60_000 });
  q.loop.start();
  try {
    await eventually(() => q.limits.length === 1, "the first (empty) claim");
    await delay(30);
    assert.equal(q.limits.length, 1, "asleep: no claim before pollMs");
    q.queue.push(7);
    q.loop.wake();
    await eventually(() => q.releases.has(7), "item 7 claimed after wake()", 1_000);
  } finally {
    q.releaseAll();
    await q.loop.stop();
  }
});

test(
  "a wake() while claim() is pending is not lost: the loop claims again without waiting pollMs",
  LIMIT,
  async () => {
    const claims: Array<ReturnType<typeof deferred<number[]>>> = [];
    const processed: number[] = [];
    const loop = new WorkLoop<number>({
      name: "test",
      concurrency: 4,
      pollMs: 60_000,
      clock,
      logger: pino({ level: "silent" }),
      claim: () => {
        const claim = deferred<number[]>();
        claims.push(claim);
        return claim.promise;
      },
      process: async (item) => {
        processed.push(item);
      },
      nextDueAt: async () => null,
    });
    loop.start();
    try {
      await eventually(() => claims.length === 1, "first claim started");
      // New work is committed (and wake() called) after the claim's query ran but before it returned.
      loop.wake();
      claims[0]?.resolve([]);
      await eventually(() => claims.length === 2, "a second claim right after the first", 1_000);
      claims[1]?.resolve([5]);
      await eventually(() => processed.includes(5), "item 5 processed");
    } finally {
      for (const claim of claims) claim.resolve([]);
      await loop.stop();
    }
  },
);

test("a wake() while nextDueAt() is pending is not lost either", LIMIT, async () => {
  let claims = 0;
  const nextDue: Array<ReturnType<typeof deferred<number | null>>> = [];
  const loop = new WorkLoop<number>({
    name: "test",
    concurrency: 1,
    pollMs: 60_000,
    clock,
    logger: pino({ level: "silent" }),
    claim: async () => {
      claims++;
      return [];
    },
    process: async () => {},
    nextDueAt: () => {
      const next = deferred<number | null>();
      nextDue.push(next);
      return next.promise;
    },
  });
  loop.start();
  try {
    await eventually(() => nextDue.length === 1, "idle delay being worked out");
    loop.wake();
    nextDue[0]?.resolve(null);
    await eventually(() => claims === 2, "claimed again at once", 1_000);
  } finally {
    for (const next of nextDue) next.resolve(null);
    await loop.stop();
  }
});

test("stop() waits for the items in flight, and no claim happens after it", LIMIT, async () => {
  const q = queueLoop({ concurrency: 2, pollMs: 20, items: 5 });
  q.loop.start();
  await eventually(() => q.inFlight() === 2, "two items in flight");
  let stopped = false;
  const stopping = q.loop.stop().then(() => {
    stopped = true;
  });
  assert.equal(q.loop.running, false, "running turns false at once");
  await delay(50);
  assert.equal(stopped, false, "stop() still waits for the two items");
  const claimsAtStop = q.limits.length;
  q.releaseAll();
  await stopping;
  assert.equal(q.done.length, 2);
  await delay(80); // several pollMs
  assert.equal(q.limits.length, claimsAtStop, "no claim after stop()");
  assert.deepEqual(q.queue, [2, 3, 4], "the rest stays unclaimed");
});

test("stop() of an idle loop returns promptly although pollMs is long", LIMIT, async () => {
  const q = queueLoop({ concurrency: 1, pollMs: 60_000 });
  q.loop.start();
  await eventually(() => q.limits.length === 1, "first claim");
  const started = Date.now();
  await q.loop.stop();
  assert.ok(Date.now() - started < 1_000, "stop() ended the sleep");
  assert.equal(q.limits.length, 1);
});

test(
  "stop() while claim() is pending: the items it returns are processed, then nothing more is claimed",
  LIMIT,
  async () => {
    const claims: Array<ReturnType<typeof deferred<number[]>>> = [];
    const processed: number[] = [];
    const loop = new WorkLoop<number>({
      name: "test",
      concurrency: 2,
      pollMs: 10,
      clock,
      logger: pino({ level: "silent" }),
      claim: () => {
        const claim = deferred<number[]>();
        claims.push(claim);
        return claim.promise;
      },
      process: async (item) => {
        await delay(20);
        processed.push(item);
      },
      nextDueAt: async () => null,
    });
    loop.start();
    await eventually(() => claims.length === 1, "claim pending");
    const stopping = loop.stop();
    claims[0]?.resolve([1]);
    await stopping;
    assert.deepEqual(processed, [1], "an item already leased is not dropped by stop()");
    await delay(50);
    assert.equal(claims.length, 1);
  },
);

test("a claim() that throws is logged and the loop keeps claiming", LIMIT, async () => {
  const { logger, errors } = recordingLogger();
  let claims = 0;
  const processed: number[] = [];
  const loop = new WorkLoop<number>({
    name: "media",
    concurrency: 2,
    pollMs: 10,
    clock,
    logger,
    claim: async () => {
      claims++;
      if (claims <= 2) throw new Error("database is locked");
      return claims === 3 ? [3] : [];
    },
    process: async (item) => {
      processed.push(item);
    },
    nextDueAt: async () => null,
  });
  loop.start();
  try {
    await eventually(() => processed.includes(3), "the third claim's item processed");
    assert.deepEqual(errors.slice(0, 2), ["media:claim:failed", "media:claim:failed"]);
  } finally {
    await loop.stop();
  }
});

test("a process() that rejects is logged and does not stop the loop or leak its slot", LIMIT, async () => {
  const { logger, errors } = recordingLogger();
  const queue = [1, 2, 3, 4];
  const processed: number[] = [];
  const loop = new WorkLoop<number>({
    name: "delivery",
    concurrency: 1,
    pollMs: 10,
    clock,
    logger,
    claim: async (limit) => queue.splice(0, limit),
    process: async (item) => {
      if (item % 2 === 1) throw new Error(`boom ${item}`);
      processed.push(item);
    },
    nextDueAt: async () => null,
  });
  loop.start();
  try {
    await eventually(() => processed.includes(4), "every item tried");
    assert.deepEqual(processed, [2, 4]);
    assert.deepEqual(errors, ["delivery:process:failed", "delivery:process:failed"]);
  } finally {
    await loop.stop();
  }
});

test("an idle loop sleeps only until nextDueAt, not a whole pollMs", LIMIT, async () => {
  let claims = 0;
  const loop = new WorkLoop<number>({
    name: "test",
    concurrency: 1,
    pollMs: 60_000,
    clock,
    logger: pino({ level: "silent" }),
    claim: async () => {
      claims++;
      return [];
    },
    process: async () => {},
    // Due 100 ms from the (frozen) clock's now; once claimed twice, nothing more is due.
    nextDueAt: async () => (claims < 2 ? clock.now() + 100 : null),
  });
  loop.start();
  try {
    await eventually(() => claims === 2, "claimed again at nextDueAt", 1_500);
    await delay(60);
    assert.equal(claims, 2, "then sleeps the long poll");
  } finally {
    await loop.stop();
  }
});

test(
  "an idle loop with nothing due, or a failing nextDueAt, sleeps pollMs between claims",
  LIMIT,
  async () => {
    for (const nextDueAt of [async () => null, async () => Promise.reject(new Error("down"))]) {
      let claims = 0;
      const loop = new WorkLoop<number>({
        name: "test",
        concurrency: 1,
        pollMs: 40,
        clock,
        logger: pino({ level: "silent" }),
        claim: async () => {
          claims++;
          return [];
        },
        process: async () => {},
        nextDueAt,
      });
      loop.start();
      try {
        await eventually(() => claims >= 3, "claims repeat every pollMs");
        // Far fewer claims than a spinning loop would make in this time.
        await delay(100);
        assert.ok(claims < 15, `${claims} claims in about 180 ms with pollMs 40`);
      } finally {
        await loop.stop();
      }
    }
  },
);

test("start() twice runs one loop", LIMIT, async () => {
  let claims = 0;
  const loop = new WorkLoop<number>({
    name: "test",
    concurrency: 1,
    pollMs: 60_000,
    clock,
    logger: pino({ level: "silent" }),
    claim: async () => {
      claims++;
      return [];
    },
    process: async () => {},
    nextDueAt: async () => null,
  });
  loop.start();
  loop.start();
  assert.equal(loop.running, true);
  await delay(50);
  assert.equal(claims, 1);
  await loop.stop();
});
