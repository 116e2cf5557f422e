// `npm run bench`: two scenarios, each in its own section of bench/RESULTS.md (and printed).
//
// Intake: webhook intake throughput and acknowledgement latency, talkgate against a bare node:http ceiling,
// under the same autocannon load; then checks that talkgate stored every event it acknowledged and how fast
// its outbox reached the partner.
//
// Media (bench/media.ts): a large generated video relayed from the LINE emulator through talkgate and
// downloaded through the partner attachment API; MiB/s of both legs and talkgate's peak RSS growth.
//
// Environment knobs (all optional): BENCH_ONLY (intake | media: run one scenario and keep the other's section
// of RESULTS.md as it was; default both), BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2),
// BENCH_CONNECTIONS (default 50), BENCH_POOL (pre-signed bodies, default 300000), BENCH_MEDIA_MB (size of the
// media scenario's video in MiB, default 200), BENCH_MEDIA_PROBE=1 (preload bench/memory-probe.ts into the
// media scenario's talkgate to split its memory into heap, external and ArrayBuffers),
// BENCH_CPU_PROF=1 (profile the intake talkgate child with --cpu-prof and print its top self-time functions),
// BENCH_TALKGATE_NODE_FLAGS (extra Node flags for both talkgate children), BENCH_KEEP=1 (keep the temp
// directory with the databases and logs).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import autocannon, { type Result } from "autocannon";
import { textEvent, ulid, userSource, webhookBody } from "../emulator/events.ts";
import { lineSignature } from "../src/core/signature.ts";
import { CHANNEL_SECRET, SENDER_KEY, stackConfig } from "../test/support/stack.ts";
import { runMedia } from "./media.ts";
import {
  backgroundCores,
  children,
  cores,
  cpuSeconds,
  fmt,
  freePort,
  killAllNow,
  machineTicks,
  sleep,
  startChild,
  stopChild,
  waitForHttp,
} from "./support.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_DIR = join(ROOT, "bench");

