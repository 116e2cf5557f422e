// Shared by the benchmark scenarios: child processes (every one killed at the end, on error, on Ctrl-C or on
// timeout), talkgate children, readiness checks, free ports, /proc readings and number formatting.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stackConfig } from "../test/support/stack.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TALKGATE_BIN = join(ROOT, "bin", "talkgate.js");

export interface Child {
  name: string;
  proc: ChildProcess;
  logPath: string;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

export const children = new Set<Child>();

/** Starts `node <args>` with its output appended to `logPath`; `env` is added to this process's environment. */
export function startChild(
  name: string,
  args: readonly string[],
  logPath: string,
  env: Record<string, string> = {},
): Child {
  const fd = openSync(logPath, "a");
  // Output goes straight to a file: no pipe to drain, nothing in this process slowed by the child's logging.
  // Run in the temp directory (next to the log) so nothing a child writes (profiles, V8 logs) lands in the repo.
  const proc = spawn(process.execPath, args, {
    cwd: dirname(logPath),
    stdio: ["ignore", fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  const child: Child = { name, proc, logPath, exitCode: undefined, exited: Promise.resolve(null) };
  child.exited = new Promise((resolve) => {
    proc.once("exit", (code, signal) => {
      child.exitCode = code ?? (signal ? -1 : null);
      children.delete(child);
      resolve(child.exitCode);
    });
    proc.once("error", () => resolve(null));
  });
  children.add(child);
  return child;
}

export async function stopChild(child: Child, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== undefined) return;
  child.proc.kill("SIGTERM");
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export function killAllNow(): void {
  for (const child of children) child.proc.kill("SIGKILL");
}

export function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitForHttp(url: string, child: Child, timeoutMs = 15_000, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== undefined) {
      throw new Error(
        `${child.name} exited (${child.exitCode}) before it was ready:\n${tail(child.logPath)}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(pollMs);
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms:\n${tail(child.logPath)}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Cores busy machine-wide over `ms` while the benchmark itself does nothing: other people's load. */
export async function backgroundCores(ms: number): Promise<number | null> {
  const before = machineTicks();
  await sleep(ms);
  const after = machineTicks();
  return before && after ? (after.busy - before.busy) / 100 / (ms / 1000) : null;
}

/** Machine-wide CPU counters from /proc/stat (busy and steal ticks, and all ticks); null off Linux. */
export function machineTicks(): { busy: number; steal: number; total: number } | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0);
    return { busy, steal: steal ?? 0, total: busy + (idle ?? 0) + (iowait ?? 0) + (steal ?? 0) };
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used, in seconds; Linux /proc only, else null. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return null;
  }
}

/**
 * CPU time (user + system, seconds) of these processes and all their descendants, living or reaped (a reaped
 * child's time is in its parent's cutime/cstime): PostgreSQL's postmaster with its backends. Linux only, else null.
 */
export function treeCpuSeconds(roots: readonly (number | undefined)[]): number | null {
  const procs = new Map<number, { ppid: number; seconds: number }>();
  try {
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        // utime, stime, cutime, cstime in USER_HZ (100 on Linux)
        const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
        procs.set(Number(name), { ppid: Number(fields[1]), seconds: ticks / 100 });
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return null;
  }
  const wanted = new Set(roots.filter((pid): pid is number => pid !== undefined && procs.has(pid)));
  if (wanted.size === 0) return null;
  // Parents come before their children in no particular order: widen until nothing changes.
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, proc] of procs)
      if (!wanted.has(pid) && wanted.has(proc.ppid)) {
        wanted.add(pid);
        grew = true;
      }
  }
  let seconds = 0;
  for (const pid of wanted) seconds += procs.get(pid)?.seconds ?? 0;
  return seconds;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const cores = (n: number | null) => (n === null ? "n/a" : fmt(n, 2));

/** A talkgate child (`bin/talkgate.js serve`) on a fresh data directory, ready. */
export interface TalkgateChild {
  child: Child;
  url: string;
  /** From spawn to the first 200 from /readyz. */
  readyMs: number;
  dbPath: string;
  logPath: string;
}

/**
 * Starts talkgate with production settings for delivery, media and profiles (the test stack shortens them) and
 * info logging to a file; LINE (profiles, content) at `lineUrl`, the partner at `partnerUrl`.
 */
export async function startTalkgateChild(options: {
  name: string;
  dir: string;
  lineUrl: string;
  partnerUrl: string;
  nodeFlags?: readonly string[];
  /** talkgate's `database` setting; default a fresh SQLite file `talkgate.db` in `dir`. */
  database?: string;
  config?: Record<string, unknown>;
  /** How often readiness is asked. */
  pollMs?: number;
  /** Added to talkgate's environment. */
  env?: Record<string, string>;
}): Promise<TalkgateChild> {
  mkdirSync(options.dir, { recursive: true });
  const port = await freePort();
  const raw = stackConfig(options.lineUrl, options.partnerUrl, {
    config: {
      listen: { host: "127.0.0.1", port },
      logLevel: "info",
      delivery: {},
      media: {},
      profiles: {},
      ...(options.database ? { database: options.database } : {}),
      ...options.config,
    },
  });
  const configPath = join(options.dir, "talkgate.config.json");
  writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
  const logPath = join(options.dir, "talkgate.log");
  const spawned = performance.now();
  const child = startChild(
    options.name,
    [...(options.nodeFlags ?? []), TALKGATE_BIN, "serve", "--config", configPath],
    logPath,
    options.env,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/readyz`, child, 15_000, options.pollMs);
  return {
    child,
    url,
    readyMs: performance.now() - spawned,
    dbPath: join(options.dir, "talkgate.db"),
    logPath,
  };
}

/** VmRSS of a process in bytes (Linux), or NaN. */
export function rssOf(pid: number | undefined): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("VmRSS:"));
    return line ? Number.parseInt(line.slice(6), 10) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Reads a process's RSS every `everyMs` until stopped; returns the peak in bytes. */
export function rssPeak(pid: number | undefined, everyMs = 50): () => number {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    const rss = rssOf(pid);
    if (rss > peak || Number.isNaN(peak)) peak = rss;
  }, everyMs);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssOf(pid));
  };
}

export const MiB = 2 ** 20;
