// Starts a real PostgreSQL server for tests: a fresh cluster in a temporary folder, on a free loopback port,
// with a database and a password-protected user, stopped and removed by `stop()`. It never skips: a server
// that cannot start is a thrown error carrying the tail of the server's log.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  appendFileSync,
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { freePort } from "./talkgate-process.ts";

/** Options of {@link startPostgres}; every one has a default. */
export interface StartPostgresOptions {
  /**
   * The folder holding `initdb` and `postgres`. Default: the newest `/usr/lib/postgresql/<major>/bin`
   * (Debian's layout, which `.ci/run` installs), else the folder of an `initdb` on PATH.
   */
  binDir?: string;
  /** The database created for {@link PostgresServer.url}; default `talkgate`. */
  database?: string;
  /** More server settings by their `postgresql.conf` name, e.g. `{ max_connections: 300 }`. */
  settings?: Readonly<Record<string, string | number | boolean>>;
  /** How long the new server may take to accept connections; default 30 s. */
  timeoutMs?: number;
  /**
   * The folder the cluster's own folder is made in; default /dev/shm when it is a roomy tmpfs, else the
   * system's temporary folder. As root, the server's OS user must be able to enter it.
   */
  parentDir?: string;
}

/** A running PostgreSQL server of a test's own. */
export interface PostgresServer {
  /** `postgres://talkgate:<password>@127.0.0.1:<port>/<database>`: the database created at start. */
  readonly url: string;
  readonly port: number;
  /** The cluster's temporary folder (data directory `data/`, log `server.log`), removed by `stop()`. */
  readonly dir: string;
  /** `server_version_num`, e.g. 150018 for 15.18. */
  readonly versionNum: number;
  /** Creates another empty database on this server (a fresh name unless given); resolves to its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The last `lines` lines of the server's log. */
  logTail(lines?: number): string;
  /** Fast shutdown (clients are disconnected), keeping the data: an outage, until {@link up}. */
  down(): Promise<void>;
  /** Starts the server again after {@link down}, on the same port and data; resolves once it accepts connections. */
  up(): Promise<void>;
  /** Fast shutdown (clients are disconnected), then the folder is removed. Safe to call twice. */
  stop(): Promise<void>;
}

const USER = "talkgate";
const DATABASE = "talkgate"; // made in the template
// PostgreSQL refuses to run as root (initdb and postgres both check): as root, the cluster belongs to this
// unprivileged OS user, which Debian's postgresql package creates.
const ROOT_RUNS_AS = "postgres";
const START_ATTEMPTS = 5;
const LOG_LINES = 40;

// Test data is thrown away, so durability is traded for speed; the server's time zone is UTC on purpose,
// unlike the tests' TZ=Asia/Seoul, so that SQL that leans on the server's local time shows up in tests.
const SETTINGS: Readonly<Record<string, string | number | boolean>> = {
  listen_addresses: "127.0.0.1",
  unix_socket_directories: "",
  fsync: false,
  synchronous_commit: false,
  full_page_writes: false,
  timezone: "UTC",
  log_timezone: "UTC",
};

interface Running {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly port: number;
}
// Servers not stopped yet, killed and removed when the process exits (a test that forgot `stop()`, or a
// failure between start and stop).
const running = new Set<Running>();
let exitHookInstalled = false;

/**
 * Starts a fresh PostgreSQL cluster in a temporary folder on a free loopback port (another port is tried
 * when one turns out taken), creates `options.database`, and resolves once it accepts connections.
 * Throws, with the server's log tail, when it cannot start; call `stop()` when done (e.g. in `after`).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binDir = options.binDir ?? findBinDir();
  if (!existsSync(join(binDir, "initdb")) || !existsSync(join(binDir, "postgres"))) {
    throw new Error(`PostgreSQL's server programs (initdb, postgres) are not in ${binDir}`);
  }
  const owner = serverOwner();
  const { data, password } = await template(binDir, owner);
  const dir = mkdtempSync(join(options.parentDir ?? scratch(), "talkgate-pg-"));
  try {
    if (owner) chownSync(dir, owner.uid, owner.gid);
    // As the owner, so that the copy is the owner's.
    await run(owner, dir, "cp", ["-a", data, join(dir, "data")], join(dir, "cp.log"));
    appendFileSync(join(dir, "data", "postgresql.conf"), confLines({ ...SETTINGS, ...options.settings }));
    const server = await startServer(binDir, dir, password, owner, options.timeoutMs ?? 30_000);
    const database = options.database ?? DATABASE;
    if (database !== DATABASE) {
      try {
        await server.createDatabase(database);
      } catch (error) {
        await server.stop();
        throw error;
      }
    }
    return { ...server, url: urlOf(server.port, password, database) };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

let shared: Promise<PostgresServer> | undefined;

/**
 * One server for the whole test process, started on first call and stopped when the process has nothing
 * left to do. Tests that share it should each take a database of their own with `createDatabase()`.
 */
