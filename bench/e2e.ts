// Scenario 2, end to end: webhooks at a fixed rate over many conversations into talkgate, timed until the partner
// (a sink in this process, on the same clock) has each event: webhook due → payload received.
import { join } from "node:path";
import { ms, statusList } from "./intake.ts";
import { buildPool, Cursor, type Latencies, latencies, paced } from "./load.ts";
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
}

export interface E2eResult {
  latency: Latencies;
  missing: number;
  orderViolations: number;
  section: Section;
}

const WAIT_MS = 30_000;

export async function runE2e(options: E2eOptions): Promise<E2eResult> {
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
  const tg = await startTalkgateChild({
    name: "talkgate (e2e)",
    dir: join(options.dir, "talkgate"),
    lineUrl: sink.url,
    partnerUrl: sink.url,
    nodeFlags: options.talkgateFlags,
  });
  try {
    console.log(
      `e2e: ${options.rate}/s over ${options.conversations} conversations for ${options.durationS} s…`,
    );
    const cursor = new Cursor(pool);
    const target = `${tg.url}/line/webhook/1656168303`;
    const pacing = { rate: options.rate, connections: 50, serverPid: tg.child.proc.pid };
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
    const latency = latencies(e2e);
    const stages = stageP99s(await (await fetch(`${tg.url}/metrics`)).text());
    await stopChild(tg.child, 15_000);
    const lines = [
      `Load: ${fmt(options.rate)} webhooks/s (open loop, one text message event each) over ` +
        `${fmt(options.conversations)} conversations, ${options.warmupS} s warm-up then ${options.durationS} s ` +
        `measured (${fmt(measured.length)} events), into \`bin/talkgate.js serve\` (default settings); the partner ` +
        "is a sink in the bench process, so both ends read one clock. Latency: from when the webhook was due to " +
        "when the sink had the partner payload (it includes LINE's acknowledgement, the durable commit, the " +
        "claim, the payload build and the signed POST).",
      "",
      "| events | p50 ms | p99 ms | p99.9 ms | max ms | mean ms | acknowledgement p99 ms | answers | missing | order violations | repeats | talkgate CPU |",
      "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
      `| ${fmt(latency.count)} | ${ms(latency.p50)} | ${ms(latency.p99)} | ${ms(latency.p999)} | ${ms(latency.max)} | ` +
        `${ms(latency.mean)} | ${ms(run.ack.p99)} | ${statusList(run.statuses)} | ${fmt(missing)} | ` +
        `${fmt(orderViolations)} | ${fmt(repeats)} | ${run.cpu.server === null ? "n/a" : fmt(run.cpu.server, 2)} |`,
      "",
      "Where the time goes, by talkgate's own `talkgate_stage_seconds` histogram over the whole run (warm-up " +
        "included; the 99th percentile read off its buckets, so an upper bound): commit = a webhook's events " +
        "stored durably, queue = a delivery due → its attempt, claim = taking due conversations, post = the " +
        "partner's answer.",
      "",
      "| stage | samples | p99 ms (≤) |",
      "|---|---:|---:|",
      ...stages.map((s) => `| ${s.stage} | ${fmt(s.count)} | ${s.p99 === null ? "n/a" : ms(s.p99)} |`),
    ];
    return { latency, missing, orderViolations, section: { title: "End to end", lines } };
  } finally {
    await stopChild(tg.child, 15_000);
    await sink.close();
  }
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
