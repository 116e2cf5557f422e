// `npm run bench`: every scenario, each side by side with its reference in the same run, written to
// bench/RESULTS.md with the goals they are held to.
//   1. intake (bench/intake.ts)    bare node:http, @line/bot-sdk middleware on Express, talkgate on SQLite,
//                                   talkgate on PostgreSQL, two talkgate instances on one PostgreSQL database
//   2. end to end (bench/e2e.ts)    webhook → partner sink at a fixed rate, on each database
//   3. delivery (bench/drain.ts)    a backlog drained to a partner sink, order checked, on each database
//   4. media (bench/media.ts)       a large video through both legs, RSS sampled (SQLite)
//   5. footprint (bench/footprint.ts) cold start, idle RSS, production install (SQLite)
// PostgreSQL (bench/databases.ts): one server for the run, started with test/support/postgres.ts (Debian's
// PostgreSQL) in the temp directory, durable settings, pg_stat_statements loaded; a fresh database per run, and
// what each run cost it per event (bench/db-cost.ts). It is stopped at the end, on error and on Ctrl-C.
//
// Environment knobs (all optional): BENCH_ONLY (comma-separated scenarios: intake, e2e, delivery, media,
// footprint; a partial run prints its figures but leaves RESULTS.md alone), BENCH_DATABASES (comma-separated:
// sqlite, postgres; default both: intake, e2e and delivery run on each; a run without both also leaves
// RESULTS.md alone), BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS (default
// 50), BENCH_POOL (pre-signed bodies, default 350000), BENCH_BACKLOG (delivery backlog, default 50000),
// BENCH_MEDIA_MB (default 200), BENCH_MEDIA_PROBE=1 (split the media scenario's memory into heap, external and
// ArrayBuffers), BENCH_CPU_PROF=1 (every talkgate child runs with --cpu-prof; the top self-time functions of
// each profile are printed), BENCH_TALKGATE_NODE_FLAGS (extra Node flags for every talkgate child),
// BENCH_PG_STATEMENTS=1 (print every PostgreSQL run's statements per 1,000 events), BENCH_KEEP=1 (keep the temp
// directory with databases, logs, profiles; not PostgreSQL's cluster, removed when its server stops).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, relative } from "node:path";
import {
  BenchPostgres,
  DATABASE_KINDS,
  type DatabaseKind,
  type ScenarioDatabase,
  sqliteDatabase,
} from "./databases.ts";
import { type CostRow, costSection, statementTable } from "./db-cost.ts";
import { type DrainResult, drainSection, runDrain } from "./drain.ts";
import { type E2eResult, e2eSection, runE2e } from "./e2e.ts";
import { runFootprint } from "./footprint.ts";
import { ms, runIntake, type TalkgateSetup } from "./intake.ts";
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
  sleep,
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
const databases = (process.env.BENCH_DATABASES ?? DATABASE_KINDS.join(",")).split(",").filter(Boolean);
const unknownDatabases = databases.filter((name) => !DATABASE_KINDS.includes(name as DatabaseKind));
if (unknownDatabases.length > 0 || databases.length === 0) {
  console.error(
    `BENCH_DATABASES: unknown database(s) ${unknownDatabases.join(", ")}; known: ${DATABASE_KINDS.join(", ")}`,
  );
  process.exit(2);
}
const onDatabase = (kind: DatabaseKind) => databases.includes(kind);
const complete = only.length === 0 && DATABASE_KINDS.every(onDatabase);
const DURATION_S = envInt("BENCH_DURATION", 10);
const WARMUP_S = envInt("BENCH_WARMUP", 2);
const CONNECTIONS = envInt("BENCH_CONNECTIONS", 50);
const POOL_SIZE = envInt("BENCH_POOL", 350_000);
const BACKLOG = envInt("BENCH_BACKLOG", 50_000);
const MEDIA_BYTES = envInt("BENCH_MEDIA_MB", 200) * MiB;
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
const PG_STATEMENTS = process.env.BENCH_PG_STATEMENTS === "1";
const KEEP = process.env.BENCH_KEEP === "1";
const EXTRA_FLAGS = (process.env.BENCH_TALKGATE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const HARD_LIMIT_MS = 20 * 60_000;

// The run's PostgreSQL server, once started: stopped at the end, on error, on Ctrl-C and on timeout (and, should
// the process exit otherwise, test/support/postgres.ts's exit hook kills it).
let pg: BenchPostgres | undefined;
let pgStopped: Promise<void> | undefined;
const stopPostgres = (): Promise<void> => {
  const server = pg;
  if (!server) return Promise.resolve();
  pgStopped ??= Promise.race([server.stop(), sleep(10_000)]).catch(() => {});
  return pgStopped;
};
// The run's temp directory, removed on the way out unless BENCH_KEEP=1.
let tempDir: string | undefined;
// Once leaving early (a signal, the time limit, an error), the first reason wins and the rest wait for it.
let leaving: Promise<void> | undefined;
const giveUp = (code: number): Promise<void> => {
  leaving ??= (async () => {
    killAllNow();
    await stopPostgres();
    if (tempDir && !KEEP) rmSync(tempDir, { recursive: true, force: true });
    process.exit(code);
  })();
  return leaving;
};

process.once("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping children`);
    void giveUp(130);
  });
