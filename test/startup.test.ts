// What talkgate loads at start: the launcher (bin/talkgate.js) keeps the stripped TypeScript sources in Node's compile
// cache, so that once it is filled talkgate starts without loading Node's type stripper; what loads on first use
// stays out.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { stackConfig } from "./support/stack.ts";

// Preloaded with --import (worker threads would inherit it): each thread writes `<prefix>.<thread id>`, saying
// whether it has loaded the stripper and which modules it has loaded, every 100 ms and at exit.
function probe(prefix: string): string {
  const code = `import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { threadId } from "node:worker_threads";
const modules = [];
registerHooks({ load(url, context, next) { modules.push(url); return next(url, context); } });
const write = () => writeFileSync(${JSON.stringify(prefix)} + "." + threadId, JSON.stringify({
  stripper: process.moduleLoadList.some((m) => m.includes("amaro")), modules }));
setInterval(write, 100).unref();
process.on("exit", write);`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

interface ThreadReport {
  thread: number;
  /** Whether the thread loaded Node's type stripper. */
  stripper: boolean;
  /** The URL of every module it loaded. */
  modules: string[];
}

// What the probe wrote, thread by thread.
function threads(prefix: string): ThreadReport[] {
  return readdirSync(dirname(prefix))
    .filter((name) => name.startsWith(`${basename(prefix)}.`))
    .map((name) => ({
      thread: Number(name.slice(basename(prefix).length + 1)),
      ...(JSON.parse(readFileSync(join(dirname(prefix), name), "utf8")) as Omit<ThreadReport, "thread">),
    }))
    .sort((a, b) => a.thread - b.thread);
}

describe("talkgate's start", () => {
  let dir: string;
  let cacheDir: string;
  let configPath: string;
  // `talkgate serve` with the probe until it has been ready for 0.5 s; then SIGTERM. Its exit code, and
  // what it wrote (kept for a failure message, never shown otherwise).
  async function serve(probePrefix: string): Promise<{ code: number | null; output: string }> {
    const child = spawn(
      process.execPath,
      ["--import", probe(probePrefix), "bin/talkgate.js", "serve", "--config", configPath],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_COMPILE_CACHE: cacheDir } },
    );
    const output: string[] = [];
    const closed = once(child, "close");
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => output.push(line));
    const ready = new Promise<void>((resolve) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        output.push(line);
        if (line.includes('"talkgate:ready"')) resolve();
      });
    });
    await Promise.race([ready, closed]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    child.kill("SIGTERM");
    const [code] = await closed;
    return { code: code as number | null, output: output.join("\n") };
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "talkgate-launcher-"));
    cacheDir = join(dir, "compile-cache");
    configPath = join(dir, "talkgate.config.json");
    // Nothing is sent anywhere: LINE and the partner are never called while idle.
    const config = stackConfig("http://127.0.0.1:9", "http://127.0.0.1:9");
    writeFileSync(configPath, JSON.stringify({ ...config, logLevel: "info" }));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a first start fills the cache; from the next one on, no thread of talkgate loads the stripper", async () => {
    const first = await serve(join(dir, "first"));
    assert.equal(first.code, 0, `the first start exited ${first.code}:\n${first.output}`);
    assert.ok(readdirSync(cacheDir, { recursive: true }).length > 0, "the cache was filled");
    const prefix = join(dir, "second");
    const second = await serve(prefix);
    assert.equal(second.code, 0, `the second start exited ${second.code}:\n${second.output}`);
    const seen = threads(prefix);
    assert.ok(seen.some(({ thread }) => thread === 0));
    assert.deepEqual(
      seen.filter(({ stripper }) => stripper),
      [],
    );
  });

  test("what loads on first use is not loaded at start", () => {
    const main = threads(join(dir, "second")).find(({ thread }) => thread === 0);
    assert.ok(main?.modules.some((url) => url.endsWith("/src/main.ts")));
    for (const late of [
      "/node_modules/@line/bot-sdk/",
      "/node_modules/undici/index.js",
      "/node_modules/@fastify/swagger/",
      "/node_modules/@fastify/swagger-ui/",
    ]) {
      assert.deepEqual(
        main?.modules.filter((url) => url.includes(late)),
        [],
        `${late} is loaded on first use`,
      );
    }
  });

  test("with the compile cache disabled, talkgate strips the sources itself (what the probe detects)", async () => {
    const prefix = join(dir, "disabled");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", probe(prefix), "bin/talkgate.js", "--help"],
      { env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1" } },
    );
    assert.match(stdout, /^usage: talkgate/);
    assert.deepEqual(
      threads(prefix).map(({ thread, stripper }) => ({ thread, stripper })),
      [{ thread: 0, stripper: true }],
    );
  });
});
