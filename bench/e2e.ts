// Scenario 2, end to end: webhooks at a fixed rate over many conversations into talkgate, timed until the partner
// (a sink in this process, on the same clock) has each event: webhook due → payload received. Run once per
// database; the section shows them side by side.
import { join } from "node:path";
import { SENDER_KEY } from "../test/support/stack.ts";
import type { DatabaseCost, ScenarioDatabase } from "./databases.ts";
import { ms, statusList } from "./intake.ts";
import { buildPool, Cursor, type Latencies, latencies, type PacedRun, paced } from "./load.ts";
import type { Section } from "./report.ts";
import { startSink } from "./sink-server.ts";
import { fmt, sleep, startTalkgateChild, stopChild } from "./support.ts";

export interface E2eOptions {
  dir: string;
  rate: number;
  conversations: number;
  durationS: number;
  warmupS: number;
  talkgateFlags: readonly string[];
  /** A fresh database for talkgate. */
  database: ScenarioDatabase;
  /** The database server's process (PostgreSQL's postmaster), whose CPU is counted apart. */
  databasePid?: number;
}

export interface E2eResult {
  label: string;
  /** Events sent in the measured stretch. */
  measured: number;
  latency: Latencies;
  run: PacedRun;
  missing: number;
  orderViolations: number;
  repeats: number;
  stages: ReturnType<typeof stageP99s>;
  /** Events stored (warm-up included) and what the database did for them (PostgreSQL only). */
  stored: number;
  cost: DatabaseCost | null;
}

const WAIT_MS = 30_000;

export async function runE2e(options: E2eOptions): Promise<E2eResult> {
  const { database } = options;
  const warmupCount = options.rate * options.warmupS;
  const total = warmupCount + options.rate * options.durationS;
  const pool = buildPool(total, options.conversations, (i) => `e2e ${i}`);
  const arrivedAt = new Float64Array(total).fill(Number.NaN);
  // Per conversation, the index of the last event received: each must come after the one before it.
  const lastSeen = new Map<string, number>();
  let orderViolations = 0;
  let repeats = 0;
  const sink = await startSink(0, (body) => {
    const at = performance.now();
    const payload = JSON.parse(body.toString("utf8")) as { user_key: string; content: { text?: string } };
    const i = Number(payload.content.text?.slice(4));
    if (!Number.isInteger(i) || i < 0 || i >= total) return;
    if (!Number.isNaN(arrivedAt[i] as number)) repeats++;
    else arrivedAt[i] = at;
    const last = lastSeen.get(payload.user_key) ?? -1;
    if (i < last) orderViolations++;
    else lastSeen.set(payload.user_key, i);
  });
  const costOf = await database.costMeter();
  const tg = await startTalkgateChild({
    name: `talkgate (e2e, ${database.label})`,
    dir: join(options.dir, "talkgate"),
    lineUrl: sink.url,
    partnerUrl: sink.url,
    database: database.config,
    nodeFlags: options.talkgateFlags,
  });
  try {
    console.log(
      `e2e/${database.label}: ${options.rate}/s over ${options.conversations} conversations for ${options.durationS} s…`,
    );
    const cursor = new Cursor(pool);
    const target = `${tg.url}/line/webhook/${SENDER_KEY}`;
    const pids = {
      server: [tg.child.proc.pid],
      database: options.databasePid === undefined ? undefined : [options.databasePid],
    };
    const pacing = { rate: options.rate, connections: 50, pids };
    await paced(target, cursor, { ...pacing, durationS: options.warmupS });
    const run = await paced(target, cursor, { ...pacing, durationS: options.durationS });
    const deadline = performance.now() + WAIT_MS;
    const measured = run.sent;
    while (measured.some((s) => Number.isNaN(arrivedAt[s.index] as number)) && performance.now() < deadline)
      await sleep(50);
    const e2e: number[] = [];
    let missing = 0;
    for (const { index, dueAt } of measured) {
      const at = arrivedAt[index] as number;
      if (Number.isNaN(at)) missing++;
      else e2e.push(at - dueAt);
    }
    const stages = stageP99s(await (await fetch(`${tg.url}/metrics`)).text());
    await stopChild(tg.child, 15_000);
    const cost = costOf ? await costOf() : null;
    return {
      label: database.label,
      measured: measured.length,
      latency: latencies(e2e),
      run,
      missing,
      orderViolations,
      repeats,
      stages,
      stored: await database.eventCount(),
      cost,
    };
  } finally {
    await stopChild(tg.child, 15_000);
    await sink.close();
  }
}

