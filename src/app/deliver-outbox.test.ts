// Unit tests for the delivery worker: partners isolated from each other, the pace of intake respected, attempts
// always within their lease, outcomes recorded as soon as the store takes them. Over a real (in-memory) SQLite store.
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { DeliveryPace } from "../core/delivery-pace.ts";
import { readEventFacts } from "../core/line-event.ts";
import { DEFAULT_LONG_TEXT } from "../core/long-text.ts";
import { openSqliteStore, type SqliteStore } from "../store/sqlite/sqlite-store.ts";
import { type DeliveryOptions, DeliveryWorker } from "./deliver-outbox.ts";
import { type LineApi, noMetrics, type PartnerTransport } from "./ports.ts";
import type { Store } from "./store.ts";
import { UserNames } from "./user-names.ts";

const SENDER = "1656168303";

/** Stores `perUser` text events for each of `users` users of `partnerId`; returns how many. */
async function backlog(store: SqliteStore, partnerId: string, users: number, perUser: number) {
  const now = Date.now();
  for (let u = 0; u < users; u++) {
    const events = Array.from({ length: perUser }, (_, i) => {
      const raw = {
        type: "message",
        mode: "active",
        timestamp: now + i,
        webhookEventId: `evt-${partnerId}-${u}-${i}`,
        source: { type: "user", userId: `U${partnerId}${String(u).padStart(31, "0")}` },
        message: { id: `m-${partnerId}-${u}-${i}`, type: "text", text: "hi" },
      };
      return { facts: readEventFacts(raw, now), body: JSON.stringify(raw), forward: true, media: null };
    });
    await store.ingest({ senderKey: SENDER, partnerId, receivedAt: now, events, mediaWaitMs: 30_000 });
  }
  return users * perUser;
}

/**
 * Partners whose answers the test controls: `hold` keeps a partner's attempts open until `release`. Records
 * what each partner got, how many were in flight at once, and any webhook-id in flight twice at once.
 */
function partners(delayMs = 1) {
  const state = {
    delivered: new Map<string, number>(),
    inFlight: new Map<string, number>(),
    maxInFlight: new Map<string, number>(),
    open: new Set<string>(),
    twice: [] as string[],
    held: new Set<string>(),
    waiting: [] as Array<() => void>,
  };
  const count = (map: Map<string, number>, key: string, by: number) => map.set(key, (map.get(key) ?? 0) + by);
  const transport: PartnerTransport = {
    async send(partnerId, webhookId) {
      if (state.open.has(webhookId)) state.twice.push(webhookId);
      state.open.add(webhookId);
      count(state.inFlight, partnerId, 1);
      state.maxInFlight.set(
        partnerId,
        Math.max(state.maxInFlight.get(partnerId) ?? 0, state.inFlight.get(partnerId) ?? 0),
      );
      if (state.held.has(partnerId)) await new Promise<void>((resolve) => state.waiting.push(resolve));
      else await new Promise((resolve) => setTimeout(resolve, delayMs));
      count(state.inFlight, partnerId, -1);
      state.open.delete(webhookId);
      count(state.delivered, partnerId, 1);
      return { ok: true, status: 200 };
    },
    async close() {},
  };
  const release = () => {
    state.held.clear();
    for (const resolve of state.waiting.splice(0)) resolve();
  };
  return { state, transport, release };
}

function worker(
  store: Store,
  transport: PartnerTransport,
  options: Partial<DeliveryOptions> & { pace?: DeliveryPace } = {},
) {
  const line = {
    getProfile: async () => ({ ok: false, status: 404, reason: "unknown" }),
  } as unknown as LineApi;
  const clock = { now: () => Date.now() };
  const concurrency = options.concurrency ?? 16;
  return new DeliveryWorker(
    {
      outbox: store,
      pace:
        options.pace ??
        new DeliveryPace({ max: concurrency, targetMs: 50, windowMs: 100, loopBusy: () => 0 }),
      transport,
      userNames: new UserNames(line, clock, {
        waitMs: 100,
        ttlMs: 60_000,
        missTtlMs: 60_000,
        maxEntries: 100,
      }),
      clock,
      logger: pino({ level: "silent" }),
      metrics: noMetrics,
    },
    {
      concurrency,
      partnerConcurrency: 4,
      batchSize: 32,
      leaseMs: 60_000,
      timeoutMs: 10_000,
      pollMs: 20,
      retry: { initialDelayMs: 1_000, maxDelayMs: 60_000, maxAgeMs: 3_600_000 },
      pause: { failuresToPause: 100, initialPauseMs: 1_000, maxPauseMs: 60_000 },
      longText: DEFAULT_LONG_TEXT,
      partner: () => undefined,
      ...options,
    },
  );
}

