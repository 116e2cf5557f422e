// Fault suite: a partner down for hours, slow or rude; LINE's content API failing every way; the database
// locked or full; SIGTERM mid-delivery. Each fault ends with everything stored, in order, and nothing half-done.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, test } from "node:test";
import { Agent, request } from "undici";
import { generatedSha256 } from "../emulator/content-stream.ts";
import * as ev from "../emulator/events.ts";
import { startLineEmulator } from "../emulator/line-emulator.ts";
import { startPartnerSink } from "../emulator/partner-sink.ts";
import type { Clock } from "../src/app/ports.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { openSqliteStore, type SqliteStore } from "../src/store/sqlite/sqlite-store.ts";
import { TEST_DATABASE, testDatabaseUrl } from "./support/database.ts";
import { countDeliveries, listDeliveries } from "./support/deliveries.ts";
import { readCount, readRows, storedFiles } from "./support/read-rows.ts";
import {
  ACCESS_TOKEN,
  API_KEY,
  CHANNEL_SECRET,
  SENDER_KEY,
  type Stack,
  type StackOptions,
  sqlitePath,
  stackConfig,
  startStack,
} from "./support/stack.ts";
import { freePort } from "./support/talkgate-process.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A clock that moves only when told to. */
class FakeClock implements Clock {
  #now: number;
  constructor(start: number) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await sleep(15);
  }
}

