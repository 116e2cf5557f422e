// Scenario 5, footprint: cold start to ready, RSS at idle, and a production install (time, native addons).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Section } from "./report.ts";
import { startSink } from "./sink-server.ts";
import { fmt, MiB, ROOT, sleep, startTalkgateChild, stopChild } from "./support.ts";

export interface FootprintOptions {
  dir: string;
  starts: number;
  idleS: number;
  talkgateFlags: readonly string[];
}

export interface FootprintResult {
  /** Spawn to the first 200 from /readyz, ms: median and worst. */
  readyMedianMs: number;
  readyMaxMs: number;
  idle: { rss: number; anon: number; file: number };
  install: { seconds: number; nativeAddons: string[]; installScripts: string[]; packages: number } | null;
  section: Section;
}

function memory(pid: number | undefined): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) =>
    Number(/\s(\d+) kB/.exec(status.split("\n").find((l) => l.startsWith(key)) ?? "")?.[1]) * 1024;
  return { rss: kb("VmRSS:"), anon: kb("RssAnon:"), file: kb("RssFile:") };
}

/** Every file under `dir` whose name matches, as paths relative to `dir`. */
function findFiles(dir: string, match: (name: string) => boolean): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
    .filter((entry) => entry.isFile() && match(entry.name))
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

/** `npm ci --omit=dev` of this package-lock in an empty directory (packages from npm's cache when present). */
function install(dir: string): FootprintResult["install"] {
  mkdirSync(dir, { recursive: true });
  for (const file of ["package.json", "package-lock.json"]) copyFileSync(join(ROOT, file), join(dir, file));
  const started = performance.now();
  const npm = spawnSync("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd: dir,
    encoding: "utf8",
  });
  const seconds = (performance.now() - started) / 1000;
  if (npm.status !== 0) {
    console.log(`footprint: npm ci failed (${npm.status}): ${npm.stderr.slice(-500)}`);
    return null;
  }
  const modules = join(dir, "node_modules");
  const lock = JSON.parse(readFileSync(join(dir, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
  };
  const production = Object.entries(lock.packages).filter(([path, p]) => path !== "" && !p.dev);
  return {
    seconds,
    nativeAddons: findFiles(modules, (name) => name.endsWith(".node") || name === "binding.gyp"),
    installScripts: production.filter(([, p]) => p.hasInstallScript).map(([path]) => path),
    packages: production.length,
  };
}

export async function runFootprint(options: FootprintOptions): Promise<FootprintResult> {
  const sink = await startSink();
  const readyMs: number[] = [];
  // The first start finds the compile cache empty, as after an install or upgrade, and fills it for the others.
  const compileCache = join(options.dir, "compile-cache");
  let idle = { rss: Number.NaN, anon: Number.NaN, file: Number.NaN };
  try {
    for (let n = 0; n < options.starts; n++) {
      const tg = await startTalkgateChild({
        name: "talkgate (footprint)",
        dir: join(options.dir, `start-${n}`),
        lineUrl: sink.url,
        partnerUrl: sink.url,
        nodeFlags: options.talkgateFlags,
        pollMs: 5,
        env: { NODE_COMPILE_CACHE: compileCache },
      });
      readyMs.push(tg.readyMs);
      if (n === options.starts - 1) {
        await sleep(options.idleS * 1000);
        idle = memory(tg.child.proc.pid);
      }
      await stopChild(tg.child);
    }
  } finally {
    await sink.close();
  }
  console.log("footprint: production install…");
  const installed = install(join(options.dir, "install"));
  const sorted = [...readyMs].sort((a, b) => a - b);
  const readyMedianMs = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  const readyMaxMs = sorted.at(-1) ?? Number.NaN;
  const lines = [
    `Cold start: \`node bin/talkgate.js serve\` spawned ${options.starts} times, each on a fresh data directory ` +
      "(so the schema is created too), timed until `GET /readyz` first answers 200 (asked every 5 ms); the first " +
      `start finds Node's compile cache empty and fills it (ready in ${fmt(readyMs[0] ?? Number.NaN)} ms), the ` +
      "others use it. Idle RSS: " +
      `the last one, ${options.idleS} s after ready with nothing to do (VmRSS; RssFile is mostly the node binary's ` +
      "own pages). Install: `npm ci --omit=dev` of the lockfile in an empty directory, packages from npm's cache.",
    "",
    "| ready median ms | ready max ms | idle RSS MiB | of which anonymous | of which file-backed |",
    "|---:|---:|---:|---:|---:|",
    `| ${fmt(readyMedianMs)} | ${fmt(readyMaxMs)} | ${fmt(idle.rss / MiB, 1)} | ${fmt(idle.anon / MiB, 1)} | ${fmt(idle.file / MiB, 1)} |`,
    "",
    installed
      ? `Production install: ${fmt(installed.packages)} packages in ${fmt(installed.seconds, 1)} s; native addons ` +
        `(\`.node\` files, \`binding.gyp\`): **${installed.nativeAddons.length === 0 ? "none" : installed.nativeAddons.join(", ")}**; ` +
        `packages with install scripts: ${installed.installScripts.length === 0 ? "none" : installed.installScripts.join(", ")}.`
      : "Production install: **npm ci failed** (see the bench output).",
  ];
  return {
    readyMedianMs,
    readyMaxMs,
    idle,
    install: installed,
    section: { title: "Footprint", lines },
  };
}
