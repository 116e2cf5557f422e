// Scenario 1, intake: signed unique webhooks from 1,000 users against three servers in turn, each first at a
// fixed 1,000 webhooks/s (open loop) and then at saturation (autocannon):
//   bare     — node:http that checks the HMAC and parses the JSON: the ceiling on this machine;
//   express  — the official @line/bot-sdk middleware() on Express, answering 200, storing nothing;
//   talkgate — `bin/talkgate.js serve`, answering only after a durable commit, delivering to a sink meanwhile.
// Afterwards: every event talkgate acknowledged is in its database, and how fast its outbox drained.
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { CHANNEL_SECRET, SENDER_KEY } from "../test/support/stack.ts";
import { buildPool, Cursor, type PacedRun, type Pool, paced, type SaturationRun, saturate } from "./load.ts";
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
  waitForHttp,
} from "./support.ts";

export interface IntakeOptions {
  dir: string;
  connections: number;
  warmupS: number;
  durationS: number;
  fixedRate: number;
  poolSize: number;
  talkgateFlags: readonly string[];
}

export interface ServerRun {
  name: string;
  fixedWarmup: PacedRun;
  fixed: PacedRun;
  saturation: SaturationRun;
  reused: number;
}

export interface IntakeResult {
  runs: ServerRun[];
  bare: ServerRun;
  express: ServerRun;
  talkgate: ServerRun;
  /** talkgate's RSS peaks: during the fixed-rate run and during saturation (bytes). */
  rssFixed: number;
  rssSaturation: number;
  durable: boolean;
  section: Section;
}

const USERS = 1_000;
const FIXED_WARMUP_S = 1;
const DRAIN_WAIT_MS = 60_000;
const WEBHOOK_PATH = `/line/webhook/${SENDER_KEY}`;