/** Moves the fake clock on by `stepMs` every few real milliseconds until `condition` holds. */
async function tickUntil(
  clock: FakeClock,
  stepMs: number,
  condition: () => boolean | Promise<boolean>,
  what: string,
) {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not reached within 15 s of real time: ${what}`);
    clock.advance(stepMs);
    await sleep(15);
  }
}

/** A count on the SQLite file, for the tests of SQLite's own failure modes. */
function sqliteCount(path: string, sql: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number((db.prepare(sql).get() as { n: number }).n);
  } finally {
    db.close();
  }
}

/** The stack's deliveries, in the order their events were stored (GET /line/deliveries). */
const deliveries = (s: Stack) => listDeliveries(s.talkgate);
const bySerial = async (s: Stack) => new Map((await deliveries(s)).map((row) => [row.serial_number, row]));
/** The serial_number of each text the partner was sent (tried, whether it took it or not). */
const serialOfText = (s: Stack) =>
  new Map(
    s.sink.received.map((r) => [
      (r.body as PartnerPayload).content.text as string,
      (r.body as PartnerPayload).serial_number,
    ]),
  );
const messageId = (payload: unknown) => (payload as PartnerPayload).content.id as string;
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/**
 * GET with the partner API key, on a connection of its own that is closed after: a keep-alive connection
 * busy when talkgate closes holds the close up (see the SIGTERM test with a partner API call in flight).
 */
async function httpGet(url: string) {
  const agent = new Agent();
  try {
    const response = await request(url, {
      headers: { authorization: `Bearer ${API_KEY}` },
      dispatcher: agent,
    });
    const bytes = new Uint8Array(await response.body.arrayBuffer());
    return { status: response.statusCode, bytes, text: Buffer.from(bytes).toString("utf8") };
  } finally {
    await agent.close();
  }
}

describe("faults", () => {
  let stack: Stack | undefined;
  const cleanups: Array<() => unknown> = [];
  const start = async (options?: StackOptions) => {
    stack = await startStack(options);
    return stack;
  };
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  describe("partner down for hours (simulated clock)", () => {
    // Retries as in production (1 s doubling, capped at 10 min, dead after 24 h), on a fake clock; the
    // worker sleeps at most pollMs of real time, so moving the clock and waiting a little wakes it.
    // Leases are on that clock too, which runs hundreds of times faster than the attempts it times (they take
    // real milliseconds): a lease of minutes would run out under an attempt and its conversation be delivered
    // again. Nothing here is about leases, so they outlast the whole test.
    const delivery = {
      initialBackoffMs: 1_000,
      maxBackoffMs: 10 * MINUTE,
      maxAgeMs: DAY,
      pollMs: 20,
      leaseMs: 3 * DAY,
    };

    /**
     * Waits until every conversation whose head is due at the current (fake) time has had its attempt, or
     * the partner is paused (its conversations then wait, untouched, for the pause to end).
     */
    const settled = async (s: Stack, clock: FakeClock, what: string) => {
      // Which delivery heads its conversation depends on LINE timestamps, which no API shows: the rows say.
      const waitingHeads = () =>
        readCount(
          s.config.database,
          {
            sqlite: `SELECT count(*) AS n FROM deliveries d
              WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at <= $1
                AND NOT EXISTS (SELECT 1 FROM deliveries o
                  WHERE o.sender_key = d.sender_key AND o.conversation = d.conversation
                    AND o.state IN ('pending', 'retrying')
                    AND (o.line_timestamp, o.event_id) < (d.line_timestamp, d.event_id))`,
            postgres: `SELECT count(*) AS n FROM events d
              WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at <= $1
                AND NOT EXISTS (SELECT 1 FROM events o
                  WHERE o.sender_key = d.sender_key AND o.conversation = d.conversation
                    AND o.state IN ('pending', 'retrying')
                    AND (o.line_timestamp, o.id) < (d.line_timestamp, d.id))`,
          },
          clock.now(),
        );
      const paused = async () =>
        /talkgate_partner_state\{partner="partner",state="paused"\} 1/.test(
          await (await fetch(`${s.talkgate.url}/metrics`)).text(),
        );
      const deadline = Date.now() + 10_000;
      while ((await waitingHeads()) > 0 && !(await paused())) {
        if (Date.now() > deadline) throw new Error(`not reached within 10000 ms: ${what}`);
        await sleep(10);
      }
    };

    test("23 h down, then back: every event delivered once, in LINE timestamp order per conversation, none dead", async () => {
      const clock = new FakeClock(Date.now());
      const s = await start({ clock, config: { delivery } });
      s.sink.respondWith(() => ({ status: 503 }));
      const t0 = clock.now();
      const [u1, u2, u3] = [ev.randomUserId(), ev.randomUserId(), ev.randomUserId()];
      const sources = [
        ev.userSource(u1),
        ev.userSource(u2),
        ev.userSource(u3),
        ev.groupSource(ev.randomGroupId(), u1),
        ev.roomSource(ev.randomRoomId(), u2),
      ];
      /** message id → [conversation index, LINE timestamp] */
      const sent = new Map<string, [number, number]>();
      const event = (i: number, timestamp: number) => {
        const e = ev.textEvent(sources[i] as ev.Source, `c${i} @${timestamp - t0}`, { timestamp });
        sent.set(e.message.id, [i, timestamp]);
        return e;
      };
      // Each wave: two messages per conversation, listed newest first; at 12 h also a late arrival
      // per conversation whose LINE timestamp (1.5 h) is older than messages already waiting.
      const sendWave = async (hours: number) => {
        const events = sources.flatMap((_, i) => {
          const ts = t0 + hours * HOUR + 10 * i;
          const wave = [event(i, ts + 1), event(i, ts)];
          return hours === 12 ? [...wave, event(i, t0 + 1.5 * HOUR + i)] : wave;
        });
        const result = await s.emulator.sendWebhook(SENDER_KEY, events);
        assert.equal(result.status, 200, result.body);
      };
      const waves = new Set([0, 1, 6, 12, 18, 22.5]);

      const started = Date.now();
      await sendWave(0);
      await settled(s, clock, "the first attempts");
      for (let minutes = 30; minutes <= 23 * 60; minutes += 30) {
        clock.advance(30 * MINUTE);
        if (waves.has(minutes / 60)) await sendWave(minutes / 60);
        await settled(s, clock, `the attempts at ${minutes / 60} h`);
        assert.equal(
          await countDeliveries(s.talkgate, { state: "dead" }),
          0,
          `nothing dead at ${minutes / 60} h`,
        );
      }
      const failedAttempts = s.sink.received.length;
      assert.equal(s.sink.accepted.length, 0, "nothing was acknowledged while the partner was down");
      // The partner is paused after repeated failures, but probed at least once in every half hour.
      assert.ok(failedAttempts >= 46, `the partner was tried all along (${failedAttempts} attempts)`);
      const states = new Set((await deliveries(s)).map((row) => row.state));
      assert.deepEqual([...states].sort(), ["pending", "retrying"]);

      s.sink.respondWith(undefined);
      const backAt = clock.now();
      await tickUntil(clock, 10_000, () => s.sink.accepted.length >= sent.size, "all delivered");
      const drainedIn = clock.now() - backAt;
      await waitUntil(
        async () => (await deliveries(s)).every((row) => row.state === "delivered"),
        "every outcome recorded",
      );
      const accepted = [...s.sink.accepted];
      const realMs = Date.now() - started;

      assert.equal(accepted.length, sent.size, "each event delivered exactly once");
      assert.equal(new Set(accepted.map(messageId)).size, sent.size);
      for (const [i] of sources.entries()) {
        const got = accepted.map(messageId).filter((id) => sent.get(id)?.[0] === i);
        const timestamps = got.map((id) => sent.get(id)?.[1] ?? -1);
        assert.deepEqual(
          timestamps,
          [...timestamps].sort((a, b) => a - b),
          `conversation ${i} in LINE timestamp order`,
        );
      }
      const rows = await deliveries(s);
      assert.equal(rows.length, sent.size);
      assert.ok(
        rows.every((row) => row.state === "delivered"),
        "all delivered, none dead",
      );
      const maxAttempts = Math.max(...rows.map((row) => row.attempts));
      console.log(
        `# partner down 23 h (simulated): ${sent.size} events in ${sources.length} conversations, ` +
          `${failedAttempts} failed attempts (at most ${maxAttempts} for one event), 0 dead, ` +
          `0 order violations; all delivered ${drainedIn / 1000} s (simulated) after the partner came back; ` +
          `${realMs} ms real time`,
      );
    });

    test("a delivery still failing at 24 h is dead then, not before, and stops blocking its conversation", async () => {
      const clock = new FakeClock(Date.now());
      const s = await start({ clock, config: { delivery } });
      s.sink.respondWith((request) =>
        (request.body as PartnerPayload).content.text === "doomed" ? { status: 503 } : undefined,
      );
      const user = ev.randomUserId();
      const t0 = clock.now();
      const doomed = ev.textEvent(ev.userSource(user), "doomed", { timestamp: t0 });
      const next = ev.textEvent(ev.userSource(user), "next", { timestamp: t0 + 1 });
      await s.emulator.sendWebhook(SENDER_KEY, [doomed, next]);
      await settled(s, clock, "the first attempt");
      // The conversation's two deliveries: the head, tried (so the partner has seen its serial_number), and the next.
      const doomedSerial = serialOfText(s).get("doomed");
      assert.ok(doomedSerial, "the head was tried");
      const conversation = await listDeliveries(s.talkgate, { conversation: `user:${user}` });
      assert.equal(conversation.length, 2);
      const nextSerial = conversation.find((row) => row.serial_number !== doomedSerial)?.serial_number;
      const byMessage = async () => {
        const rows = await bySerial(s);
        return new Map([
          [doomed.message.id, rows.get(doomedSerial ?? "")],
          [next.message.id, rows.get(nextSerial ?? "")],
        ]);
      };

      for (const at of [...Array.from({ length: 23 }, (_, h) => (h + 1) * HOUR), DAY - MINUTE]) {
        clock.set(t0 + at);
        await settled(s, clock, `the attempt at ${at / HOUR} h`);
        const rows = await byMessage();
        assert.equal(rows.get(doomed.message.id)?.state, "retrying", `still retrying at ${at / MINUTE} min`);
        assert.equal(rows.get(next.message.id)?.state, "pending", "the next waits behind its head");
      }
      assert.equal(s.sink.accepted.length, 0);

      clock.set(t0 + DAY);
      await settled(s, clock, "the attempt at 24 h");
      // A partner failing every attempt is paused (delivery.pause*): the next may wait for the pause to end.
      const settledState = async (id: string) => {
        const state = (await byMessage()).get(id)?.state;
        return state === "delivered" || state === "dead";
      };
      await tickUntil(clock, 10_000, () => settledState(next.message.id), "the next settled");
      const rows = await byMessage();
      const dead = rows.get(doomed.message.id);
      assert.equal(dead?.state, "dead");
      assert.equal(
        rows.get(next.message.id)?.state,
        "delivered",
        `the head's death unblocks the next, which the partner accepts: ${JSON.stringify(rows.get(next.message.id))}`,
      );
      assert.deepEqual(s.sink.accepted.map(messageId), [next.message.id]);
      // Its last try is made at the limit, or, when the partner is paused then, as the probe after the pause.
      const diedAfter = (dead?.updated_at ?? 0) - (t0 + DAY);
      assert.ok(
        diedAfter >= 0 && diedAfter <= 10 * MINUTE + 10_000,
        `dead at the limit or one pause after: ${diedAfter} ms`,
      );
      assert.equal(dead?.last_status, 503, `the last try is made, never skipped: ${JSON.stringify(dead)}`);
      const after = (rows.get(next.message.id)?.updated_at ?? 0) - (t0 + DAY);
      assert.ok(after <= 10 * MINUTE + 10_000, `the next was held at most one pause (${after} ms)`);
      console.log(
        `# dead at 24 h (simulated) after ${dead?.attempts} attempts; the next event delivered ` +
          `${after / 1000} s (simulated) later`,
      );
    });
  });

  test("a slow head (past the timeout) keeps its conversation in order and holds no other conversation", async () => {
    const s = await start({
      config: { delivery: { timeoutMs: 300, initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 50 } },
    });
    const [alice, bob] = [ev.randomUserId(), ev.randomUserId()];
    const slowLeft = new Map([
      ["a1", 1],
      ["a2", 2],
    ]);
    s.sink.respondWith((request) => {
      const text = (request.body as PartnerPayload).content.text as string;
      const left = slowLeft.get(text) ?? 0;
      if (left === 0) return undefined;
      slowLeft.set(text, left - 1);
      return { status: 200, delayMs: 1_000 };
    });
    const t = Date.now();
    await s.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(alice), "a3", { timestamp: t + 3 }),
      ev.textEvent(ev.userSource(alice), "a1", { timestamp: t + 1 }),
      ev.textEvent(ev.userSource(bob), "b1", { timestamp: t + 1 }),
      ev.textEvent(ev.userSource(alice), "a2", { timestamp: t + 2 }),
      ev.textEvent(ev.userSource(bob), "b2", { timestamp: t + 2 }),
    ]);
    await waitUntil(async () => {
      const rows = await deliveries(s);
      return rows.length === 5 && rows.every((row) => row.state === "delivered");
    }, "all five acknowledged");
    const rows = await bySerial(s);
    const serialOf = serialOfText(s);
    const attemptsOf = (text: string) => rows.get(serialOf.get(text) ?? "")?.attempts;
    assert.deepEqual(
      ["a1", "a2", "a3", "b1", "b2"].map(attemptsOf),
      [2, 3, 1, 1, 1],
      "each slow answer counted as a failed attempt",
    );

    // What the partner saw, in arrival order. A timed-out attempt may still be processed by a slow partner
    // (at-least-once: the same serial_number again), but the next message never arrives before its
    // predecessor's acknowledged attempt, and no earlier message comes back after a later one.
    const arrivals = (user: string) =>
      s.sink.received
        .filter((r) => (r.body as PartnerPayload).user_key === user)
        .map((r) => (r.body as PartnerPayload).content.text as string);
    const collapse = (list: string[]) => list.filter((text, i) => text !== list[i - 1]);
    assert.deepEqual(arrivals(alice), ["a1", "a1", "a2", "a2", "a2", "a3"]);
    assert.deepEqual(collapse(arrivals(alice)), ["a1", "a2", "a3"]);
    assert.deepEqual(arrivals(bob), ["b1", "b2"]);
    const index = (text: string, nth = 0) =>
      s.sink.received
        .map((r, i) => [(r.body as PartnerPayload).content.text, i] as const)
        .filter(([t]) => t === text)[nth]?.[1] ?? -1;
    assert.ok(index("b2") < index("a1", 1), "bob went on while alice's head was stuck");
  });

  describe("a partner answering 2xx without reading the body", () => {
    for (const mode of ["close", "keep"] as const) {
      test(`then ${mode === "close" ? "closing" : "keeping"} the connection: delivered at once, no hang, later deliveries flow`, async () => {
        const rude = await startRudePartner(mode);
        cleanups.push(() => rude.close());
        const s = await start({
          partner: { receiveUrl: `${rude.url}/line` },
          config: {
            delivery: { timeoutMs: 500, initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 50 },
            // The whole text goes in the payload: about 3 MB, far more than the socket buffers take.
            longText: { threshold: 10_000_000 },
            webhook: { bodyLimitBytes: 8 * 1024 * 1024 },
          },
        });
        const [alice, bob] = [ev.randomUserId(), ev.randomUserId()];
        const t = Date.now();
        const big = ev.textEvent(ev.userSource(alice), "あ".repeat(1_000_000), { timestamp: t });
        const first = await s.emulator.sendWebhook(SENDER_KEY, [
          big,
          ev.textEvent(ev.userSource(alice), "after the big one", { timestamp: t + 1 }),
          ev.textEvent(ev.userSource(bob), "meanwhile", { timestamp: t + 1 }),
        ]);
        assert.equal(first.status, 200, first.body);
        for (let i = 0; i < 5; i++) {
          const later = ev.textEvent(ev.userSource(i % 2 ? alice : bob), `later ${i}`, {
            timestamp: t + 10 + i,
          });
          assert.equal((await s.emulator.sendWebhook(SENDER_KEY, [later])).status, 200);
        }
        await waitUntil(
          async () => (await deliveries(s)).every((row) => row.state === "delivered"),
          "every delivery acknowledged",
          15_000,
        );
        const rows = await deliveries(s);
        assert.equal(rows.length, 8);
        // Alice's first delivery (first in the first webhook, and first by LINE timestamp).
        const [bigRow] = await listDeliveries(s.talkgate, { conversation: `user:${alice}` });
        assert.equal(bigRow?.attempts, 1, "the 200 counted at once, unread body or not");
        assert.ok(
          (bigRow?.updated_at ?? Infinity) - (bigRow?.received_at ?? 0) < 1_000,
          "no wait for a timeout",
        );
        const ids = rows.map((row) => `${SENDER_KEY}:${row.serial_number}`);
        assert.deepEqual(
          [...new Set(rude.requests)].sort(),
          [...ids].sort(),
          "the partner saw every delivery (webhook-id: <sender_key>:<serial_number>)",
        );
        const retried = rows.filter((row) => row.attempts > 1);
        if (mode === "close")
          assert.deepEqual(retried, [], "a connection closed after the answer costs no attempt");
        // Kept open, such a connection is reused, and a partner that never reads never answers on it: that
        // attempt times out (delivery.timeoutMs) and the connection is dropped; each costs one timeout.
        const timeouts = rows.reduce((sum, row) => sum + row.attempts - 1, 0);
        assert.ok(timeouts <= rude.connections, `no more timeouts (${timeouts}) than stale connections`);
        console.log(
          `# rude partner (${mode}): ${ids.length} deliveries over ${rude.connections} connections, ` +
            `the ~3 MB one acked in ${(bigRow?.updated_at ?? 0) - (bigRow?.received_at ?? 0)} ms; ` +
            `${timeouts} attempts timed out on a reused connection`,
        );
      });
    }
  });

  describe("LINE's content API failing", () => {
    const media = { concurrency: 3, timeoutMs: 500, initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 50 };

    /** A stack whose content downloads go through a fault-injecting proxy in front of the emulator. */
    async function startWithProxy(config: Record<string, unknown> = {}) {
      const proxy = await startContentProxy();
      cleanups.push(() => proxy.close());
      const s = await start({ line: { dataApiBaseUrl: proxy.url }, config: { media, ...config } });
      proxy.target = s.emulator.url;
      return { s, proxy };
    }

    const relayed = (s: Stack, ids: string[], timeoutMs = 20_000) =>
      s.sink.waitFor((a) => ids.every((id) => a.some((p) => messageId(p) === id)), timeoutMs);
    // The download jobs: what was stored (size, sha256) and after how many attempts, which no API shows.
    const mediaRows = async (s: Stack) =>
      new Map(
        (
          await readRows<{
            message_id: string;
            state: string;
            sha256: string | null;
            size: number | null;
            attempts: number;
          }>(s.config.database, "SELECT message_id, state, sha256, size, attempts FROM media")
        ).map((row) => [row.message_id, row]),
      );
    const download = (s: Stack, payload: unknown) =>
      httpGet(
        `${s.talkgate.url}/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${encodeURIComponent(
          (payload as PartnerPayload).serial_number,
        )}`,
      );

    test("a stall mid-body, a slow answer and a dropped connection (all past media.timeoutMs) are retried; stored byte-exact", async () => {
      const { s, proxy } = await startWithProxy();
      const user = ev.randomUserId();
      const t = Date.now();
      const stalled = ev.fileEvent(
        ev.userSource(user),
        { fileName: "stall.bin", fileSize: 1_000_000 },
        { timestamp: t },
      );
      const slow = ev.imageEvent(ev.userSource(user), {}, { timestamp: t + 1 });
      const dropped = ev.videoEvent(ev.userSource(user), { duration: 1000 }, { timestamp: t + 2 });
      s.emulator.setContent(stalled.message.id, { generated: { size: 1_000_000, seed: 11 } });
      s.emulator.setContent(slow.message.id, {
        generated: { size: 50_000, seed: 12 },
        contentType: "image/jpeg",
      });
      s.emulator.setContent(dropped.message.id, {
        generated: { size: 70_000, seed: 13 },
        contentType: "video/mp4",
      });
      proxy.fault(stalled.message.id, { kind: "stall", afterBytes: 300_000 });
      proxy.fault(dropped.message.id, { kind: "reset" }, 2);
      const slowPath = `/v2/bot/message/${slow.message.id}/content`;
      s.emulator.setDelay(slowPath, 1_200);

      assert.equal((await s.emulator.sendWebhook(SENDER_KEY, [stalled, slow, dropped])).status, 200);
      await waitUntil(() => s.emulator.contentRequests(slow.message.id) >= 3, "the slow answer tried thrice");
      s.emulator.setDelay(slowPath, 0);
      const accepted = await relayed(
        s,
        [stalled, slow, dropped].map((e) => e.message.id),
      );
      assert.deepEqual(
        accepted.filter((p) => (p as PartnerPayload).user_key === user).map(messageId),
        [stalled.message.id, slow.message.id, dropped.message.id],
        "relayed in order, each once its content was stored",
      );
      const rows = await mediaRows(s);
      for (const [event, size, seed] of [
        [stalled, 1_000_000, 11],
        [slow, 50_000, 12],
        [dropped, 70_000, 13],
      ] as const) {
        const row = rows.get(event.message.id);
        assert.equal(row?.state, "stored", event.message.type);
        assert.equal(row?.size, size);
        assert.equal(row?.sha256, await generatedSha256(size, seed));
        const payload = accepted.find((p) => messageId(p) === event.message.id);
        const served = await download(s, payload);
        assert.equal(served.status, 200);
        assert.equal(
          sha256(served.bytes),
          await generatedSha256(size, seed),
          `${event.message.type} byte-exact`,
        );
      }
      assert.equal(
        s.emulator.contentRequests(stalled.message.id),
        2,
        "the stalled body was fetched again once",
      );
      assert.equal(proxy.stalls.length, 1);
      const held = proxy.stalls[0]?.heldMs ?? 0;
      assert.ok(held >= 450 && held < 3_000, `the stall was given up at media.timeoutMs (${held} ms)`);
      assert.ok(s.emulator.contentRequests(slow.message.id) >= 4);
      assert.equal(proxy.resets, 2);
      assert.deepEqual(await storedFiles(s.config, ".incoming"), [], "no partial file left behind");
    });

    test("a flood of 50 attachments: at most media.concurrency downloads at once, all stored and relayed in order", async () => {
      const { s, proxy } = await startWithProxy();
      s.emulator.setDelay(/\/content$/, 100); // each download takes a while, so they overlap
      const users = Array.from({ length: 5 }, () => ev.randomUserId());
      const t = Date.now();
      const seeds = new Map<string, number>();
      const batches = users.map((user, u) =>
        Array.from({ length: 10 }, (_, i) => {
          const e =
            i % 2
              ? ev.imageEvent(ev.userSource(user), {}, { timestamp: t + i })
              : ev.fileEvent(
                  ev.userSource(user),
                  { fileName: `f${i}.bin`, fileSize: 40_000 },
                  { timestamp: t + i },
                );
          const seed = 100 + u * 10 + i;
          seeds.set(e.message.id, seed);
          s.emulator.setContent(e.message.id, { generated: { size: 40_000, seed } });
          return e;
        }),
      );
      const started = Date.now();
      const answers = await Promise.all(batches.map((events) => s.emulator.sendWebhook(SENDER_KEY, events)));
      assert.ok(answers.every((a) => a.status === 200));
      const accepted = await relayed(s, [...seeds.keys()], 30_000);
      const ms = Date.now() - started;
      assert.ok(proxy.maxInFlight <= 3, `never more than 3 downloads at once (saw ${proxy.maxInFlight})`);
      assert.equal(proxy.maxInFlight, 3, "the bound was used");
      const rows = await mediaRows(s);
      for (const [id, seed] of seeds) {
        assert.equal(rows.get(id)?.state, "stored");
        assert.equal(rows.get(id)?.sha256, await generatedSha256(40_000, seed));
      }
      for (const [u, events] of batches.entries()) {
        assert.deepEqual(
          accepted.filter((p) => (p as PartnerPayload).user_key === users[u]).map(messageId),
          events.map((e) => e.message.id),
          `user ${u} in order`,
        );
      }
      console.log(
        `# 50 attachments: at most ${proxy.maxInFlight} downloads at once (media.concurrency 3), all stored byte-exact and relayed in ${ms} ms`,
      );
    });

    test("content that never comes (5xx for ever, never transcoded, always too slow) is given up after media.maxAgeMs and the message relayed", async () => {
      const { s } = await startWithProxy({ media: { ...media, maxAgeMs: 1_500 } });
      const user = ev.randomUserId();
      const t = Date.now();
      const failing = ev.imageEvent(ev.userSource(user), {}, { timestamp: t });
      const processing = ev.videoEvent(ev.userSource(user), { duration: 1 }, { timestamp: t + 1 });
      const tooSlow = ev.audioEvent(ev.userSource(user), { duration: 1 }, { timestamp: t + 2 });
      s.emulator.setContent(failing.message.id, { body: "never served" });
      s.emulator.failNext(`/v2/bot/message/${failing.message.id}/content`, { status: 500 }, 10_000);
      s.emulator.setContent(processing.message.id, { body: "never served", transcoding: "processing" });
      s.emulator.setContent(tooSlow.message.id, { body: "never served" });
      s.emulator.setDelay(`/v2/bot/message/${tooSlow.message.id}/content`, 2_000);
      const started = Date.now();
      await s.emulator.sendWebhook(SENDER_KEY, [failing, processing, tooSlow]);
      const accepted = await relayed(
        s,
        [failing, processing, tooSlow].map((e) => e.message.id),
      );
      const ms = Date.now() - started;
      assert.ok(ms < 10_000, `relayed once given up, well before relayWaitMs (${ms} ms)`);
      const rows = await mediaRows(s);
      for (const event of [failing, processing, tooSlow]) {
        assert.equal(rows.get(event.message.id)?.state, "gone", event.message.type);
        assert.ok((rows.get(event.message.id)?.attempts ?? 0) >= 2, `${event.message.type} was retried`);
        const served = await download(
          s,
          accepted.find((p) => messageId(p) === event.message.id),
        );
        assert.equal(served.status, 410);
        assert.equal(JSON.parse(served.text).code, "-410");
      }
    });
  });

  describe("the database cannot write", () => {
    test("disk full (SQLITE_FULL): 5xx and nothing of the webhook kept; once there is room the redelivery is stored whole and delivered once", {
      skip: TEST_DATABASE === "postgres" && "a full SQLite file (SQLITE_FULL) is SQLite's own failure mode",
    }, async () => {
      let store: SqliteStore | undefined;
      const s = await start({
        openStore: (config) => {
          store = openSqliteStore(sqlitePath(config));
          return store;
        },
      });
      const db = sqlitePath(s.config);
      const warm = ev.textEvent(ev.userSource(ev.randomUserId()), "before the disk filled up");
      await s.emulator.sendWebhook(SENDER_KEY, [warm]);
      await waitUntil(
        async () => (await deliveries(s)).every((row) => row.state === "delivered"),
        "warm-up delivered",
      );

      const sqlite = (store as SqliteStore).db;
      const pages = (sqlite.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
      sqlite.exec(`PRAGMA max_page_count = ${pages}`); // the "disk" holds not one page more
      let probe: unknown;
      try {
        sqlite.exec("BEGIN; CREATE TABLE probe (x); INSERT INTO probe VALUES (zeroblob(1000000));");
      } catch (error) {
        probe = error;
      } finally {
        if (sqlite.isTransaction) sqlite.exec("ROLLBACK");
      }
      assert.match(String(probe), /database or disk is full/, "the disk is full");
      const tables = ["events", "deliveries", "serial_counters", "conversations"];
      const counts = () => tables.map((table) => sqliteCount(db, `SELECT count(*) AS n FROM ${table}`));
      const before = counts();

      const user = ev.randomUserId();
      const t = Date.now();
      const long = "가".repeat(300_000); // ~900 kB: needs new pages whatever is free
      const events = [
        ev.textEvent(ev.userSource(user), "first", { timestamp: t }),
        ev.textEvent(ev.userSource(user), long, { timestamp: t + 1 }),
        ev.textEvent(ev.userSource(user), "third", { timestamp: t + 2 }),
      ];
      for (const attempt of [events, events.map((e) => ev.redelivered(e))]) {
        const refused = await s.emulator.sendWebhook(SENDER_KEY, attempt);
        assert.ok(refused.status >= 500, `answered ${refused.status}, not 200: ${refused.body}`);
        assert.equal(JSON.parse(refused.body).code, "-600");
        assert.deepEqual(counts(), before, "nothing of the webhook was written");
      }
      await sleep(300);
      assert.ok(
        s.sink.received.every((r) => (r.body as PartnerPayload).user_key !== user),
        "the partner saw nothing of it",
      );

      sqlite.exec("PRAGMA max_page_count = 1073741823"); // room again
      const redelivery = await s.emulator.sendWebhook(
        SENDER_KEY,
        events.map((e) => ev.redelivered(e)),
      );
      assert.equal(redelivery.status, 200, redelivery.body);
      assert.equal(JSON.parse(redelivery.body).stored, 3);
      const accepted = (await s.sink.waitFor(
        (a) => a.filter((p) => (p as PartnerPayload).user_key === user).length >= 3,
      )) as PartnerPayload[];
      const mine = accepted.filter((p) => p.user_key === user);
      assert.deepEqual(
        mine.map((p) => p.content.text),
        ["first", long.slice(0, 300), "third"],
      );
      assert.deepEqual(
        mine.map((p) => p.serial_number.split("-")[1]),
        ["0001", "0002", "0003"],
        "no serial number was used up by the failed writes",
      );
      assert.equal(mine[1]?.is_message_attachment, true);
      const full = await httpGet(
        `${s.talkgate.url}/line/message/long?sender_key=${SENDER_KEY}&serial_number=${encodeURIComponent(mine[1]?.serial_number ?? "")}`,
      );
      assert.equal((JSON.parse(full.text) as { text: string }).text, long, "the long text is whole");
      await waitUntil(
        async () => (await deliveries(s)).every((row) => row.state === "delivered"),
        "all delivered",
      );
      assert.deepEqual(
        counts().map((n, i) => n - (before[i] ?? 0)),
        [3, 3, 1, 1],
        "events, deliveries, serial counter and conversation: each written once",
      );
      await sleep(200);
      assert.equal(s.sink.received.filter((r) => (r.body as PartnerPayload).user_key === user).length, 3);
      const check = new DatabaseSync(db, { readOnly: true });
      try {
        assert.equal(
          (check.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check,
          "ok",
        );
      } finally {
        check.close();
      }
    });

    test("locked by another process past busy_timeout: the webhook is answered 5xx within LINE's 2 s; the redelivery is stored once", {
      skip:
        TEST_DATABASE === "postgres" &&
        "a SQLite file locked by another process is SQLite's own failure mode",
    }, async () => {
      const s = await start();
      const db = sqlitePath(s.config);
      const user = ev.randomUserId();
      const t = Date.now();
      const events = [0, 1, 2].map((i) =>
        ev.textEvent(ev.userSource(user), `locked ${i}`, { timestamp: t + i }),
      );
      const eventsBefore = sqliteCount(db, "SELECT count(*) AS n FROM events");

      const locker = new DatabaseSync(db);
      locker.exec("BEGIN EXCLUSIVE");
      let refused: { status: number; ms: number };
      let health: { status: number; ms: number };
      try {
        const sentAt = Date.now();
        const timed = <T extends { status: number }>(p: Promise<T>) =>
          p.then(
            (r) => ({ status: r.status, ms: Date.now() - sentAt }),
            () => ({ status: 0, ms: Date.now() - sentAt }),
          );
        [refused, health] = await Promise.all([
          timed(s.emulator.sendWebhook(SENDER_KEY, events, { timeoutMs: 10_000 })),
          timed(httpGet(`${s.talkgate.url}/healthz`)),
        ]);
      } finally {
        locker.exec("ROLLBACK");
        locker.close();
      }
      assert.ok(refused.status >= 500, `answered ${refused.status}`);
      assert.equal(sqliteCount(db, "SELECT count(*) AS n FROM events"), eventsBefore, "nothing half-written");
      const redelivery = await s.emulator.sendWebhook(
        SENDER_KEY,
        events.map((e) => ev.redelivered(e)),
      );
      assert.equal(redelivery.status, 200);
      const accepted = (await s.sink.waitFor((a) => a.length >= 3)) as PartnerPayload[];
      assert.deepEqual(
        accepted.map((p) => p.content.text),
        ["locked 0", "locked 1", "locked 2"],
      );
      assert.equal(sqliteCount(db, "SELECT count(*) AS n FROM events"), eventsBefore + 3);
      console.log(
        `# database locked: the webhook was answered ${refused.status} after ${refused.ms} ms; ` +
          `GET /healthz meanwhile took ${health.ms} ms`,
      );
      assert.ok(refused.ms < 2_000, `answered within LINE's 2 s, not after ${refused.ms} ms`);
    });
  });

  /** Emulator, sink and a configuration file for `talkgate serve` on a fixed port; all removed after the test. */
  async function serveEnvironment() {
    const dir = mkdtempSync(join(tmpdir(), "talkgate-sigterm-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const webhookUrl = `http://127.0.0.1:${port}/line/webhook/${SENDER_KEY}`;
    const emulator = await startLineEmulator({
      channels: [
        { channelId: SENDER_KEY, channelSecret: CHANNEL_SECRET, accessToken: ACCESS_TOKEN, webhookUrl },
      ],
    });
    cleanups.push(() => emulator.close());
    const sink = await startPartnerSink();
    cleanups.push(() => sink.close());
    const configPath = join(dir, "talkgate.config.json");
    const database = await testDatabaseUrl(dir);
    writeFileSync(
      configPath,
      JSON.stringify({
        ...stackConfig(emulator.url, sink.url, { config: { logLevel: "info" } }),
        database,
        listen: { host: "127.0.0.1", port },
      }),
    );
    return { emulator, sink, configPath, url: `http://127.0.0.1:${port}`, database };
  }

  test("SIGTERM mid-delivery: the delivery finishes and is recorded, later webhooks are refused, exit 0; not sent again after restart", async () => {
    const { emulator, sink, configPath, database } = await serveEnvironment();
    sink.respondWith(() => ({ status: 200, delayMs: 1_500 }));

    let serve = await spawnServe(configPath);
    cleanups.push(() => serve.kill());
    const user = ev.randomUserId();
    const t = Date.now();
    const events = [0, 1, 2].map((i) => ev.textEvent(ev.userSource(user), `m${i}`, { timestamp: t + i }));
    assert.equal((await emulator.sendWebhook(SENDER_KEY, events)).status, 200);
    await waitUntil(() => sink.received.length === 1, "the first delivery in flight");

    const termAt = Date.now();
    serve.child.kill("SIGTERM");
    await serve.stderrLine(/SIGTERM: shutting down/);
    // Webhooks while it shuts down: 503 or no connection, never a 200 for an event it does not store.
    const late = ev.textEvent(ev.userSource(user), "during shutdown", { timestamp: t + 10 });
    const lateAnswers: string[] = [];
    while (serve.child.exitCode === null && lateAnswers.length < 50) {
      const answer = await emulator
        .sendWebhook(SENDER_KEY, [lateAnswers.length ? ev.redelivered(late) : late], { timeoutMs: 3_000 })
        .then((r) => String(r.status))
        .catch(() => "no connection");
      lateAnswers.push(answer);
      await sleep(50);
    }
    const exit = await serve.exited;
    const stopMs = Date.now() - termAt;
    assert.deepEqual(exit, { code: 0, signal: null }, "a clean exit");
    assert.ok(
      lateAnswers.length > 0 && lateAnswers.every((a) => a === "503" || a === "no connection"),
      lateAnswers.join(", "),
    );
    assert.equal(sink.received.length, 1);
    assert.equal(sink.received[0]?.status, 200);
    assert.ok(!sink.received[0]?.aborted, "the in-flight delivery was answered, not cut off");
    // talkgate is stopped: its rows say what it recorded.
    const rows = new Map(
      (
        await readRows<{ message_id: string; state: string }>(database, {
          sqlite: "SELECT e.message_id, d.state FROM deliveries d JOIN events e ON e.id = d.event_id",
          postgres: "SELECT message_id, state FROM events WHERE state IS NOT NULL",
        })
      ).map((row) => [row.message_id, row.state]),
    );
    assert.deepEqual(
      events.map((e) => rows.get(e.message.id)),
      ["delivered", "pending", "pending"],
      "the finished delivery was recorded; the rest wait",
    );
    assert.equal(
      await readCount(database, "SELECT count(*) AS n FROM events WHERE message_id = $1", late.message.id),
      0,
      "nothing stored after SIGTERM",
    );

    sink.respondWith(undefined);
    serve = await spawnServe(configPath);
    assert.equal((await emulator.sendWebhook(SENDER_KEY, [ev.redelivered(late)])).status, 200);
    await sink.waitFor((a) => a.length >= 4);
    await sleep(300);
    assert.deepEqual(
      sink.received.map((r) => (r.body as PartnerPayload).content.text),
      ["m0", "m1", "m2", "during shutdown"],
      "m0 was not delivered again",
    );
    serve.child.kill("SIGTERM");
    assert.deepEqual(await serve.exited, { code: 0, signal: null });
    console.log(
      `# SIGTERM with a 1.5 s delivery in flight: exit 0 after ${stopMs} ms, delivery recorded, ` +
        `${lateAnswers.length} webhooks during shutdown answered ${[...new Set(lateAnswers)].join("/")}`,
    );
  });

  test("SIGTERM with a partner API call in flight: the call is answered, then talkgate exits promptly", async () => {
    const { emulator, configPath, url } = await serveEnvironment();
    const serve = await spawnServe(configPath);
    cleanups.push(() => serve.kill());
    emulator.setDelay("/v2/bot/message/push", 1_000);
    // A partner's ordinary HTTP client (fetch: keep-alive) sends a message; LINE takes a second to answer.
    const call = fetch(`${url}/line/message/send`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        sender_key: SENDER_KEY,
        user_key: ev.randomUserId(),
        serial_number: "sigterm-in-flight",
        messages: [{ type: "text", text: "sent while talkgate stops" }],
      }),
    });
    await sleep(300);
    const termAt = Date.now();
    serve.child.kill("SIGTERM");
    const response = await call;
    const answeredMs = Date.now() - termAt;
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { code: string }).code, "0");
    const exit = await Promise.race([serve.exited, sleep(10_000).then(() => null)]);
    const exitMs = Date.now() - termAt;
    console.log(
      `# SIGTERM with a partner API call in flight: answered after ${answeredMs} ms ` +
        `(connection: ${response.headers.get("connection")}, keep-alive: ${response.headers.get("keep-alive")}); ` +
        `${exit ? `exit ${exit.code} after ${exitMs} ms` : `still running ${exitMs} ms after SIGTERM`}`,
    );
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      `exited within 10 s of SIGTERM (the call was answered ${answeredMs} ms after it)`,
    );
  });
});