/** The end-to-end section: one row per database, then where the time went in each. */
export function e2eSection(
  results: readonly E2eResult[],
  options: Pick<E2eOptions, "rate" | "conversations" | "warmupS" | "durationS">,
): Section {
  const cpu = (n: number | null) => (n === null ? "–" : fmt(n, 2));
  return {
    title: "End to end",
    lines: [
      `Load: ${fmt(options.rate)} webhooks/s (open loop, one text message event each) over ` +
        `${fmt(options.conversations)} conversations, ${options.warmupS} s warm-up then ${options.durationS} s ` +
        `measured (${fmt(results[0]?.measured ?? 0)} events), into \`bin/talkgate.js serve\` (default settings) on ` +
        "each database in turn, a fresh one each; the partner is a sink in the bench process, so both ends read one " +
        "clock. Latency: from when the webhook was due to when the sink had the partner payload (it includes LINE's " +
        "acknowledgement, the durable commit, the claim, the payload build and the signed POST).",
      "",
      "| database | events | p50 ms | p99 ms | p99.9 ms | max ms | mean ms | acknowledgement p99 ms | answers | missing | order violations | repeats | talkgate CPU | PostgreSQL CPU |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
      ...results.map(
        (r) =>
          `| ${r.label} | ${fmt(r.latency.count)} | ${ms(r.latency.p50)} | ${ms(r.latency.p99)} | ` +
          `${ms(r.latency.p999)} | ${ms(r.latency.max)} | ${ms(r.latency.mean)} | ${ms(r.run.ack.p99)} | ` +
          `${statusList(r.run.statuses)} | ${fmt(r.missing)} | ${fmt(r.orderViolations)} | ${fmt(r.repeats)} | ` +
          `${cpu(r.run.cpu.server)} | ${cpu(r.run.cpu.database)} |`,
      ),
      "",
      "Where the time goes, by talkgate's own `talkgate_stage_seconds` histogram over the whole run (warm-up " +
        "included; the 99th percentile read off its buckets, so an upper bound): commit = a webhook's events " +
        "stored durably, queue = a delivery due → its attempt, claim = taking due conversations, post = the " +
        "partner's answer.",
      "",
      `| stage | ${results.map((r) => `${r.label} samples | ${r.label} p99 ms (≤)`).join(" | ")} |`,
      `|---|${results.map(() => "---:|---:|").join("")}`,
      ...["commit", "queue", "claim", "post"].map(
        (stage) =>
          `| ${stage} | ${results
            .map((r) => {
              const s = r.stages.find((x) => x.stage === stage);
              return `${fmt(s?.count ?? 0)} | ${s?.p99 === null || s === undefined ? "n/a" : ms(s.p99)}`;
            })
            .join(" | ")} |`,
      ),
    ],
  };
}

/** Each stage's sample count and 99th percentile (the upper bound of its bucket) from /metrics text. */
export function stageP99s(metrics: string): Array<{ stage: string; count: number; p99: number | null }> {
  const buckets = new Map<string, Array<[number, number]>>();
  for (const match of metrics.matchAll(
    /^talkgate_stage_seconds_bucket\{le="([^"]+)",stage="(\w+)"\} (\d+)/gm,
  )) {
    const [, le, stage, count] = match as unknown as [string, string, string, string];
    const list = buckets.get(stage) ?? [];
    list.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le) * 1000, Number(count)]);
    buckets.set(stage, list);
  }
  return ["commit", "queue", "claim", "post"].map((stage) => {
    const list = (buckets.get(stage) ?? []).sort((a, b) => a[0] - b[0]);
    const count = list.at(-1)?.[1] ?? 0;
    const bound = list.find(([, n]) => n >= count * 0.99)?.[0] ?? null;
    return { stage, count, p99: count === 0 || bound === Number.POSITIVE_INFINITY ? null : bound };
  });
}