const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const ONLY = process.env.BENCH_ONLY ?? "";
if (ONLY !== "" && ONLY !== "intake" && ONLY !== "media") {
  console.error(`BENCH_ONLY must be "intake" or "media", not ${JSON.stringify(ONLY)}`);
  process.exit(2);
}
const RUN_INTAKE = ONLY !== "media";
const RUN_MEDIA = ONLY !== "intake";
const CONNECTIONS = envInt("BENCH_CONNECTIONS", 50);
const PIPELINING = 1;
const WARMUP_S = envInt("BENCH_WARMUP", 2);
const DURATION_S = envInt("BENCH_DURATION", 10);
const POOL_SIZE = envInt("BENCH_POOL", 300_000);
const USERS = 1_000;
const DRAIN_WAIT_MS = 20_000;
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
const MEDIA_BYTES = envInt("BENCH_MEDIA_MB", 200) * 1024 * 1024;
const MEDIA_SEED = 20_261_122;
const MEDIA_PROBE = process.env.BENCH_MEDIA_PROBE === "1";
// Extra Node flags for the talkgate children only (e.g. "--perf-basic-prof" for perf), space-separated.
const TALKGATE_NODE_FLAGS = (process.env.BENCH_TALKGATE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const KEEP = process.env.BENCH_KEEP === "1";
const HARD_LIMIT_MS =
  (RUN_INTAKE ? 170_000 : 0) + (RUN_MEDIA ? 60_000 + (MEDIA_BYTES / 2 ** 20 / 10) * 1_000 : 0);
const SLOW_MS = 100;
const MEDIA_HEADING = "## Media";

process.once("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping children`);
    killAllNow();
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${Math.round(HARD_LIMIT_MS / 1000)} s; giving up`);
  killAllNow();
  process.exit(1);
}, HARD_LIMIT_MS);
watchdog.unref();

// ---------------------------------------------------------------------------------------------------------
// The load: a pool of distinct signed webhook bodies, one text message event each, over USERS user ids.

interface Pool {
  bodies: Buffer[];
  signatures: string[];
}

function buildPool(size: number): Pool {
  const users = Array.from({ length: USERS }, (_, i) => `U${(0xbe0000 + i).toString(16).padStart(32, "0")}`);
  const bodies = new Array<Buffer>(size);
  const signatures = new Array<string>(size);
  // Unique ids and tokens from one random stem plus a counter: as unique as random ones, far cheaper to make.
  const stem = ulid();
  const idStem = stem.slice(0, 16);
  const tokenStem = Buffer.from(stem).toString("hex").slice(0, 24);
  const longStem = Buffer.from(`${stem}${stem}`).toString("base64url").slice(0, 56);
  const firstMessageId = Date.now() * 100_000;
  const now = Date.now();
  for (let i = 0; i < size; i++) {
    const n = i.toString(16).padStart(8, "0");
    const user = users[i % USERS] as string;
    const event = textEvent(
      userSource(user),
      {
        text: `benchmark message ${i} from ${user.slice(-4)}`,
        id: String(firstMessageId + i),
        quoteToken: `q${longStem}${n}`,
        markAsReadToken: `m${longStem}${n}`,
      },
      {
        webhookEventId: `${idStem}${i.toString(32).toUpperCase().padStart(10, "0")}`,
        replyToken: `${tokenStem}${n}`,
        timestamp: now + Math.floor(i / 1_000),
      },
    );
    const body = Buffer.from(JSON.stringify(webhookBody([event])));
    bodies[i] = body;
    signatures[i] = lineSignature(CHANNEL_SECRET, body);
  }
  return { bodies, signatures };
}

interface SlowAnswer {
  /** When the answer came, ms after the measured run started. */
  at: number;
  ms: number;
}

interface LoadRun {
  warmup: Result;
  main: Result;
  /** Answers of the measured run that took SLOW_MS or more. */
  slow: SlowAnswer[];
  bodiesUsed: number;
  bodiesReused: number;
  serverCpu: number | null;
  /** CPU of the helper process (talkgate's partner sink), cores. */
  helperCpu: number | null;
  benchCpu: number;
  /** Machine-wide busy cores and steal (fraction of all CPU time) over the measured run. */
  machine: { busyCores: number; steal: number } | null;
}

/** Warm-up then measured run against `url`, each request the next body of the pool (never one twice). */
async function load(
  url: string,
  pool: Pool,
  serverPid: number | undefined,
  helperPid?: number,
): Promise<LoadRun> {
  let next = 0;
  let reused = 0;
  const requests = [
    {
      setupRequest(request: { headers?: Record<string, string> }) {
        const i = next % POOL_SIZE;
        if (next >= POOL_SIZE) reused++;
        next++;
        return {
          ...request,
          method: "POST",
          body: pool.bodies[i] as Buffer,
          headers: {
            ...request.headers,
            "content-type": "application/json; charset=utf-8",
            "x-line-signature": pool.signatures[i] as string,
          },
        };
      },
    },
  ];
  const options = { url, connections: CONNECTIONS, pipelining: PIPELINING, timeout: 10, requests };
  const warmup = await autocannon({ ...options, duration: WARMUP_S });
  const cpuBefore = cpuSeconds(serverPid);
  const helperBefore = cpuSeconds(helperPid);
  const benchCpuBefore = process.cpuUsage();
  const ticksBefore = machineTicks();
  const started = performance.now();
  const slow: SlowAnswer[] = [];
  const main = await autocannon({ ...options, duration: DURATION_S }).on(
    "response",
    (_client, _status, _bytes, responseTime) => {
      if (responseTime >= SLOW_MS) slow.push({ at: performance.now() - started, ms: responseTime });
    },
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = cpuSeconds(serverPid);
  const helperAfter = cpuSeconds(helperPid);
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const ticksAfter = machineTicks();
  const ticks =
    ticksBefore && ticksAfter
      ? {
          busy: ticksAfter.busy - ticksBefore.busy,
          steal: ticksAfter.steal - ticksBefore.steal,
          total: ticksAfter.total - ticksBefore.total,
        }
      : null;
  return {
    warmup,
    main,
    slow,
    bodiesUsed: next,
    bodiesReused: reused,
    serverCpu: cpuBefore !== null && cpuAfter !== null ? (cpuAfter - cpuBefore) / elapsed : null,
    helperCpu: helperBefore !== null && helperAfter !== null ? (helperAfter - helperBefore) / elapsed : null,
    benchCpu: (benchCpu.user + benchCpu.system) / 1e6 / elapsed,
    machine:
      ticks && ticks.total > 0
        ? { busyCores: ticks.busy / 100 / elapsed, steal: ticks.steal / ticks.total }
        : null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// CPU profile summary: self time per function, from a .cpuprofile written by the talkgate child.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

function topSelfTime(path: string, count: number): { total: number; rows: [string, number][] } {
  const profile = JSON.parse(readFileSync(path, "utf8")) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const micros = profile.timeDeltas[i + 1] ?? 0;
    if (!frame || frame.functionName === "(idle)") return;
    const where = frame.url
      ? ` ${frame.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "")}:${frame.lineNumber + 1}`
      : "";
    const key = `${frame.functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + micros);
    total += micros;
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
  return { total, rows };
}

