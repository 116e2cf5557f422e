// Scenario 3, delivery: a backlog of events over many conversations already in talkgate's outbox, drained to a
// fast partner sink (in this process, checking each conversation's order) from the moment talkgate starts. Run
// once per database; the section shows them side by side.
import { join } from "node:path";
import { textEvent, userSource } from "../emulator/events.ts";
import { readEventFacts } from "../src/core/line-event.ts";
import { SENDER_KEY } from "../test/support/stack.ts";
import type { DatabaseCost, ScenarioDatabase } from "./databases.ts";
import { userId } from "./load.ts";
import type { Section } from "./report.ts";
import { startSink } from "./sink-server.ts";
import { fmt, sleep, startTalkgateChild, stopChild, treeCpuSeconds } from "./support.ts";

export interface DrainOptions {
  dir: string;
  events: number;
  conversations: number;
  talkgateFlags: readonly string[];
  /** A fresh database for talkgate. */
  database: ScenarioDatabase;
  /** The database server's process (PostgreSQL's postmaster), whose CPU is counted apart. */
  databasePid?: number;
}

export interface DrainResult {
  label: string;
  seconds: number;
  perSecond: number;
  delivered: number;
  orderViolations: number;
  repeats: number;
  /** talkgate's and the database server's CPU while draining (cores), and talkgate's CPU per delivery (µs). */
  cpu: number;
  databaseCpu: number | null;
  cpuPerEventUs: number;
  readyMs: number;
  /** What the database did from talkgate's start to its stop (PostgreSQL only). */
  cost: DatabaseCost | null;
}

const WAIT_MS = 120_000;
const BATCH = 500;

/** The backlog, written through the store's own intake (as the webhook route does), nothing delivered yet. */
async function prefill(database: ScenarioDatabase, events: number, conversations: number): Promise<void> {
  const store = await database.openStore();
  const start = Date.now();
  for (let i = 0; i < events; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(events, i + BATCH); j++) {
      // Event j is message number floor(j / conversations) of conversation j % conversations.
      const event = textEvent(userSource(userId(j % conversations)), `d ${Math.floor(j / conversations)}`, {
        timestamp: start + j,
      });
      const receivedAt = Date.now();
      batch.push({
        facts: readEventFacts(event, receivedAt),
        body: JSON.stringify(event),
        forward: true,
        media: null,
      });
    }
    await store.ingest({
      senderKey: SENDER_KEY,
      partnerId: "partner",
      receivedAt: Date.now(),
      events: batch,
      mediaWaitMs: 0,
    });
  }
  await store.close();
}

export async function runDrain(options: DrainOptions): Promise<DrainResult> {
  const { database } = options;
  const t = performance.now();
  await prefill(database, options.events, options.conversations);
  console.log(
    `delivery/${database.label}: ${fmt(options.events)} events over ${fmt(options.conversations)} conversations ` +
      `prefilled in ${fmt((performance.now() - t) / 1000, 1)} s; draining…`,
  );
  const next = new Map<string, number>();
  let orderViolations = 0;
  let delivered = 0;
  let lastAt = 0;
  const sink = await startSink(0, (body) => {
    lastAt = performance.now();
    const payload = JSON.parse(body.toString("utf8")) as { user_key: string; content: { text?: string } };
    const seq = Number(payload.content.text?.slice(2));
    const expected = next.get(payload.user_key) ?? 0;
    if (seq === expected) {
      delivered++;
      next.set(payload.user_key, seq + 1);
    } else if (seq > expected) orderViolations++; // an event overtook one before it (a repeat is seq < expected)
  });
  const costOf = await database.costMeter();
  const tg = await startTalkgateChild({
    name: `talkgate (delivery, ${database.label})`,
    dir: join(options.dir, "talkgate"),
    lineUrl: sink.url,
    partnerUrl: sink.url,
    database: database.config,
    nodeFlags: options.talkgateFlags,
  });
  const ready = performance.now();
  const cpuBefore = treeCpuSeconds([tg.child.proc.pid]);
  const dbPids = [options.databasePid];
  const dbCpuBefore = options.databasePid === undefined ? null : treeCpuSeconds(dbPids);
  try {
    while (sink.stats().received < options.events && performance.now() - ready < WAIT_MS) await sleep(20);
    const cpu = (treeCpuSeconds([tg.child.proc.pid]) ?? 0) - (cpuBefore ?? 0);
    const dbCpu = dbCpuBefore === null ? null : (treeCpuSeconds(dbPids) ?? 0) - dbCpuBefore;
    const seconds = ((lastAt || performance.now()) - ready) / 1000;
    const stats = sink.stats();
    await stopChild(tg.child, 15_000);
    const cost = costOf ? await costOf() : null;
    return {
      label: database.label,
      seconds,
      perSecond: delivered / seconds,
      delivered,
      orderViolations,
      repeats: stats.received - stats.unique,
      cpu: cpu / seconds,
      databaseCpu: dbCpu === null ? null : dbCpu / seconds,
      cpuPerEventUs: (cpu * 1e6) / Math.max(1, stats.received),
      readyMs: tg.readyMs,
      cost,
    };
  } finally {
    await stopChild(tg.child, 15_000);
    await sink.close();
  }
}

/** The delivery section: one row per database. */
export function drainSection(
  results: readonly DrainResult[],
  options: Pick<DrainOptions, "events" | "conversations">,
): Section {
  return {
    title: "Delivery",
    lines: [
      `Backlog: ${fmt(options.events)} text message events over ${fmt(options.conversations)} conversations ` +
        `(${fmt(options.events / options.conversations)} each), written through talkgate's own store intake into a ` +
        "fresh database before talkgate starts; then `bin/talkgate.js serve` (default settings) delivers them to a " +
        "fast sink in the bench process that checks each conversation gets its events in order. Timed from " +
        `talkgate ready to the last delivery (start to ready took ${results.map((r) => `${fmt(r.readyMs / 1000, 2)} s on ${r.label}`).join(", ")}, ` +
        "not counted).",
      "",
      "| database | events | drained in s | events/s | in order | order violations | repeats | talkgate CPU (cores) | CPU µs/event | PostgreSQL CPU (cores) |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...results.map(
        (r) =>
          `| ${r.label} | ${fmt(options.events)} | ${fmt(r.seconds, 2)} | ${fmt(r.perSecond)} | ${fmt(r.delivered)} | ` +
          `${fmt(r.orderViolations)} | ${fmt(r.repeats)} | ${fmt(r.cpu, 2)} | ${fmt(r.cpuPerEventUs)} | ` +
          `${r.databaseCpu === null ? "–" : fmt(r.databaseCpu, 2)} |`,
      ),
    ],
  };
}
