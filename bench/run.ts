// `npm run bench`: every scenario, each side by side with its reference in the same run, written to
// bench/RESULTS.md with the goals they are held to.
//   1. intake (bench/intake.ts)    bare node:http, @line/bot-sdk middleware on Express, talkgate
//   2. end to end (bench/e2e.ts)    webhook → partner sink at a fixed rate
//   3. delivery (bench/drain.ts)    a backlog drained to a partner sink, order checked
//   4. media (bench/media.ts)       a large video through both legs, RSS sampled
//   5. footprint (bench/footprint.ts) cold start, idle RSS, production install
//
// Environment knobs (all optional): BENCH_ONLY (comma-separated scenarios: intake, e2e, delivery, media,
// footprint; a partial run prints its figures but leaves RESULTS.md alone), BENCH_DURATION (s, default 10),
// BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS (default 50), BENCH_POOL (pre-signed bodies, default 350000),
// BENCH_BACKLOG (delivery backlog, default 50000), BENCH_MEDIA_MB (default 200), BENCH_MEDIA_PROBE=1 (split the
// media scenario's memory into heap, external and ArrayBuffers), BENCH_CPU_PROF=1 (every talkgate child runs
// with --cpu-prof; the top self-time functions of each profile are printed), BENCH_TALKGATE_NODE_FLAGS (extra
// Node flags for every talkgate child), BENCH_KEEP=1 (keep the temp directory with databases, logs, profiles).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, relative } from "node:path";
import { runDrain } from "./drain.ts";
import { runE2e } from "./e2e.ts";
import { runFootprint } from "./footprint.ts";
import { ms, runIntake } from "./intake.ts";
import { AIM_GROWTH_MIB, runMedia } from "./media.ts";
import { type Goal, render, type Section } from "./report.ts";
import {
  backgroundCores,
  children,
  cores,
  fmt,
  killAllNow,
  MiB,
  machineTicks,
  ROOT,
  stopChild,
} from "./support.ts";

const SCENARIOS = ["intake", "e2e", "delivery", "media", "footprint"] as const;
type Scenario = (typeof SCENARIOS)[number];

const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const only = (process.env.BENCH_ONLY ?? "").split(",").filter(Boolean);
const unknown = only.filter((name) => !SCENARIOS.includes(name as Scenario));
if (unknown.length > 0) {
  console.error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`);
  process.exit(2);
}
const runs = (scenario: Scenario) => only.length === 0 || only.includes(scenario);
const DURATION_S = envInt("BENCH_DURATION", 10);
const WARMUP_S = envInt("BENCH_WARMUP", 2);
const CONNECTIONS = envInt("BENCH_CONNECTIONS", 50);
const POOL_SIZE = envInt("BENCH_POOL", 350_000);
const BACKLOG = envInt("BENCH_BACKLOG", 50_000);
const MEDIA_BYTES = envInt("BENCH_MEDIA_MB", 200) * MiB;
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
const KEEP = process.env.BENCH_KEEP === "1";
const EXTRA_FLAGS = (process.env.BENCH_TALKGATE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const HARD_LIMIT_MS = 20 * 60_000;

process.once("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping children`);
    killAllNow();
    process.exit(130);
  });
setTimeout(() => {
  console.error(`bench: still running after ${HARD_LIMIT_MS / 60_000} min; giving up`);
  killAllNow();
  process.exit(1);
}, HARD_LIMIT_MS).unref();

// ---------------------------------------------------------------------------------------------------------
// CPU profiles (BENCH_CPU_PROF=1): self time per function of each .cpuprofile a talkgate child wrote.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