// ---------------------------------------------------------------------------------------------------------

interface Row {
  name: string;
  run: LoadRun;
}

/** Answers of SLOW_MS or more, grouped into stalls (answers less than 50 ms apart). */
function describeSlow(slow: readonly SlowAnswer[]): string {
  if (slow.length === 0) return `no answer took ${SLOW_MS} ms or more`;
  const sorted = [...slow].sort((a, b) => a.at - b.at);
  const stalls: { from: number; to: number; count: number; worst: number }[] = [];
  for (const answer of sorted) {
    const last = stalls.at(-1);
    if (last && answer.at - last.to < 50) {
      last.to = answer.at;
      last.count++;
      last.worst = Math.max(last.worst, answer.ms);
    } else stalls.push({ from: answer.at, to: answer.at, count: 1, worst: answer.ms });
  }
  const worst = [...stalls].sort((a, b) => b.worst - a.worst).slice(0, 5);
  return (
    `${fmt(slow.length)} answers took ${SLOW_MS} ms or more, in ${stalls.length} stall(s); worst: ` +
    worst.map((s) => `${fmt(s.worst)} ms at t=${fmt(s.from / 1000, 1)} s (${s.count} answers)`).join(", ")
  );
}

function table(rows: readonly Row[]): string {
  const lines = [
    "| server | req/s (mean) | p50 ms | p99 ms | max ms | mean ms | 2xx | non-2xx | errors | timeouts | server CPU (cores) | machine busy (cores) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { name, run } of rows) {
    const r = run.main;
    lines.push(
      `| ${name} | ${fmt(r.requests.mean)} | ${r.latency.p50} | ${r.latency.p99} | ${r.latency.max} | ` +
        `${fmt(r.latency.mean, 2)} | ${fmt(r["2xx"])} | ${fmt(r.non2xx)} | ${fmt(r.errors)} | ${fmt(r.timeouts)} | ` +
        `${run.serverCpu === null ? "n/a" : fmt(run.serverCpu, 2)} | ` +
        `${run.machine === null ? "n/a" : `${fmt(run.machine.busyCores, 2)} (steal ${fmt(100 * run.machine.steal, 1)}%)`} |`,
    );
  }
  return lines.join("\n");
}

interface IntakeOptions {
  dir: string;
  startedAt: number;
  machine: string;
  cpuCount: number;
  say: (line?: string) => void;
}