/** A partner that answers 200 as soon as it has a request's head, never reading its body. */
async function startRudePartner(mode: "close" | "keep") {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let head = "";
    const onData = (chunk: Buffer) => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.pause(); // the body stays unread
      requests.push(/\r\nwebhook-id: *([^\r]*)/i.exec(head.slice(0, end))?.[1] ?? "");
      const body = '{"code":"0"}';
      socket.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
          `${mode === "close" ? "connection: close\r\n" : ""}\r\n${body}`,
        () => {
          if (mode === "close") socket.destroy();
        },
      );
    };
    socket.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

type ProxyFault = { kind: "reset" } | { kind: "stall"; afterBytes: number };

/**
 * An HTTP proxy in front of the emulator's content API: counts content downloads in flight, and can drop
 * a request's connection before any answer, or pass part of a body and then stall until the client leaves.
 */
async function startContentProxy() {
  const faults = new Map<string, { fault: ProxyFault; left: number }>();
  const proxy = {
    url: "",
    target: "",
    inFlight: 0,
    maxInFlight: 0,
    resets: 0,
    stalls: [] as Array<{ messageId: string; heldMs: number }>,
    fault(messageId: string, fault: ProxyFault, times = 1) {
      faults.set(messageId, { fault, left: times });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createHttpServer((req, res) => {
    const id = /^\/v2\/bot\/message\/([^/]+)\/content$/.exec((req.url ?? "").split("?")[0] ?? "")?.[1];
    let fault: ProxyFault | undefined;
    if (id !== undefined) {
      proxy.inFlight++;
      proxy.maxInFlight = Math.max(proxy.maxInFlight, proxy.inFlight);
      res.once("close", () => proxy.inFlight--);
      const rule = faults.get(id);
      if (rule && rule.left > 0) {
        rule.left--;
        fault = rule.fault;
      }
    }
    if (fault?.kind === "reset") {
      proxy.resets++;
      req.socket.destroy();
      return;
    }
    const upstream = httpRequest(
      `${proxy.target}${req.url}`,
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (fault?.kind !== "stall" || up.statusCode !== 200) {
          up.pipe(res);
          return;
        }
        const { afterBytes } = fault;
        let passed = 0;
        up.on("data", (chunk: Buffer) => {
          if (passed >= afterBytes) return;
          res.write(chunk.subarray(0, afterBytes - passed));
          passed += Math.min(chunk.length, afterBytes - passed);
          if (passed < afterBytes) return;
          up.destroy(); // and say nothing more until the client gives up
          const since = Date.now();
          res.once("close", () => proxy.stalls.push({ messageId: id ?? "", heldMs: Date.now() - since }));
        });
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  proxy.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return proxy;
}

/** `talkgate serve` as a child process, ready; with its exit and a way to wait for a line on stderr. */
async function spawnServe(configPath: string) {
  const child: ChildProcess = spawn(process.execPath, ["bin/talkgate.js", "serve", "--config", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const stdout = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const stderr = createInterface({ input: child.stderr as NodeJS.ReadableStream });
  const stderrLines: string[] = [];
  const stderrListeners = new Set<() => void>();
  stderr.on("line", (line) => {
    stderrLines.push(line);
    for (const listener of stderrListeners) listener();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("talkgate was not ready within 20 s")), 20_000);
    void exited.then(({ code }) =>
      reject(new Error(`talkgate exited with ${code}: ${stderrLines.join("\n")}`)),
    );
    stdout.on("line", (line) => {
      if (!line.includes('"talkgate:ready"')) return;
      clearTimeout(timer);
      resolve();
    });
  });
  return {
    child,
    exited,
    stderrLine(pattern: RegExp): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (!stderrLines.some((line) => pattern.test(line))) return;
          stderrListeners.delete(check);
          resolve();
        };
        stderrListeners.add(check);
        check();
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
