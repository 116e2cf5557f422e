// Scenario 1, intake: signed unique webhooks from 1,000 users against each server in turn, each first at a
// fixed 1,000 webhooks/s (open loop) and then at saturation (autocannon):
//   bare     — node:http that checks the HMAC and parses the JSON: the ceiling on this machine;
//   express  — the official @line/bot-sdk middleware() on Express, answering 200, storing nothing;
//   talkgate — `bin/talkgate.js serve`, answering only after a durable commit, delivering to a sink meanwhile:
//              once per database setup (one instance on SQLite, one on PostgreSQL, two on one PostgreSQL
//              database with the load spread over both).
// Afterwards: every event talkgate acknowledged is in its database, and how fast its outbox drained.
import { join } from "node:path";
import { CHANNEL_SECRET, SENDER_KEY } from "../test/support/stack.ts";
import type { DatabaseCost, ScenarioDatabase } from "./databases.ts";
import {
  buildPool,
  Cursor,
  type MeteredPids,
  type PacedRun,
  type Pool,
  paced,
  type SaturationRun,
  saturate,
} from "./load.ts";
import type { Section } from "./report.ts";
import {
  type Child,
  fmt,
  freePort,
  MiB,
  ROOT,
  rssPeak,
  sleep,
  startChild,
  startTalkgateChild,
  stopChild,
  type TalkgateChild,
  waitForHttp,
} from "./support.ts";

/** One way of running talkgate: its row name, how many instances, on what database. */
export interface TalkgateSetup {
  /** The row's name, e.g. "talkgate, SQLite". */
  name: string;
  /** What the report says of it. */
  description: string;
  instances: number;
  /** A fresh database for it (`dir` is its data directory). */
  database: (dir: string) => Promise<ScenarioDatabase>;
  /** The database server's process (PostgreSQL's postmaster), whose CPU is counted apart. */
  databasePid?: number;
}

export interface IntakeOptions {
  dir: string;
  connections: number;
  warmupS: number;
  durationS: number;
  fixedRate: number;
  poolSize: number;
  talkgateFlags: readonly string[];
  talkgates: readonly TalkgateSetup[];
}

export interface ServerRun {
  name: string;
  fixedWarmup: PacedRun;
  fixed: PacedRun;
  saturation: SaturationRun;
  reused: number;
}

/** A talkgate setup's run, what it stored and delivered, and what it cost its database. */
export interface TalkgateRun extends ServerRun {
  setup: TalkgateSetup;
  database: ScenarioDatabase;
  acknowledged: number;
  stored: number;
  durable: boolean;
  states: Array<{ state: string; n: number }>;
  sink: { received: number; unique: number };
  /** Events stored but not delivered when the saturation run ended, and how long they took to drain. */
  backlog: number;
  drain: { seconds: number; drained: boolean };
  /** Peak RSS of the largest instance (bytes): during the fixed-rate run and during saturation. */
  rssFixed: number;
  rssSaturation: number;
  exitCodes: Array<number | null | undefined>;
  /** What the database did over the whole run (PostgreSQL only). */
  cost: DatabaseCost | null;
}

export interface IntakeResult {
  bare: ServerRun;
  express: ServerRun;
  talkgate: TalkgateRun[];
  /** Every talkgate setup stored every webhook it acknowledged. */
  durable: boolean;
  section: Section;
}

const USERS = 1_000;
const FIXED_WARMUP_S = 1;
const DRAIN_WAIT_MS = 60_000;
const WEBHOOK_PATH = `/line/webhook/${SENDER_KEY}`;

async function measure(
  name: string,
  urls: readonly string[],
  pool: Pool,
  options: IntakeOptions,
  pids: MeteredPids,
  between?: () => Promise<void>,
): Promise<ServerRun> {
  const cursor = new Cursor(pool);
  const targets = urls.map((url) => `${url}${WEBHOOK_PATH}`);
  console.log(`intake/${name}: ${options.fixedRate}/s fixed rate, then saturation…`);
  const fixedOptions = { rate: options.fixedRate, connections: options.connections, pids };
  const fixedWarmup = await paced(targets, cursor, { ...fixedOptions, durationS: FIXED_WARMUP_S });
  const fixed = await paced(targets, cursor, { ...fixedOptions, durationS: options.durationS });
  await between?.();
  const saturation = await saturate(targets, cursor, {
    connections: options.connections,
    warmupS: options.warmupS,
    durationS: options.durationS,
    pids,
  });
  return { name, fixedWarmup, fixed, saturation, reused: cursor.reused };
}

async function startPlain(name: string, script: string, dir: string): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const child = startChild(
    name,
    [join(ROOT, "bench", script), String(port), CHANNEL_SECRET],
    join(dir, `${name}.log`),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, child);
  return { child, url };
}