const until = async (what: string, check: () => boolean) => {
  for (const deadline = Date.now() + 10_000; !check(); ) {
    assert.ok(Date.now() < deadline, `not within 10 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

test("a partner that never answers holds its share of the slots, never another partner's events", async () => {
  const store = openSqliteStore(":memory:");
  const { state, transport, release } = partners();
  state.held.add("stuck");
  await backlog(store, "stuck", 40, 3); // older than the healthy partner's events, so due first
  const healthy = await backlog(store, "healthy", 10, 2);
  const delivery = worker(store, transport);
  delivery.start();
  try {
    await until("the healthy partner's events", () => state.delivered.get("healthy") === healthy);
    assert.equal(
      state.delivered.get("stuck") ?? 0,
      0,
      "…all of them before any attempt of the stuck partner ended",
    );
    assert.equal(state.maxInFlight.get("stuck"), 4, "the stuck partner holds its 4 slots, no more");
  } finally {
    release();
    await delivery.stop();
    await store.close();
  }
  assert.deepEqual(state.twice, [], "no event was in flight twice at once");
});

test("the pace bounds deliveries at once: one at a time while intake's commits are slow", async () => {
  const store = openSqliteStore(":memory:");
  const { state, transport } = partners(5);
  const total = await backlog(store, "p", 6, 4);
  // The pace as it stands after windows of slow commits (core/delivery-pace.test.ts): one.
  const pace = { limit: () => 1, observeCommit() {}, observeWait() {} } as unknown as DeliveryPace;
  const delivery = worker(store, transport, { pace, partnerConcurrency: 16 });
  delivery.start();
  try {
    await until("every event", () => state.delivered.get("p") === total);
    assert.equal(state.maxInFlight.get("p"), 1);
  } finally {
    await delivery.stop();
    await store.close();
  }
});

test("no attempt starts unless it can end within the lease: a conversation is never in flight twice", async () => {
  const store = openSqliteStore(":memory:");
  // Each attempt takes up to timeoutMs (100 ms); a lease of 1.2 s leaves room for one claim's first
  // attempts only: the worker stops, releases, and claims again, never overlapping its own lease.
  const { state, transport } = partners(90);
  const total = await backlog(store, "p", 2, 20);
  const delivery = worker(store, transport, { leaseMs: 1_200, timeoutMs: 100, partnerConcurrency: 8 });
  delivery.start();
  try {
    await until("every event", () => state.delivered.get("p") === total);
  } finally {
    await delivery.stop();
    await store.close();
  }
  assert.deepEqual(state.twice, []);
});

test("outcomes the store refuses are recorded as soon as it takes them again, not when the lease runs out", async () => {
  const store = openSqliteStore(":memory:");
  const { state, transport } = partners();
  await backlog(store, "p", 1, 2);
  let refusals = 2;
  let completed = 0;
  const flaky = new Proxy(store, {
    get(target, name, receiver) {
      if (name === "completeClaim") {
        return async (...args: Parameters<Store["completeClaim"]>) => {
          if (refusals-- > 0)
            throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
          completed++;
          return target.completeClaim(...args);
        };
      }
      const value = Reflect.get(target, name, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Store;
  const delivery = worker(flaky, transport);
  delivery.start();
  try {
    await until("the outcomes recorded", () => completed === 1);
    let rows = await store.listDeliveries({ senderKeys: [SENDER] }, { after: 0, limit: 10 });
    for (let i = 0; i < 100 && rows.some((row) => row.state !== "delivered"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      rows = await store.listDeliveries({ senderKeys: [SENDER] }, { after: 0, limit: 10 });
    }
    assert.deepEqual(
      rows.map((row) => row.state),
      ["delivered", "delivered"],
    );
    assert.equal(state.delivered.get("p"), 2, "delivered once each, not again after the lease");
  } finally {
    await delivery.stop();
    await store.close();
  }
});