/** The intake scenario; reports through `say` and returns whether every acknowledged event was stored. */
async function runIntake({ dir, startedAt, machine, cpuCount, say }: IntakeOptions): Promise<boolean> {
  const t = performance.now();
  const pool = buildPool(POOL_SIZE);
  const avgBody = pool.bodies.reduce((sum, body) => sum + body.length, 0) / POOL_SIZE;
  console.log(
    `pre-signed ${fmt(POOL_SIZE)} distinct webhook bodies (${fmt(avgBody)} B avg) in ${fmt((performance.now() - t) / 1000, 1)} s`,
  );
  const webhookPath = `/line/webhook/${SENDER_KEY}`;
  // Other work on the machine (tests run by others, say) skews every figure: measure it before starting.
  const background = await backgroundCores(1_000);
  if (background !== null && background > 0.15)
    console.log(
      `warning: ${fmt(background, 2)} cores already busy with other processes before the benchmark`,
    );

  // 1. bare node:http ceiling
  const barePort = await freePort();
  const bare = startChild(
    "bare",
    [join(BENCH_DIR, "bare-server.ts"), String(barePort), CHANNEL_SECRET],
    join(dir, "bare.log"),
  );
  await waitForHttp(`http://127.0.0.1:${barePort}/healthz`, bare);
  console.log(`bare: ${WARMUP_S} s warm-up + ${DURATION_S} s measured, ${CONNECTIONS} connections…`);
  const bareRun = await load(`http://127.0.0.1:${barePort}${webhookPath}`, pool, bare.proc.pid);
  await stopChild(bare);

  // 2. talkgate, its partner (and LINE profile API) a fast sink in another process
  const sinkPort = await freePort();
  const sink = startChild(
    "sink",
    [join(BENCH_DIR, "sink-server.ts"), String(sinkPort)],
    join(dir, "sink.log"),
  );
  const sinkUrl = `http://127.0.0.1:${sinkPort}`;
  await waitForHttp(`${sinkUrl}/_stats`, sink);
  const sinkStats = async () =>
    (await (await fetch(`${sinkUrl}/_stats`)).json()) as {
      received: number;
      unique: number;
      profiles: number;
    };

  const talkgatePort = await freePort();
  const raw = stackConfig(sinkUrl, sinkUrl, {
    // Production defaults for delivery and profiles (the test stack shortens them); info logging.
    config: {
      listen: { host: "127.0.0.1", port: talkgatePort },
      logLevel: "info",
      delivery: {},
      profiles: {},
    },
  });
  const configPath = join(dir, "talkgate.config.json");
  writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
  const dbPath = join(dir, "talkgate.db");
  const profDir = join(dir, "prof");
  const talkgateLog = join(dir, "talkgate.log");
  const talkgate = startChild(
    "talkgate",
    [
      ...(CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []),
      ...TALKGATE_NODE_FLAGS,
      join(ROOT, "bin", "talkgate.ts"),
      "serve",
      "--config",
      configPath,
    ],
    talkgateLog,
  );
  await waitForHttp(`http://127.0.0.1:${talkgatePort}/readyz`, talkgate);
  if (!readFileSync(talkgateLog, "utf8").includes('"talkgate:ready"')) await sleep(200); // the log is written asynchronously; readiness was already proven over HTTP
  console.log(
    `talkgate: ${WARMUP_S} s warm-up + ${DURATION_S} s measured, ${CONNECTIONS} connections${CPU_PROF ? " (CPU profiling on)" : ""}…`,
  );
  const loadStarted = Date.now();
  const talkgateRun = await load(
    `http://127.0.0.1:${talkgatePort}${webhookPath}`,
    pool,
    talkgate.proc.pid,
    sink.proc.pid,
  );
  const loadSeconds = (Date.now() - loadStarted) / 1000;

  // Drain: how long the outbox takes to reach the partner once the load stops.
  const db = new DatabaseSync(dbPath, { readOnly: true });
  const countEvents = () => (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  const atLoadEnd = await sinkStats();
  const storedAtLoadEnd = countEvents();
  const drainStarted = Date.now();
  let drained = atLoadEnd;
  while (drained.unique < storedAtLoadEnd && Date.now() - drainStarted < DRAIN_WAIT_MS) {
    await sleep(250);
    drained = await sinkStats();
  }
  const drainSeconds = (Date.now() - drainStarted) / 1000;
  db.close();

  await stopChild(talkgate, 15_000);
  const talkgateExit = talkgate.exitCode;
  const finalSink = await sinkStats();
  await stopChild(sink);

  // Verify: everything acknowledged is in the database (read-only, after talkgate closed it).
  const check = new DatabaseSync(dbPath, { readOnly: true });
  const stored = (check.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  const states = check.prepare("SELECT state, count(*) AS n FROM deliveries GROUP BY state").all() as {
    state: string;
    n: number;
  }[];
  check.close();
  const acknowledged = talkgateRun.warmup["2xx"] + talkgateRun.main["2xx"];
  const logText = readFileSync(talkgateLog, "utf8");
  const logLines = logText.split("\n").filter(Boolean);
  const problems = logLines.filter((line) => /"level":(40|50|60)/.test(line));

  // ---- report ----
  const b = bareRun.main;
  const g = talkgateRun.main;
  const ratio = g.requests.mean / b.requests.mean;
  const throughputAim = ratio >= 0.5;
  const latencyAim = g.latency.p99 < 50;
  say("# talkgate webhook intake benchmark");
  say();
  say(`- date: ${new Date(startedAt).toISOString()}`);
  say(`- machine: ${machine}; ${cores(background)} cores busy with other work just before the start`);
  say(
    `- load: autocannon ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${WARMUP_S} s warm-up then ` +
      `${DURATION_S} s measured, per server in turn, from the bench process on the same machine (127.0.0.1)`,
  );
  say(
    `- requests: POST ${webhookPath}, each a distinct signed body (${fmt(avgBody)} B, one text message event, ` +
      `${fmt(USERS)} user ids, unique webhookEventId), pool of ${fmt(POOL_SIZE)}`,
  );
  say(
    "- bare: node:http, reads the body, checks x-line-signature (HMAC-SHA256, timingSafeEqual), JSON.parse, 200",
  );
  say(
    "- talkgate: `bin/talkgate.ts serve`, fresh SQLite file (WAL, synchronous=FULL, group commit), log level " +
      "info to a file, default delivery settings, partner and LINE profile API = a fast node:http sink in " +
      `another process${CPU_PROF ? "; **CPU profiling on (slower than normal)**" : ""}`,
  );
  say();
  say(
    table([
      { name: "bare node:http", run: bareRun },
      { name: "talkgate", run: talkgateRun },
    ]),
  );
  say();
  say(
    `Latency is the acknowledgement time seen by the client (2xx answers only). CPU figures are cores busy ` +
      `over the measured run (1.00 = one core fully used): server CPU is the server process; the load ` +
      `generator (this process) used ${cores(bareRun.benchCpu)} (bare run) and ${cores(talkgateRun.benchCpu)} ` +
      `(talkgate run); talkgate's sink used ${cores(talkgateRun.helperCpu)}; machine busy counts everything ` +
      `including the kernel's loopback networking and other people's processes. The machine has ` +
      `${cpuCount} cores for all of them; ${cores(background)} cores were busy before the benchmark started.`,
  );
  const noisy = [bareRun, talkgateRun].some((run) => (run.machine?.steal ?? 0) > 0.05);
  if (noisy || (background ?? 0) > 0.15) {
    say();
    say(
      "**Warning: the machine was not quiet** (other processes before the start, or the hypervisor taking " +
        "more than 5% of CPU time as steal during a run): the figures are depressed and noisy; rerun on a quiet machine.",
    );
  }
  say();
  say(`- talkgate / bare throughput: **${fmt(ratio, 2)}×**`);
  say(`- aim talkgate ≥ 0.5× bare: **${throughputAim ? "holds" : "does NOT hold"}** (${fmt(ratio, 2)}×)`);
  say(
    `- aim p99 well under 50 ms: **${latencyAim ? "holds" : "does NOT hold"}** (talkgate p99 ${g.latency.p99} ms, ` +
      `p99.9 ${g.latency.p99_9} ms, max ${g.latency.max} ms)`,
  );
  const statusList = (r: Result) =>
    Object.entries(r.statusCodeStats)
      .map(([code, { count }]) => `${code}×${fmt(count)}`)
      .join(", ") || "none";
  say(
    `- answers: bare ${statusList(b)}; talkgate ${statusList(g)}; resets bare ${b.resets}, talkgate ${g.resets}`,
  );
  for (const [name, run] of [
    ["bare", bareRun],
    ["talkgate", talkgateRun],
  ] as const) {
    say(`- ${name}: ${describeSlow(run.slow)}`);
    if (run.bodiesReused > 0)
      say(
        `- **warning**: ${name} used more bodies than the pool holds; ${fmt(run.bodiesReused)} were reused`,
      );
  }
  say();
  say("## Durability and delivery (talkgate)");
  say();
  const durable = stored >= acknowledged;
  say(
    `- acknowledged 2xx (warm-up ${fmt(talkgateRun.warmup["2xx"])} + measured ${fmt(g["2xx"])}): ` +
      `${fmt(acknowledged)}; rows in \`events\` after shutdown: ${fmt(stored)} → ` +
      `**${durable ? "every acknowledged event is stored" : "MISSING EVENTS"}**` +
      (stored > acknowledged
        ? ` (${fmt(stored - acknowledged)} more were stored whose answers the client stopped waiting for at the end)`
        : ""),
  );
  say(
    `- deliveries by state after shutdown: ${states.map((s) => `${s.state} ${fmt(s.n)}`).join(", ") || "none"}`,
  );
  say(
    `- delivered to the sink while the load ran (${fmt(loadSeconds, 1)} s incl. warm-up): ${fmt(atLoadEnd.unique)} ` +
      `(${fmt(atLoadEnd.unique / loadSeconds)}/s); backlog at load end ${fmt(storedAtLoadEnd - atLoadEnd.unique)}`,
  );
  const drainedCount = drained.unique - atLoadEnd.unique;
  say(
    `- drain after the load: ${fmt(drainedCount)} more in ${fmt(drainSeconds, 1)} s ` +
      `(${fmt(drainSeconds > 0 ? drainedCount / drainSeconds : 0)}/s); ` +
      (drained.unique >= storedAtLoadEnd
        ? "outbox fully drained"
        : `**not drained** within ${DRAIN_WAIT_MS / 1000} s (${fmt(storedAtLoadEnd - drained.unique)} left)`),
  );
  say(
    `- sink totals by the end: ${fmt(finalSink.received)} deliveries received, ${fmt(finalSink.unique)} distinct ` +
      `(${fmt(finalSink.received - finalSink.unique)} repeats), ${fmt(finalSink.profiles)} profile lookups`,
  );
  say(
    `- talkgate exit code after SIGTERM: ${talkgateExit}; log: ${fmt(logLines.length)} lines ` +
      `(${fmt(statSync(talkgateLog).size / 2 ** 20, 1)} MiB), ${problems.length} at warn or above` +
      (problems.length > 0 ? `; first: \`${problems[0]?.slice(0, 300)}\`` : ""),
  );

  if (CPU_PROF) {
    const files = (() => {
      try {
        return readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
      } catch {
        return [];
      }
    })();
    say();
    say("## talkgate CPU profile: top self time");
    say();
    const file = files[0];
    if (!file) say("(no profile written; did talkgate exit cleanly?)");
    else {
      const { total, rows } = topSelfTime(join(profDir, file), 25);
      say(`Whole process lifetime, ${fmt(total / 1e6, 1)} s of non-idle samples.`);
      say();
      say("| self ms | % | function |");
      say("|---:|---:|---|");
      for (const [name, micros] of rows)
        say(`| ${fmt(micros / 1000)} | ${fmt((100 * micros) / total, 1)} | \`${name}\` |`);
    }
  }
  return durable;
}

/** The file's sections: the intake report (from the top) and the media report (from MEDIA_HEADING on). */
function previousSections(path: string): { intake: string[]; media: string[] } {
  if (!existsSync(path)) return { intake: [], media: [] };
  const lines = readFileSync(path, "utf8").trimEnd().split("\n");
  const at = lines.indexOf(MEDIA_HEADING);
  if (at < 0) return { intake: lines, media: [] };
  const intake = lines.slice(0, at);
  while (intake.at(-1) === "") intake.pop();
  return { intake, media: lines.slice(at) };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "talkgate-bench-"));
  const sections = { intake: [] as string[], media: [] as string[] };
  const sayTo =
    (lines: string[]) =>
    (line = "") => {
      console.log(line);
      lines.push(line);
    };
  let ok = true;
  try {
    const cpu = cpus();
    const machine =
      `${cpu[0]?.model.trim() ?? "unknown CPU"}, ${cpu.length} cores, ` +
      `${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
    console.log(`talkgate benchmark: ${machine}`);
    console.log(`temp directory ${dir}`);
    console.log(`scenarios: ${[RUN_INTAKE && "intake", RUN_MEDIA && "media"].filter(Boolean).join(", ")}`);

    if (RUN_INTAKE) {
      const intakeDir = join(dir, "intake");
      mkdirSync(intakeDir);
      ok =
        (await runIntake({
          dir: intakeDir,
          startedAt,
          machine,
          cpuCount: cpu.length,
          say: sayTo(sections.intake),
        })) && ok;
    }
    if (RUN_MEDIA) {
      if (RUN_INTAKE) console.log();
      const background = await backgroundCores(1_000);
      if (background !== null && background > 0.15)
        console.log(
          `warning: ${fmt(background, 2)} cores already busy with other processes before the media run`,
        );
      ok =
        (await runMedia({
          dir: join(dir, "media"),
          sizeBytes: MEDIA_BYTES,
          seed: MEDIA_SEED,
          nodeFlags: TALKGATE_NODE_FLAGS,
          probe: MEDIA_PROBE,
          machine: `${machine}; ${cores(background)} cores busy with other work just before the start`,
          say: sayTo(sections.media),
        })) && ok;
    }

    // A scenario not run keeps its section from the previous RESULTS.md.
    const resultsPath = join(BENCH_DIR, "RESULTS.md");
    const previous = previousSections(resultsPath);
    const intake = RUN_INTAKE ? sections.intake : previous.intake;
    const media = RUN_MEDIA ? sections.media : previous.media;
    const parts = [intake.length > 0 ? intake : ["# talkgate benchmark"], media].filter((p) => p.length > 0);
    writeFileSync(resultsPath, `${parts.map((p) => p.join("\n")).join("\n\n")}\n`);
    console.log(
      `\nwritten to ${relative(process.cwd(), resultsPath)} in ${fmt((Date.now() - startedAt) / 1000)} s` +
        (ONLY ? ` (the ${RUN_INTAKE ? "media" : "intake"} section kept from the previous run)` : ""),
    );
    if (!ok) process.exitCode = 1;
  } finally {
    await Promise.all([...children].map((child) => stopChild(child, 3_000)));
    if (KEEP) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    console.error(error);
    killAllNow();
    process.exit(1);
  },
);