export function sharedPostgres(): Promise<PostgresServer> {
  if (!shared) {
    shared = startPostgres();
    const started = shared;
    let stopping = false;
    process.on("beforeExit", () => {
      if (stopping) return;
      stopping = true;
      void started.then((server) => server.stop()).catch(() => {});
    });
  }
  return shared;
}

// The newest Debian-installed server, else the one on PATH.
function findBinDir(): string {
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors[0]) return join(root, majors[0], "bin");
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir;
  }
  throw new Error(
    "PostgreSQL's server programs (initdb, postgres) were not found in /usr/lib/postgresql/*/bin nor on PATH: " +
      "install Debian's postgresql package (.ci/run does: apt-get install postgresql)",
  );
}

let scratchDir: string | undefined;

// Where clusters live: /dev/shm when it is a roomy tmpfs (copies, starts and writes take a third of the
// time they take on this machine's disk), else the system's temporary folder.
function scratch(): string {
  if (scratchDir === undefined) {
    scratchDir = tmpdir();
    try {
      const fs = statfsSync("/dev/shm");
      const TMPFS_MAGIC = 0x01021994;
      if (fs.type === TMPFS_MAGIC && fs.bavail * fs.bsize > 4 * 2 ** 30) scratchDir = "/dev/shm";
    } catch {
      // no /dev/shm: the temporary folder it is
    }
  }
  return scratchDir;
}

interface Owner {
  readonly uid: number;
  readonly gid: number;
}

let rootOwner: Owner | undefined;

// Who runs the server: this process's own user, or, as root, ROOT_RUNS_AS.
function serverOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) =>
      Number(execFileSync("id", [flag, ROOT_RUNS_AS], { encoding: "utf8" }).trim());
    rootOwner ??= { uid: id("-u"), gid: id("-g") };
    return rootOwner;
  } catch (error) {
    throw new Error(
      `PostgreSQL cannot run as root and the OS user "${ROOT_RUNS_AS}" to run it as does not exist ` +
        "(Debian's postgresql package creates it; .ci/run installs that package)",
      { cause: error },
    );
  }
}

// A child of PostgreSQL's: as the owner, in the cluster's folder, with a plain environment (no PG* variable
// of the developer's, English messages), its output appended to `logPath`.
function spawnAs(
  owner: Owner | undefined,
  dir: string,
  file: string,
  args: string[],
  logPath: string,
  stdin = false,
) {
  const log = openSync(logPath, "a");
  try {
    return spawn(file, args, {
      cwd: dir,
      stdio: [stdin ? "pipe" : "ignore", log, log],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", TZ: "UTC" },
      ...owner,
    });
  } finally {
    closeSync(log);
  }
}

// Runs a program of PostgreSQL's (or cp) to its end, `input` on its stdin; throws with the end of its output
// if it fails.
async function run(
  owner: Owner | undefined,
  dir: string,
  file: string,
  args: string[],
  logPath: string,
  input?: string,
) {
  const child = spawnAs(owner, dir, file, args, logPath, input !== undefined);
  child.stdin?.end(input);
  const code = await new Promise<number | string>((resolve) => {
    child.once("error", (error) => resolve(error.message));
    child.once("exit", (exitCode, signal) => resolve(exitCode ?? signal ?? "?"));
  });
  if (code !== 0) {
    throw new Error(
      `${file} ${args.join(" ")} failed (${code}); the end of its output:\n${tail(logPath, LOG_LINES)}`,
    );
  }
}

interface Template {
  /** A data directory that initdb made and no server ever started on. */
  readonly data: string;
  readonly password: string;
}
// --no-sync: nothing is flushed to disk, as with fsync off later; C.UTF-8 sorts by code point on every
// machine yet knows the case of non-ASCII letters. Loopback connections need the password (SCRAM).
const INITDB_ARGS = [
  `--username=${USER}`,
  "--auth=scram-sha-256",
  "--encoding=UTF8",
  "--locale=C.UTF-8",
  "--no-sync",
  "--no-instructions",
];
// Bumped whenever what a template folder holds changes, so that an older one is never read.
const TEMPLATE_LAYOUT = 3;
const templates = new Map<string, Promise<Template>>(); // being made, by key
const versions = new Map<string, string>(); // `postgres --version` by binDir