function topSelfTime(path: string, count: number): string[] {
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
      ? ` ${frame.url.replace(/^file:\/\//, "").replace(ROOT, "")}:${frame.lineNumber + 1}`
      : "";
    const key = `${frame.functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + micros);
    total += micros;
  });
  return [
    `${fmt(total / 1e6, 1)} s of non-idle samples; self ms, %, function:`,
    ...[...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(
        ([name, micros]) =>
          `  ${fmt(micros / 1000).padStart(7)} ${fmt((100 * micros) / total, 1).padStart(5)}  ${name}`,
      ),
  ];
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date();
  const dir = mkdtempSync(join(tmpdir(), "talkgate-bench-"));
  const profDir = join(dir, "prof");
  const talkgateFlags = [...(CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []), ...EXTRA_FLAGS];
  const cpu = cpus();
  const machine =
    `${cpu[0]?.model.trim() ?? "unknown CPU"}, ${cpu.length} cores, ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, ` +
    `Node ${process.version}, ${process.platform}/${process.arch}`;
  console.log(`talkgate benchmark: ${machine}\ntemp directory ${dir}`);
  const background = await backgroundCores(1_000);
  const ticksAtStart = machineTicks();
  const sections: Section[] = [];
  const goals: Goal[] = [];
  const goal = (scenario: string, aim: string, measured: string, holds: boolean) =>
    goals.push({ scenario, aim, measured, holds });
  let ok = true;
  const scenarioDir = (name: string) => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  try {
    if (runs("intake")) {
      const intake = await runIntake({
        dir: scenarioDir("intake"),
        connections: CONNECTIONS,
        warmupS: WARMUP_S,
        durationS: DURATION_S,
        fixedRate: 1_000,
        poolSize: POOL_SIZE,
        talkgateFlags,
      });
      const rate = (run: typeof intake.bare) => run.saturation.main.requests.mean;
      const toBare = rate(intake.talkgate) / rate(intake.bare);
      const toExpress = rate(intake.talkgate) / rate(intake.express);
      const p99 = intake.talkgate.fixed.ack.p99;
      goal(
        "intake",
        "talkgate ≥ 0.6× bare node:http",
        `${fmt(toBare, 2)}× (${fmt(rate(intake.talkgate))} vs ${fmt(rate(intake.bare))} req/s)`,
        toBare >= 0.6,
      );
      goal(
        "intake",
        "talkgate ≥ 1.5× SDK middleware on Express",
        `${fmt(toExpress, 2)}× (vs ${fmt(rate(intake.express))} req/s)`,
        toExpress >= 1.5,
      );
      goal("intake", "acknowledgement p99 ≤ 10 ms at 1,000/s", `${ms(p99)} ms`, p99 <= 10);
      goal("intake", "every acknowledged webhook stored", intake.durable ? "yes" : "NO", intake.durable);
      sections.push(intake.section);
      ok &&= intake.durable;
    }
    if (runs("e2e")) {
      const e2e = await runE2e({
        dir: scenarioDir("e2e"),
        rate: 500,
        conversations: 500,
        durationS: Math.max(DURATION_S, 20),
        warmupS: WARMUP_S,
        talkgateFlags,
      });
      const holds = e2e.latency.p99 <= 50 && e2e.missing === 0 && e2e.orderViolations === 0;
      goal(
        "end to end",
        "p99 ≤ 50 ms at 500/s over 500 conversations, none lost, in order",
        `p50 ${ms(e2e.latency.p50)} ms, p99 ${ms(e2e.latency.p99)} ms, ${e2e.missing} lost, ${e2e.orderViolations} out of order`,
        holds,
      );
      sections.push(e2e.section);
      ok &&= e2e.missing === 0 && e2e.orderViolations === 0;
    }
    if (runs("delivery")) {
      const drain = await runDrain({
        dir: scenarioDir("delivery"),
        events: BACKLOG,
        conversations: 1_000,
        talkgateFlags,
      });
      const inOrder = drain.orderViolations === 0 && drain.delivered === BACKLOG;
      goal(
        "delivery",
        `≥ 5,000 events/s from a ${fmt(BACKLOG)} backlog over 1,000 conversations, in order`,
        `${fmt(drain.perSecond)}/s, ${fmt(drain.delivered)} in order, ${drain.orderViolations} out of order`,
        drain.perSecond >= 5_000 && inOrder,
      );
      sections.push(drain.section);
      ok &&= inOrder;
    }
    if (runs("media")) {
      const lines: string[] = [];
      const media = await runMedia({
        dir: scenarioDir("media"),
        sizeBytes: MEDIA_BYTES,
        seed: 20_261_122,
        nodeFlags: talkgateFlags,
        probe: process.env.BENCH_MEDIA_PROBE === "1",
        say: (line = "") => lines.push(line),
      });
      goal(
        "media",
        `RSS growth ≤ ${AIM_GROWTH_MIB} MiB for ${fmt(MEDIA_BYTES / MiB)} MiB, byte-exact`,
        `${media.growthMiB >= 0 ? "+" : ""}${fmt(media.growthMiB, 1)} MiB; LINE → talkgate ${fmt(media.leg1MiBs)} MiB/s, talkgate → partner ${fmt(media.leg2MiBs)} MiB/s`,
        media.growthMiB <= AIM_GROWTH_MIB && media.ok,
      );
      sections.push({ title: "Media", lines });
      ok &&= media.ok;
    }
    if (runs("footprint")) {
      const footprint = await runFootprint({
        dir: scenarioDir("footprint"),
        starts: 5,
        idleS: 5,
        talkgateFlags,
      });
      const idleMiB = footprint.idle.rss / MiB;
      goal(
        "footprint",
        "idle RSS ≤ 80 MB",
        `${fmt(idleMiB, 1)} MiB (${fmt(footprint.idle.rss / 1e6, 1)} MB)`,
        footprint.idle.rss <= 80e6,
      );
      goal(
        "footprint",
        "cold start to ready ≤ 1 s",
        `median ${fmt(footprint.readyMedianMs)} ms, worst ${fmt(footprint.readyMaxMs)} ms`,
        footprint.readyMaxMs <= 1_000,
      );
      const native = footprint.install?.nativeAddons.length ?? Number.NaN;
      goal(
        "footprint",
        "installs with zero native addons",
        footprint.install
          ? `${native} native addons, ${fmt(footprint.install.seconds, 1)} s`
          : "install failed",
        native === 0,
      );
      sections.push(footprint.section);
    }

    const ticksAtEnd = machineTicks();
    const steal =
      ticksAtStart && ticksAtEnd
        ? (ticksAtEnd.steal - ticksAtStart.steal) / Math.max(1, ticksAtEnd.total - ticksAtStart.total)
        : null;
    const header = [
      "# talkgate benchmark results",
      "",
      `Written by \`npm run bench\` (bench/run.ts) on ${startedAt.toISOString()}, in ${fmt((Date.now() - startedAt.getTime()) / 1000)} s.`,
      "",
      `- machine: ${machine}`,
      `- other load before the start: ${cores(background)} cores busy; hypervisor steal over the whole run: ` +
        `${steal === null ? "n/a" : `${fmt(100 * steal, 1)}%`} (figures from a run with high steal are depressed)`,
      "- everything on loopback (127.0.0.1); talkgate as `node bin/talkgate.js serve` in a child process" +
        (talkgateFlags.length > 0
          ? ` with \`${talkgateFlags.join(" ")}\`${CPU_PROF ? " (**profiling: slower than normal**)" : ""}`
          : ""),
    ];
    // The analysis of the misses is written by hand from profiles (bench/ANALYSIS.md) and kept with the figures.
    const analysis = join(ROOT, "bench", "ANALYSIS.md");
    if (existsSync(analysis))
      sections.push({
        title: "Misses: causes and what would close them",
        lines: readFileSync(analysis, "utf8").trimEnd().split("\n"),
      });
    const text = render(header, goals, sections);
    console.log(`\n${text}`);
    if (CPU_PROF)
      for (const file of readdirSync(profDir)
        .filter((f) => f.endsWith(".cpuprofile"))
        .sort())
        console.log(`\nprofile ${file}:\n${topSelfTime(join(profDir, file), 30).join("\n")}`);
    if (only.length === 0) {
      const path = join(ROOT, "bench", "RESULTS.md");
      writeFileSync(path, text);
      console.log(`\nwritten to ${relative(process.cwd(), path)}`);
    } else console.log("\npartial run (BENCH_ONLY): bench/RESULTS.md left as it was");
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
