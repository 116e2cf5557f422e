// Scenario 3, delivery: a backlog of events over many conversations already in talkgate's outbox, drained to a
// fast partner sink (in this process, checking each conversation's order) from the moment talkgate starts.
import { join } from "node:path";
import { textEvent, userSource } from "../emulator/events.ts";
import { readEventFacts } from "../src/core/line-event.ts";
import { openSqliteStore } from "../src/store/sqlite/sqlite-store.ts";
import { SENDER_KEY } from "../test/support/stack.ts";
import { userId } from "./load.ts";
import type { Section } from "./report.ts";
import { startSink } from "./sink-server.ts";
import { cpuSeconds, fmt, sleep, startTalkgateChild, stopChild } from "./support.ts";

export interface DrainOptions {
  dir: string;
  events: number;
  conversations: number;
  talkgateFlags: readonly string[];
}

export interface DrainResult {
  perSecond: number;
  delivered: number;
  orderViolations: number;
  section: Section;
}

const WAIT_MS = 120_000;
const BATCH = 500;

/** The backlog, written through the store's own intake (as the webhook route does), nothing delivered yet. */
async function prefill(dbPath: string, events: number, conversations: number): Promise<void> {
  const store = openSqliteStore(dbPath);
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
  const dir = join(options.dir, "talkgate");
  const t = performance.now();
  await prefill(join(dir, "talkgate.db"), options.events, options.conversations);
  console.log(
    `delivery: ${fmt(options.events)} events over ${fmt(options.conversations)} conversations prefilled in ` +
      `${fmt((performance.now() - t) / 1000, 1)} s; draining…`,
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
  const tg = await startTalkgateChild({
    name: "talkgate (delivery)",
    dir,
    lineUrl: sink.url,
    partnerUrl: sink.url,
    nodeFlags: options.talkgateFlags,
  });
  const ready = performance.now();
  const cpuBefore = cpuSeconds(tg.child.proc.pid);
  try {
    while (sink.stats().received < options.events && performance.now() - ready < WAIT_MS) await sleep(20);
    const cpu = (cpuSeconds(tg.child.proc.pid) ?? 0) - (cpuBefore ?? 0);
    const seconds = ((lastAt || performance.now()) - ready) / 1000;
    const perSecond = delivered / seconds;
    const stats = sink.stats();
    const lines = [
      `Backlog: ${fmt(options.events)} text message events over ${fmt(options.conversations)} conversations ` +
        `(${fmt(options.events / options.conversations)} each), written through the SQLite store's intake before ` +
        "talkgate starts; then `bin/talkgate.js serve` (default settings) delivers them to a fast sink in the bench " +
        "process that checks each conversation gets its events in order. Timed from talkgate ready to the last " +
        `delivery (start to ready took ${fmt(tg.readyMs / 1000, 2)} s, not counted).`,
      "",
      "| events | drained in s | events/s | in order | order violations | repeats | talkgate CPU (cores) | CPU µs/event |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|",
      `| ${fmt(options.events)} | ${fmt(seconds, 2)} | ${fmt(perSecond)} | ${fmt(delivered)} | ${fmt(orderViolations)} | ` +
        `${fmt(stats.received - stats.unique)} | ${fmt(cpu / seconds, 2)} | ${fmt((cpu * 1e6) / Math.max(1, stats.received))} |`,
    ];
    return { perSecond, delivered, orderViolations, section: { title: "Delivery", lines } };
  } finally {
    await stopChild(tg.child, 15_000);
    await sink.close();
  }
}