// initdb takes a second or more, a copy of the cluster it made 0.1–0.3 s, so every test process on this
// machine copies one template per server version and OS owner, made by whichever needed it first (it stays
// in the temporary folder for the next runs).
function template(binDir: string, owner: Owner | undefined): Promise<Template> {
  let version = versions.get(binDir);
  if (version === undefined) {
    version = execFileSync(join(binDir, "postgres"), ["--version"], { encoding: "utf8" }).trim();
    versions.set(binDir, version);
  }
  const key = createHash("sha256")
    .update(JSON.stringify([TEMPLATE_LAYOUT, binDir, version, owner?.uid ?? process.getuid?.(), INITDB_ARGS]))
    .digest("hex")
    .slice(0, 16);
  // Only a template being made is remembered (servers started at once wait for the same initdb); once made,
  // it is looked up on disk each time, so that one removed meanwhile is made again.
  let made = templates.get(key);
  if (!made) {
    made = makeTemplate(join(scratch(), `talkgate-pg-template-${key}`), binDir, owner);
    templates.set(key, made);
    const forget = () => templates.delete(key);
    made.then(forget, forget);
  }
  return made;
}

// Made aside and renamed into place, so that no process ever sees half a template; when two processes make
// one at once, the first rename wins and the other's is thrown away.
async function makeTemplate(path: string, binDir: string, owner: Owner | undefined): Promise<Template> {
  const read = (): Template | undefined => {
    try {
      return { data: join(path, "data"), password: readFileSync(join(path, "password"), "utf8").trim() };
    } catch {
      return undefined;
    }
  };
  const existing = read();
  if (existing) return existing;
  const staging = mkdtempSync(`${path}-`);
  try {
    if (owner) chownSync(staging, owner.uid, owner.gid);
    // The template is the owner's alone, this file included: initdb reads the password from it, and so
    // does every test process of that owner (root or the owner itself) that copies the template.
    const pwfile = join(staging, "password");
    writeFileSync(pwfile, randomBytes(18).toString("hex"), { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    const initdb = join(binDir, "initdb");
    const args = [`--pgdata=${join(staging, "data")}`, `--pwfile=${pwfile}`, ...INITDB_ARGS];
    const log = join(staging, "initdb.log");
    await run(owner, staging, initdb, args, log);
    // The default database too, in single-user mode (no server, no port), so that no start has to wait
    // for a CREATE DATABASE.
    const single = ["--single", "-D", join(staging, "data"), "-c", "exit_on_error=on", "postgres"];
    await run(owner, staging, join(binDir, "postgres"), single, log, `create database ${DATABASE};\n`);
    rmSync(log);
    try {
      renameSync(staging, path);
    } catch (error) {
      if (!read()) {
        throw new Error(`the template cluster ${path} is there but cannot be read: remove it`, {
          cause: error,
        });
      }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const made = read();
  if (!made) throw new Error(`the template cluster ${path} was made but cannot be read`);
  return made;
}

function confLines(settings: Readonly<Record<string, string | number | boolean>>): string {
  const quote = (value: string | number | boolean) =>
    typeof value === "string"
      ? `'${value.replaceAll("'", "''")}'`
      : value === true
        ? "on"
        : value === false
          ? "off"
          : String(value);
  return `\n# talkgate test harness\n${Object.entries(settings)
    .map(([name, value]) => `${name} = ${quote(value)}\n`)
    .join("")}`;
}

async function startServer(
  binDir: string,
  dir: string,
  password: string,
  owner: Owner | undefined,
  timeoutMs: number,
): Promise<Omit<PostgresServer, "url">> {
  const logPath = join(dir, "server.log");
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const logStart = sizeOf(logPath);
    const launched = await launch({ binDir, dir, password, owner, timeoutMs, logPath }, port);
    if (launched.kind === "ready")
      return handle(launched.entry, launched.versionNum, {
        binDir,
        dir,
        password,
        owner,
        timeoutMs,
        logPath,
      });
    // Another process took the port between freePort() and the server's bind: try another one.
    const bindFailed = /could not bind|Address already in use/i.test(tail(logPath, LOG_LINES, logStart));
    if (attempt < START_ATTEMPTS && bindFailed) continue;
    throw new Error(launched.why);
  }
}

interface Cluster {
  binDir: string;
  dir: string;
  password: string;
  owner: Owner | undefined;
  timeoutMs: number;
  logPath: string;
}

// Starts the cluster's server on `port`; resolves once it accepts connections, or with why it did not.
async function launch(
  cluster: Cluster,
  port: number,
): Promise<{ kind: "ready"; entry: Running; versionNum: number } | { kind: "failed"; why: string }> {
  const { binDir, dir, password, owner, timeoutMs, logPath } = cluster;
  const child = spawnAs(
    owner,
    dir,
    join(binDir, "postgres"),
    ["-D", join(dir, "data"), "-p", String(port)],
    logPath,
  );
  // The test process may end while this server runs; the exit hook then stops it.
  child.unref();
  const entry: Running = { child, dir, port };
  running.add(entry);
  installExitHook();
  const exited = new Promise<string>((resolve) => {
    child.once("error", (error) => resolve(error.message));
    child.once("exit", (code, signal) => resolve(`exited with ${code ?? signal}`));
  });
  const alive = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  const ready = await waitUntilReady(port, password, timeoutMs, alive);
  if (typeof ready === "number") return { kind: "ready", entry, versionNum: ready };
  running.delete(entry);
  if (ready === "timeout") {
    child.kill("SIGKILL");
    await exited;
    return {
      kind: "failed",
      why: `PostgreSQL did not accept connections within ${timeoutMs} ms; its log:\n${tail(logPath, LOG_LINES)}`,
    };
  }
  const outcome = await exited;
  return {
    kind: "failed",
    why: `PostgreSQL ${outcome} before accepting connections; its log:\n${tail(logPath, LOG_LINES)}`,
  };
}

// Fast shutdown (clients are disconnected, nothing is waited for) of a running server.
async function shutDown(entry: Running): Promise<void> {
  const { child } = entry;
  // Referenced again while it shuts down, so that the test process waits for it.
  child.ref();
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
  running.delete(entry);
}

// Resolves to server_version_num once a query goes through, to "died" as soon as the server is gone, or
// to "timeout".
async function waitUntilReady(
  port: number,
  password: string,
  timeoutMs: number,
  alive: () => boolean,
): Promise<number | "died" | "timeout"> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) return "died";
    const sql = postgres(urlOf(port, password, "postgres"), {
      max: 1,
      connect_timeout: 2,
      onnotice: () => {},
    });
    try {
      const [row] = await sql<{ n: string }[]>`select current_setting('server_version_num') as n`;
      return Number(row?.n);
    } catch {
      await sleep(20);
    } finally {
      await sql.end({ timeout: 0 });
    }
  }
  return "timeout";
}