setTimeout(() => {
  console.error(`bench: still running after ${HARD_LIMIT_MS / 60_000} min; giving up`);
  void giveUp(1);
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
  tempDir = dir;
  const profDir = join(dir, "prof");
  const talkgateFlags = [...(CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []), ...EXTRA_FLAGS];
  const cpu = cpus();
  const machine =
    `${cpu[0]?.model.trim() ?? "unknown CPU"}, ${cpu.length} cores, ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, ` +
    `Node ${process.version}, ${process.platform}/${process.arch}`;
  console.log(`talkgate benchmark: ${machine}\ntemp directory ${dir}`);
  const background = await backgroundCores(1_000);
  // The 1-minute load average through the run: the bench's own processes count in it, other work adds to it.
  const loads: number[] = [];
  const loadTimer = setInterval(() => loads.push(loadavg()[0] ?? 0), 5_000);
  loadTimer.unref();
  const ticksAtStart = machineTicks();
  const sections: Section[] = [];
  const goals: Goal[] = [];
  const goal = (scenario: string, aim: string, measured: string, holds: boolean | null) =>
    goals.push({ scenario, aim, measured, holds });
  let ok = true;
  const scenarioDir = (name: string) => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  try {
    if (onDatabase("postgres") && (runs("intake") || runs("e2e") || runs("delivery"))) {
      console.log("starting PostgreSQL…");
      pg = await BenchPostgres.start(join(dir, "postgres"));
      console.log(
        `PostgreSQL ${pg.version} on port ${pg.server.port} (pg_stat_statements: ${pg.statements ? "yes" : "no"})`,
      );
    }
    const server = pg;
    const kinds = DATABASE_KINDS.filter(onDatabase);
    const databasePid = (kind: DatabaseKind) => (kind === "postgres" ? server?.pid : undefined);
    // A fresh database: a SQLite file in `path`, or a new database on the run's PostgreSQL server.
    const fresh = async (kind: DatabaseKind, name: string, path: string): Promise<ScenarioDatabase> => {
      if (kind === "sqlite") return sqliteDatabase(path);
      if (!server) throw new Error("PostgreSQL is not running");
      return server.database(name);
    };
    const costRows: CostRow[] = [];
    if (runs("intake")) {
      const talkgates: TalkgateSetup[] = [];
      if (onDatabase("sqlite"))
        talkgates.push({
          name: "talkgate, SQLite",
          description:
            "`bin/talkgate.js serve`, fresh SQLite file (WAL), the 200 only after the commit and the fsync of the " +
            "log; default settings, info logs to a file; delivering to a fast sink (another process) meanwhile, " +
            "making way for intake when its commits slow down (`delivery.intakeLatencyTargetMs`)",
          instances: 1,
          database: async (path) => sqliteDatabase(path),
        });
      if (server) {
        talkgates.push({
          name: "talkgate, PostgreSQL",
          description:
            "the same on a fresh database of the run's PostgreSQL server (see [PostgreSQL](#postgresql)): the 200 " +
            "only after the group commit's COMMIT returned (WAL flushed), default `postgres` settings (a pool of 10)",
          instances: 1,
          database: () => server.database("intake"),
          databasePid: server.pid,
        });
        talkgates.push({
          name: "2× talkgate, PostgreSQL",
          description:
            "two instances on one fresh database, the load spread over both (autocannon's connections alternate " +
            "between them; the fixed-rate generator sends request k to instance k mod 2), each delivering; on " +
            "this machine the load generator, the sink, PostgreSQL and both instances share the 2 cores",
          instances: 2,
          database: () => server.database("intake_2"),
          databasePid: server.pid,
        });
      }
      const intake = await runIntake({
        dir: scenarioDir("intake"),
        connections: CONNECTIONS,
        warmupS: WARMUP_S,
        durationS: DURATION_S,
        fixedRate: 1_000,
        poolSize: POOL_SIZE,
        talkgateFlags,
        talkgates,
      });
      const rate = (run: { saturation: { main: { requests: { mean: number } } } }) =>
        run.saturation.main.requests.mean;
      const sqlite = intake.talkgate.find((run) => run.database.kind === "sqlite");
      const pgOne = intake.talkgate.find(
        (run) => run.database.kind === "postgres" && run.setup.instances === 1,
      );
      const pgTwo = intake.talkgate.find(
        (run) => run.database.kind === "postgres" && run.setup.instances === 2,
      );
      if (sqlite) {
        const toBare = rate(sqlite) / rate(intake.bare);
        const toExpress = rate(sqlite) / rate(intake.express);
        const p99 = sqlite.fixed.ack.p99;
        goal(
          "intake",
          "talkgate (SQLite) ≥ 0.6× bare node:http",
          `${fmt(toBare, 2)}× (${fmt(rate(sqlite))} vs ${fmt(rate(intake.bare))} req/s)`,
          toBare >= 0.6,
        );
        goal(
          "intake",
          "talkgate (SQLite) ≥ 1.5× SDK middleware on Express",
          `${fmt(toExpress, 2)}× (vs ${fmt(rate(intake.express))} req/s)`,
          toExpress >= 1.5,
        );
        goal(
          "intake",
          "talkgate (SQLite): acknowledgement p99 ≤ 10 ms at 1,000/s",
          `${ms(p99)} ms`,
          p99 <= 10,
        );
      }
      if (pgOne) {
        const toSqlite = sqlite ? rate(pgOne) / rate(sqlite) : Number.NaN;
        goal(
          "intake",
          "talkgate on PostgreSQL, one instance ≥ 0.5× talkgate on SQLite (saturation)",
          `${sqlite ? `${fmt(toSqlite, 2)}× (${fmt(rate(pgOne))} vs ${fmt(rate(sqlite))} req/s)` : `${fmt(rate(pgOne))} req/s, no SQLite run`}; ` +
            `acknowledgement p99 at 1,000/s ${ms(pgOne.fixed.ack.p99)} ms`,
          sqlite ? toSqlite >= 0.5 : null,
        );
      }
      if (pgTwo) {
        const cpu = pgTwo.saturation.cpu;
        goal(
          "intake",
          "two talkgate instances on one PostgreSQL: reported, no aim (2 cores for the load generator, the sink, " +
            "PostgreSQL and both instances)",
          `${fmt(rate(pgTwo))} req/s${pgOne ? ` (${fmt(rate(pgTwo) / rate(pgOne), 2)}× one instance)` : ""}, ` +
            `machine ${cpu.machine ? fmt(cpu.machine.busyCores, 2) : "n/a"} of 2 cores busy; acknowledgement p99 ` +
            `at 1,000/s ${ms(pgTwo.fixed.ack.p99)} ms`,
          null,
        );
      }
      for (const run of intake.talkgate)
        goal(
          "intake",
          `every acknowledged webhook stored (${run.name})`,
          run.durable ? "yes" : "NO",
          run.durable,
        );
      for (const run of intake.talkgate)
        if (run.cost)
          costRows.push({
            scenario: `intake, ${run.setup.instances === 1 ? "one instance" : `${run.setup.instances} instances`}`,
            events: run.stored,
            what: "stored and delivered",
            cost: run.cost,
          });
      sections.push(intake.section);
      ok &&= intake.durable;
    }
    if (runs("e2e")) {
      const options = {
        rate: 500,
        conversations: 500,
        durationS: Math.max(DURATION_S, 20),
        warmupS: WARMUP_S,
      };
      const results: E2eResult[] = [];
      for (const kind of kinds) {
        const path = scenarioDir(`e2e-${kind}`);
        const e2e = await runE2e({
          ...options,
          dir: path,
          talkgateFlags,
          database: await fresh(kind, "e2e", join(path, "talkgate")),
          databasePid: databasePid(kind),
        });
        results.push(e2e);
        const holds = e2e.latency.p99 <= 50 && e2e.missing === 0 && e2e.orderViolations === 0;
        goal(
          `end to end (${e2e.label})`,
          "p99 ≤ 50 ms at 500/s over 500 conversations, none lost, in order",
          `p50 ${ms(e2e.latency.p50)} ms, p99 ${ms(e2e.latency.p99)} ms, ${e2e.missing} lost, ${e2e.orderViolations} out of order`,
          holds,
        );
        if (e2e.cost)
          costRows.push({
            scenario: "end to end, 500/s",
            events: e2e.stored,
            what: "stored and delivered",
            cost: e2e.cost,
          });
        ok &&= e2e.missing === 0 && e2e.orderViolations === 0;
      }
      sections.push(e2eSection(results, options));
    }
    if (runs("delivery")) {
      const options = { events: BACKLOG, conversations: 1_000 };
      const results: DrainResult[] = [];
      for (const kind of kinds) {
        const path = scenarioDir(`delivery-${kind}`);
        const drain = await runDrain({
          ...options,
          dir: path,
          talkgateFlags,
          database: await fresh(kind, "delivery", join(path, "talkgate")),
          databasePid: databasePid(kind),
        });
        results.push(drain);
        const inOrder = drain.orderViolations === 0 && drain.delivered === BACKLOG;
        goal(
          `delivery (${drain.label})`,
          `≥ 5,000 events/s from a ${fmt(BACKLOG)} backlog over 1,000 conversations, in order`,
          `${fmt(drain.perSecond)}/s, ${fmt(drain.delivered)} in order, ${drain.orderViolations} out of order`,
          drain.perSecond >= 5_000 && inOrder,
        );
        if (drain.cost)
          costRows.push({
            scenario: "delivery of a backlog",
            events: drain.delivered,
            what: "delivered",
            cost: drain.cost,
          });
        ok &&= inOrder;
      }
      sections.push(drainSection(results, options));
    }
    if (server && costRows.length > 0)
      sections.push(
        costSection(
          `All PostgreSQL runs above are on one server started for this run: PostgreSQL ${server.version} (Debian's ` +
            "package, started by `test/support/postgres.ts`), a fresh cluster in the bench's temp directory on the " +
            "same disk as the SQLite files, loopback TCP, `fsync`, `synchronous_commit` and `full_page_writes` on " +
            "(the test harness turns them off), initdb's defaults otherwise (`shared_buffers` 128 MB), " +
            `pg_stat_statements ${server.statements ? "loaded" : "**not available** (statements n/a)"}; a fresh ` +
            "database for each run, talkgate's `postgres` settings at their defaults (a pool of 10 per instance).",
          costRows,
          "end to end, 500/s",
        ),
      );
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
      `- 1-minute load average during the run (every 5 s; the bench's own processes count in it, other work ` +
        `adds to it): mean ${loads.length > 0 ? fmt(loads.reduce((a, b) => a + b, 0) / loads.length, 1) : "n/a"}, ` +
        `highest ${loads.length > 0 ? fmt(Math.max(...loads), 1) : "n/a"} (for ${cpu.length} cores)`,
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
    if (PG_STATEMENTS)
      for (const row of costRows)
        console.log(`\nPostgreSQL statements, ${row.scenario}:\n${statementTable(row).join("\n")}`);
    if (CPU_PROF)
      for (const file of readdirSync(profDir)
        .filter((f) => f.endsWith(".cpuprofile"))
        .sort())
        console.log(`\nprofile ${file}:\n${topSelfTime(join(profDir, file), 30).join("\n")}`);
    if (complete) {
      const path = join(ROOT, "bench", "RESULTS.md");
      writeFileSync(path, text);
      console.log(`\nwritten to ${relative(process.cwd(), path)}`);
    } else console.log("\npartial run (BENCH_ONLY or BENCH_DATABASES): bench/RESULTS.md left as it was");
    if (!ok) process.exitCode = 1;
  } finally {
    await Promise.all([...children].map((child) => stopChild(child, 3_000)));
    await stopPostgres();
    if (KEEP) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => {
    if (!leaving) process.exit();
  },
  (error: unknown) => {
    if (leaving) return; // a signal or the time limit: that exit is under way
    console.error(error);
    void giveUp(1);
  },
);
