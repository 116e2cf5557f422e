// Unit tests for the delivery worker making way for intake: one event at a time while webhooks pile up, all
// conversations at once when they do not. Over a real (in-memory) SQLite store.
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { readEventFacts } from "../core/line-event.ts";
import { DEFAULT_LONG_TEXT } from "../core/long-text.ts";
import { openSqliteStore } from "../store/sqlite/sqlite-store.ts";
import { DeliveryWorker } from "./deliver-outbox.ts";
import { IntakeLoad } from "./intake-load.ts";
import { type LineApi, noMetrics, type PartnerTransport } from "./ports.ts";
import { UserNames } from "./user-names.ts";

const SENDER = "1656168303";

/** Stores `perUser` text events for each of `users` users; returns how many. */
async function backlog(store: ReturnType<typeof openSqliteStore>, users: number, perUser: number) {
  const now = Date.now();
  for (let u = 0; u < users; u++) {
    const events = Array.from({ length: perUser }, (_, i) => {
      const raw = {
        type: "message",
        mode: "active",
        timestamp: now + i,
        webhookEventId: `evt-${u}-${i}`,
        source: { type: "user", userId: `U${String(u).padStart(32, "0")}` },
        message: { id: `m-${u}-${i}`, type: "text", text: "hi" },
      };
      return { facts: readEventFacts(raw, now), body: JSON.stringify(raw), forward: true, media: null };
    });
    await store.ingest({ senderKey: SENDER, partnerId: "p", receivedAt: now, events, mediaWaitMs: 30_000 });
  }
  return users * perUser;
}

/** A partner that takes 5 ms per delivery and records how many were in flight at once. */
function slowPartner() {
  const partner = { delivered: 0, inFlight: 0, maxInFlight: 0 };
  const transport: PartnerTransport = {
    async send() {
      partner.maxInFlight = Math.max(partner.maxInFlight, ++partner.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      partner.inFlight--;
      partner.delivered++;
      return { ok: true, status: 200 };
    },
    async close() {},
  };
  return { partner, transport };
}

function worker(store: ReturnType<typeof openSqliteStore>, intake: IntakeLoad, transport: PartnerTransport) {
  const line = {
    getProfile: async () => ({ ok: false, status: 404, reason: "unknown" }),
  } as unknown as LineApi;
  const clock = { now: () => Date.now() };
  return new DeliveryWorker(
    {
      store,
      intake,
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
      concurrency: 8,
      busyConcurrency: 1,
      batchSize: 32,
      leaseMs: 60_000,
      pollMs: 20,
      retry: { initialDelayMs: 1_000, maxDelayMs: 60_000, maxAgeMs: 3_600_000 },
      pause: { failuresToPause: 100, initialPauseMs: 1_000, maxPauseMs: 60_000 },
      longText: DEFAULT_LONG_TEXT,
      lineEventFieldsFor: new Set(),
    },
  );
}

const until = async (check: () => boolean) => {
  for (const deadline = Date.now() + 10_000; !check(); ) {
    assert.ok(Date.now() < deadline, "not within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

test("while intake is busy, one delivery at a time; once it is not, conversations go in parallel", async () => {
  const store = openSqliteStore(":memory:");
  const clock = { t: Date.now(), now: () => clock.t };
  const intake = new IntakeLoad({ busyAt: 2, holdMs: 1_000, clock });
  intake.started();
  intake.started(); // two webhooks waiting: busy, and for a second after
  intake.ended();
  intake.ended();
  const { partner, transport } = slowPartner();
  const total = await backlog(store, 4, 5);
  const delivery = worker(store, intake, transport);
  delivery.start();
  try {
    await until(() => partner.delivered >= 6);
    assert.equal(partner.maxInFlight, 1, "one at a time while busy");

    clock.t += 1_000; // quiet for the hold time
    delivery.wake();
    await until(() => partner.delivered === total);
    assert.ok(partner.maxInFlight > 1, `conversations in parallel after (at most ${partner.maxInFlight})`);
  } finally {
    await delivery.stop();
    await store.close();
  }
});
