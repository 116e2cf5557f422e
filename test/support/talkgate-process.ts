// Runs `talkgate serve` as a child process on a fixed port, so tests can SIGKILL it and start it again on
// the same database (the one the suites run on: test/support/database.ts), as a crash and a supervisor's restart
// would (`onOutput` sees every line it writes). Its output is kept, not shown, unless a test fails.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { testDatabaseUrl } from "./database.ts";
import { readRows, type Sql } from "./read-rows.ts";

/** A loopback port that was free a moment ago, outside the range the system hands out for port 0. */
export async function freePort(): Promise<number> {
  // Below Linux's ephemeral range (32768–60999), where `listen(0)` never goes: a server the test starts
  // next on port 0 cannot take this port before talkgate binds it.
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
}

/** A talkgate child process that can be killed and restarted on the same port and database. */
export interface TalkgateProcess {
  /** `http://127.0.0.1:<port>`, the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** The data directory (config, SQLite file, media). */
  readonly dir: string;
  /** Its `database`: `sqlite:<dir>/talkgate.db`, or its own PostgreSQL database. */
  readonly database: string;
  /** How many times it was SIGKILLed. */
  readonly kills: number;
  /** For each restart, the ms from the SIGKILL to talkgate's next `talkgate:ready`. */
  readonly restartMs: readonly number[];
  /** The last {@link OUTPUT_LINES} lines talkgate wrote (stdout and stderr, every run), oldest first. */
  readonly output: readonly string[];
  /** SIGKILL (no shutdown of any kind), wait for the exit, start again; resolves once it is ready. */
  killAndRestart(): Promise<void>;
  /** Runs `sql` (parameters `$1`…; one per database where they differ) on a read-only connection of its own. */
  query<T>(sql: Sql, ...params: Array<string | number>): Promise<T[]>;
  /** SIGKILLs it and removes the data directory. */
  close(): Promise<void>;
}

/**
 * Writes `config` (a raw configuration object; `listen` and `database` are set here) to a fresh data directory
 * and starts `talkgate serve` on it; resolves once talkgate logs `talkgate:ready`. Its database is the suites'
 * (a new one in the directory) unless `options.database` names one (e.g. the database a cluster shares).
 */
export async function startTalkgateProcess(
  config: Record<string, unknown>,
  port: number,
  options: { onOutput?: (line: string) => void; database?: string } = {},
): Promise<TalkgateProcess> {
  const dir = mkdtempSync(join(tmpdir(), "talkgate-crash-"));
  const configPath = join(dir, "talkgate.config.json");
  const database = await Promise.resolve(options.database ?? testDatabaseUrl(dir)).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  writeFileSync(
    configPath,
    JSON.stringify({ ...config, database, logLevel: "info", listen: { host: "127.0.0.1", port } }),
  );
  const output: string[] = [];
  let runs = 1;
  let child = await spawnTalkgate(configPath, output, runs, options.onOutput).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  let kills = 0;
  const restartMs: number[] = [];
  const killChild = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    database,
    get kills() {
      return kills;
    },
    restartMs,
    output,
    async killAndRestart() {
      const killedAt = Date.now();
      await killChild();
      kills++;
      child = await spawnTalkgate(configPath, output, ++runs, options.onOutput);
      restartMs.push(Date.now() - killedAt);
    },
    query<T>(sql: Sql, ...params: Array<string | number>): Promise<T[]> {
      return readRows<T>(database, sql, ...params);
    },
    async close() {
      await killChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How many of talkgate's last output lines are kept for a failing test to show. */
export const OUTPUT_LINES = 300;

/**
 * Prints talkgate's last output lines to stderr when `t` failed (call it from `afterEach`, or from the
 * test's own `t.after`); a passing test shows nothing of it.
 */
export function printOutputIfFailed(
  t: { readonly name: string },
  talkgate: TalkgateProcess | undefined,
): void {
  // TestContext.passed (Node ≥ 21.7) is missing from @types/node's TestContext, not from Node.
  if ((t as { passed?: boolean }).passed !== false || !talkgate) return;
  process.stderr.write(
    `--- "${t.name}" failed; talkgate's last ${talkgate.output.length} output lines ---\n` +
      `${talkgate.output.join("\n")}\n--- end of talkgate's output ---\n`,
  );
}

// Starts `talkgate serve` and resolves once it logs that it is ready (within 20 s). Every line it writes
// (both streams are read, so that a full pipe never stalls it) goes to `output`, tagged with its run.
async function spawnTalkgate(
  configPath: string,
  output: string[],
  run: number,
  onOutput?: (line: string) => void,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["bin/talkgate.js", "serve", "--config", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (stream: string) => (line: string) => {
    onOutput?.(line);
    output.push(`[run ${run} ${stream}] ${line}`);
    if (output.length > OUTPUT_LINES) output.shift();
  };
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", keep("stderr"));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on("line", keep("stdout"));
  const failure = (why: string) =>
    new Error(
      `${why}; its last output lines:\n${output.filter((l) => l.startsWith(`[run ${run} `)).join("\n")}`,
    );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(failure("talkgate was not ready within 20 s"));
    }, 20_000);
    // "close", not "exit": its last lines are read by then.
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(failure(`talkgate exited with ${code} before it was ready`));
    };
    child.once("close", onExit);
    const onLine = (line: string) => {
      if (!line.includes('"talkgate:ready"')) return;
      clearTimeout(timer);
      child.off("close", onExit);
      lines.off("line", onLine);
      resolve();
    };
    lines.on("line", onLine);
  });
  return child;
}