async function measure(
  name: string,
  url: string,
  pool: Pool,
  options: IntakeOptions,
  pids: { server?: number; helper?: number },
  between?: () => Promise<void>,
): Promise<ServerRun> {
  const cursor = new Cursor(pool);
  const target = `${url}${WEBHOOK_PATH}`;
  console.log(`intake/${name}: ${options.fixedRate}/s fixed rate, then saturation…`);
  const fixedOptions = {
    rate: options.fixedRate,
    connections: options.connections,
    serverPid: pids.server,
    helperPid: pids.helper,
  };
  const fixedWarmup = await paced(target, cursor, { ...fixedOptions, durationS: FIXED_WARMUP_S });
  const fixed = await paced(target, cursor, { ...fixedOptions, durationS: options.durationS });
  await between?.();
  const saturation = await saturate(target, cursor, {
    connections: options.connections,
    warmupS: options.warmupS,
    durationS: options.durationS,
    serverPid: pids.server,
    helperPid: pids.helper,
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

export async function runIntake(options: IntakeOptions): Promise<IntakeResult> {
  const t = performance.now();
  const pool = buildPool(options.poolSize, USERS, (i) => `benchmark message ${i}`);
  console.log(
    `intake: pre-signed ${fmt(pool.size)} distinct webhook bodies in ${fmt((performance.now() - t) / 1000, 1)} s`,
  );
  const pids = (child: Child, helper?: Child) => ({ server: child.proc.pid, helper: helper?.proc.pid });

  const bareServer = await startPlain("bare", "bare-server.ts", options.dir);
  const bare = await measure("bare", bareServer.url, pool, options, pids(bareServer.child));
  await stopChild(bareServer.child);

  const expressServer = await startPlain("express", "express-server.ts", options.dir);
  const express = await measure("express", expressServer.url, pool, options, pids(expressServer.child));
  await stopChild(expressServer.child);

  // talkgate's partner (and LINE profile API): a fast sink in its own process, so its CPU is counted apart.
  const sinkPort = await freePort();
  const sinkChild = startChild(
    "sink",
    [join(ROOT, "bench", "sink-server.ts"), String(sinkPort)],
    join(options.dir, "sink.log"),
  );
  const sinkUrl = `http://127.0.0.1:${sinkPort}`;
  await waitForHttp(`${sinkUrl}/_stats`, sinkChild);
  const sinkStats = async () =>
    (await (await fetch(`${sinkUrl}/_stats`)).json()) as { received: number; unique: number };
  const tg = await startTalkgateChild({
    name: "talkgate",
    dir: join(options.dir, "talkgate"),
    lineUrl: sinkUrl,
    partnerUrl: sinkUrl,
    nodeFlags: options.talkgateFlags,
  });
  const db = new DatabaseSync(tg.dbPath, { readOnly: true });
  const storedCount = () => (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  const waitDrained = async (): Promise<{ count: number; seconds: number; drained: boolean }> => {
    const started = performance.now();
    const from = (await sinkStats()).unique;
    const target = storedCount();
    let now = from;
    while (now < target && performance.now() - started < DRAIN_WAIT_MS) {
      await sleep(100);
      now = (await sinkStats()).unique;
    }
    return { count: now - from, seconds: (performance.now() - started) / 1000, drained: now >= target };
  };

  let peak = rssPeak(tg.child.proc.pid);
  let rssFixed = 0;
  const talkgate = await measure("talkgate", tg.url, pool, options, pids(tg.child, sinkChild), async () => {
    rssFixed = peak();
    await waitDrained(); // the saturation run starts with an empty outbox
    peak = rssPeak(tg.child.proc.pid);
  });
  const rssSaturation = peak();
  const backlog = storedCount() - (await sinkStats()).unique;
  const drain = await waitDrained();
  db.close();
  await stopChild(tg.child, 15_000);
  const sink = await sinkStats();
  await stopChild(sinkChild);

  const check = new DatabaseSync(tg.dbPath, { readOnly: true });
  const stored = (check.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  const states = check.prepare("SELECT state, count(*) AS n FROM deliveries GROUP BY state").all() as {
    state: string;
    n: number;
  }[];
  check.close();
  const acknowledged =
    answered2xx(talkgate.fixedWarmup) +
    answered2xx(talkgate.fixed) +
    talkgate.saturation.warmup["2xx"] +
    talkgate.saturation.main["2xx"];
  const durable = stored >= acknowledged;

  const runs = [bare, express, talkgate];
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
  say(
    "- talkgate: `bin/talkgate.js serve`, fresh SQLite file (WAL), the 200 only after the commit and the " +
      "fsync of the log; default settings, info logs to a file; delivering to a fast sink (another process) " +
      "meanwhile, making way for intake when its commits slow down (`delivery.intakeLatencyTargetMs`)",
  );
  say();
  say("**Saturation** (autocannon):");
  say();
  say(
    "| server | req/s | p50 ms | p99 ms | max ms | non-2xx | errors | server CPU | load generator CPU | machine busy (steal) |",
  );
  say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const run of runs) {
    const r = run.saturation.main;
    const cpu = run.saturation.cpu;
    say(
      `| ${run.name} | ${fmt(r.requests.mean)} | ${r.latency.p50} | ${r.latency.p99} | ${r.latency.max} | ` +
        `${fmt(r.non2xx)} | ${fmt(r.errors + r.timeouts)} | ${cores(cpu.server)} | ${cores(cpu.bench)} | ` +
        `${cpu.machine ? `${cores(cpu.machine.busyCores)} (${fmt(100 * cpu.machine.steal, 1)}%)` : "n/a"} |`,
    );
  }
  say();
  say(`**Fixed rate** (${fmt(options.fixedRate)}/s for ${options.durationS} s, open loop):`);
  say();
  say("| server | sent/s | p50 ms | p99 ms | p99.9 ms | max ms | answers | server CPU |");
  say("|---|---:|---:|---:|---:|---:|---|---:|");
  for (const run of runs) {
    const f = run.fixed;
    say(
      `| ${run.name} | ${fmt(f.achievedRate)} | ${ms(f.ack.p50)} | ${ms(f.ack.p99)} | ${ms(f.ack.p999)} | ` +
        `${ms(f.ack.max)} | ${statusList(f.statuses)} | ${cores(f.cpu.server)} |`,
    );
  }
  say();
  say(
    "CPU in cores busy over the measured run (1.00 = one core; the machine has 2 for the server, the load " +
      `generator and, for talkgate, its sink: ${cores(talkgate.saturation.cpu.helper)} at saturation). ` +
      `The generator sent fixed-rate requests up to ${ms(Math.max(...runs.map((r) => r.fixed.sendLag.max)))} ms ` +
      "late (its own timer lag; counted in the latencies).",
  );
  for (const run of runs)
    if (run.reused > 0)
      say(`- **warning**: ${run.name} used ${fmt(run.reused)} bodies twice (pool too small)`);
  say();
  say(
    `talkgate, durability and delivery: ${fmt(acknowledged)} webhooks acknowledged, ` +
      `${fmt(stored)} events in the database after shutdown → **${durable ? "every acknowledged event stored" : "EVENTS MISSING"}**; ` +
      `deliveries ${states.map((s) => `${s.state} ${fmt(s.n)}`).join(", ")}; the sink got ${fmt(sink.received)} ` +
      `(${fmt(sink.unique)} distinct). Backlog when the saturation run ended: ${fmt(backlog)}, drained in ` +
      `${fmt(drain.seconds, 1)} s${drain.drained ? "" : " (**not fully**)"}. talkgate RSS peak: ` +
      `${fmt(rssFixed / MiB)} MiB at ${fmt(options.fixedRate)}/s, ${fmt(rssSaturation / MiB)} MiB at saturation; ` +
      `exit code after SIGTERM ${tg.child.exitCode}.`,
  );
  return {
    runs,
    bare,
    express,
    talkgate,
    rssFixed,
    rssSaturation,
    durable,
    section: { title: "Intake", lines },
  };
}

const cores = (n: number | null) => (n === null ? "n/a" : fmt(n, 2));
export const ms = (n: number) => (Number.isNaN(n) ? "n/a" : n < 10 ? fmt(n, 1) : fmt(n));
export const statusList = (statuses: Map<string, number>) =>
  [...statuses].map(([status, n]) => `${status}×${fmt(n)}`).join(", ") || "none";
const answered2xx = (run: PacedRun) =>
  [...run.statuses].reduce((n, [status, count]) => (status.startsWith("2") ? n + count : n), 0);