/** One talkgate setup: its instances on a fresh database, a sink of its own, measured, drained and checked. */
async function runTalkgate(setup: TalkgateSetup, pool: Pool, options: IntakeOptions): Promise<TalkgateRun> {
  const dir = join(options.dir, setup.name.replace(/\W+/g, "-").replace(/^-|-$/g, ""));
  // talkgate's partner (and LINE profile API): a fast sink in its own process, so its CPU is counted apart.
  const sinkPort = await freePort();
  const sinkChild = startChild(
    "sink",
    [join(ROOT, "bench", "sink-server.ts"), String(sinkPort)],
    join(options.dir, `sink-${sinkPort}.log`),
  );
  const sinkUrl = `http://127.0.0.1:${sinkPort}`;
  await waitForHttp(`${sinkUrl}/_stats`, sinkChild);
  const sinkStats = async () =>
    (await (await fetch(`${sinkUrl}/_stats`)).json()) as { received: number; unique: number };
  const database = await setup.database(join(dir, "talkgate-1"));
  const costOf = await database.costMeter();
  const instances: TalkgateChild[] = [];
  for (let i = 1; i <= setup.instances; i++)
    instances.push(
      await startTalkgateChild({
        name: setup.instances > 1 ? `talkgate ${i}` : "talkgate",
        dir: join(dir, `talkgate-${i}`),
        lineUrl: sinkUrl,
        partnerUrl: sinkUrl,
        database: database.config,
        nodeFlags: options.talkgateFlags,
      }),
    );
  const waitDrained = async (): Promise<{ count: number; seconds: number; drained: boolean }> => {
    const started = performance.now();
    const from = (await sinkStats()).unique;
    const target = await database.eventCount();
    let now = from;
    while (now < target && performance.now() - started < DRAIN_WAIT_MS) {
      await sleep(100);
      now = (await sinkStats()).unique;
    }
    return { count: now - from, seconds: (performance.now() - started) / 1000, drained: now >= target };
  };
  const peaks = () => instances.map((tg) => rssPeak(tg.child.proc.pid));
  const largest = (stops: Array<() => number>) => Math.max(...stops.map((stop) => stop()));
  let peak = peaks();
  let rssFixed = 0;
  const pids = {
    server: instances.map((tg) => tg.child.proc.pid),
    helper: [sinkChild.proc.pid],
    database: setup.databasePid === undefined ? undefined : [setup.databasePid],
  };
  const urls = instances.map((tg) => tg.url);
  const run = await measure(setup.name, urls, pool, options, pids, async () => {
    rssFixed = largest(peak);
    await waitDrained(); // the saturation run starts with an empty outbox
    peak = peaks();
  });
  const rssSaturation = largest(peak);
  const backlog = (await database.eventCount()) - (await sinkStats()).unique;
  const drain = await waitDrained();
  await Promise.all(instances.map((tg) => stopChild(tg.child, 15_000)));
  const cost = costOf ? await costOf() : null;
  const sink = await sinkStats();
  await stopChild(sinkChild);
  const stored = await database.eventCount();
  const acknowledged =
    answered2xx(run.fixedWarmup) +
    answered2xx(run.fixed) +
    run.saturation.warmup["2xx"] +
    run.saturation.main["2xx"];
  return {
    ...run,
    setup,
    database,
    acknowledged,
    stored,
    durable: stored >= acknowledged,
    states: await database.deliveryStates(),
    sink,
    backlog,
    drain,
    rssFixed,
    rssSaturation,
    exitCodes: instances.map((tg) => tg.child.exitCode),
    cost,
  };
}