function handle(first: Running, versionNum: number, cluster: Cluster): Omit<PostgresServer, "url"> {
  const { password, logPath } = cluster;
  let entry: Running | undefined = first;
  let databases = 0;
  let stopped: Promise<void> | undefined;
  return {
    port: first.port,
    dir: first.dir,
    versionNum,
    async createDatabase(name = `talkgate_${++databases}`) {
      const sql = postgres(urlOf(first.port, password, "postgres"), { max: 1, onnotice: () => {} });
      try {
        await sql`create database ${sql(name)}`;
      } finally {
        await sql.end({ timeout: 0 });
      }
      return urlOf(first.port, password, name);
    },
    logTail: (lines = LOG_LINES) => tail(logPath, lines),
    async down() {
      if (entry) await shutDown(entry);
      entry = undefined;
    },
    async up() {
      if (entry) return;
      const launched = await launch(cluster, first.port);
      if (launched.kind === "failed") throw new Error(launched.why);
      entry = launched.entry;
    },
    stop() {
      stopped ??= (async () => {
        if (entry) await shutDown(entry);
        entry = undefined;
        rmSync(first.dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const { child, dir, port } of running) {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      process.stderr.write(`test/support/postgres: the server on port ${port} was still running at exit\n`);
      // Immediate shutdown. The server may still write while it goes, so a detached shell outlives this
      // process, waits (10 s at most) until the server is gone, and only then removes the folder.
      child.kill("SIGQUIT");
      const reaper =
        'for i in $(seq 200); do kill -0 $1 2>/dev/null || break; sleep 0.05; done; rm -rf -- "$2"';
      spawn("sh", ["-c", reaper, "sh", String(child.pid), dir], { detached: true, stdio: "ignore" }).unref();
    }
  });
}

function urlOf(port: number, password: string, database: string): string {
  return `postgres://${USER}:${password}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

// The last `lines` lines of the log at `path`, from byte `from` on.
function tail(path: string, lines: number, from = 0): string {
  try {
    const text = readFileSync(path).subarray(from).toString("utf8").trimEnd();
    return text ? text.split("\n").slice(-lines).join("\n") : "(empty log)";
  } catch {
    return "(no log)";
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