export async function runIntake(options: IntakeOptions): Promise<IntakeResult> {
  const t = performance.now();
  const pool = buildPool(options.poolSize, USERS, (i) => `benchmark message ${i}`);
  console.log(
    `intake: pre-signed ${fmt(pool.size)} distinct webhook bodies in ${fmt((performance.now() - t) / 1000, 1)} s`,
  );
  const pids = (child: Child) => ({ server: [child.proc.pid] });

  const bareServer = await startPlain("bare", "bare-server.ts", options.dir);
  const bare = await measure("bare", [bareServer.url], pool, options, pids(bareServer.child));
  await stopChild(bareServer.child);

  const expressServer = await startPlain("express", "express-server.ts", options.dir);
  const express = await measure("express", [expressServer.url], pool, options, pids(expressServer.child));
  await stopChild(expressServer.child);

  const talkgate: TalkgateRun[] = [];
  for (const setup of options.talkgates) talkgate.push(await runTalkgate(setup, pool, options));

  const runs: ServerRun[] = [bare, express, ...talkgate];
  const lines: string[] = [];
  const say = (line = "") => lines.push(line);
  say(
    `Load: POST ${WEBHOOK_PATH}, each request a distinct signed body (one text message event, ${fmt(USERS)} users, ` +
      `unique webhookEventId; ${fmt(pool.size)} pre-signed), loopback, ${options.connections} connections. ` +
      `Each server in turn: ${FIXED_WARMUP_S} s at ${fmt(options.fixedRate)}/s as warm-up, ${options.durationS} s ` +
      `at a fixed ${fmt(options.fixedRate)}/s (open loop, latency counted from when each request was due), then ` +
      `autocannon at saturation (${options.warmupS} s warm-up, ${options.durationS} s measured).`,
  );
  say();
  say("- bare: `bench/bare-server.ts`, node:http: reads the body, checks x-line-signature, JSON.parse, 200");
  say(
    "- express: `bench/express-server.ts`, Express 5 + `@line/bot-sdk` `middleware({ channelSecret })`, 200, stores nothing",
  );
  for (const setup of options.talkgates) say(`- ${setup.name}: ${setup.description}`);
  say();
  say("**Saturation** (autocannon):");
  say();
  say(
    "| server | req/s | p50 ms | p99 ms | max ms | non-2xx | errors | server CPU | PostgreSQL CPU | load generator CPU | machine busy (steal) |",
  );
  say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const run of runs) {
    const r = run.saturation.main;
    const cpu = run.saturation.cpu;
    say(
      `| ${run.name} | ${fmt(r.requests.mean)} | ${r.latency.p50} | ${r.latency.p99} | ${r.latency.max} | ` +
        `${fmt(r.non2xx)} | ${fmt(r.errors + r.timeouts)} | ${cores(cpu.server)} | ${dash(cpu.database)} | ` +
        `${cores(cpu.bench)} | ` +
        `${cpu.machine ? `${cores(cpu.machine.busyCores)} (${fmt(100 * cpu.machine.steal, 1)}%)` : "n/a"} |`,
    );
  }
  say();
  say(`**Fixed rate** (${fmt(options.fixedRate)}/s for ${options.durationS} s, open loop):`);
  say();
  say("| server | sent/s | p50 ms | p99 ms | p99.9 ms | max ms | answers | server CPU | PostgreSQL CPU |");
  say("|---|---:|---:|---:|---:|---:|---|---:|---:|");
  for (const run of runs) {
    const f = run.fixed;
    say(
      `| ${run.name} | ${fmt(f.achievedRate)} | ${ms(f.ack.p50)} | ${ms(f.ack.p99)} | ${ms(f.ack.p999)} | ` +
        `${ms(f.ack.max)} | ${statusList(f.statuses)} | ${cores(f.cpu.server)} | ${dash(f.cpu.database)} |`,
    );
  }
  say();
  say(
    "CPU in cores busy over the measured run (1.00 = one core; the machine has 2 for everything: the server, " +
      "the load generator and, for talkgate, its sink " +
      `(${talkgate.map((run) => `${cores(run.saturation.cpu.helper)} for ${run.name}`).join(", ")} at saturation) ` +
      "and PostgreSQL; server CPU sums talkgate's instances, PostgreSQL CPU its server and every backend). " +
      `The generator sent fixed-rate requests up to ${ms(Math.max(...runs.map((r) => r.fixed.sendLag.max)))} ms ` +
      "late (its own timer lag; counted in the latencies).",
  );
  for (const run of runs)
    if (run.reused > 0)
      say(`- **warning**: ${run.name} used ${fmt(run.reused)} bodies twice (pool too small)`);
  for (const run of talkgate) {
    say();
    say(
      `${run.name}, durability and delivery: ${fmt(run.acknowledged)} webhooks acknowledged, ` +
        `${fmt(run.stored)} events in the database after shutdown → **${run.durable ? "every acknowledged event stored" : "EVENTS MISSING"}**; ` +
        `deliveries ${run.states.map((s) => `${s.state} ${fmt(s.n)}`).join(", ")}; the sink got ${fmt(run.sink.received)} ` +
        `(${fmt(run.sink.unique)} distinct). Backlog when the saturation run ended: ${fmt(run.backlog)}, drained in ` +
        `${fmt(run.drain.seconds, 1)} s${run.drain.drained ? "" : " (**not fully**)"}. talkgate RSS peak` +
        `${run.setup.instances > 1 ? " (largest instance)" : ""}: ${fmt(run.rssFixed / MiB)} MiB at ` +
        `${fmt(options.fixedRate)}/s, ${fmt(run.rssSaturation / MiB)} MiB at saturation; exit code after SIGTERM ` +
        `${run.exitCodes.join(", ")}.`,
    );
  }
  return {
    bare,
    express,
    talkgate,
    durable: talkgate.every((run) => run.durable),
    section: { title: "Intake", lines },
  };
}

const cores = (n: number | null) => (n === null ? "n/a" : fmt(n, 2));
const dash = (n: number | null) => (n === null ? "–" : fmt(n, 2));
export const ms = (n: number) => (Number.isNaN(n) ? "n/a" : n < 10 ? fmt(n, 1) : fmt(n));
export const statusList = (statuses: Map<string, number>) =>
  [...statuses].map(([status, n]) => `${status}×${fmt(n)}`).join(", ") || "none";
const answered2xx = (run: PacedRun) =>
  [...run.statuses].reduce((n, [status, count]) => (status.startsWith("2") ? n + count : n), 0);
