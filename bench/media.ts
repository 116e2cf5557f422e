// The media scenario of `npm run bench`: a large generated video relayed from the LINE emulator through talkgate
// (leg 1: LINE → talkgate's media directory) and downloaded through the partner attachment API (leg 2:
// talkgate → partner), with talkgate's RSS sampled from /proc/<pid>/status throughout.
//
// The emulator and the partner sink run in the bench process; talkgate runs as a child (`bin/talkgate.js
// serve`) on a fresh data directory, with production media, delivery and profile settings.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Agent, request } from "undici";
import { userSource, videoEvent } from "../emulator/events.ts";
import { generatedSha256, type LineEmulator, startLineEmulator } from "../emulator/line-emulator.ts";
import { type PartnerSink, startPartnerSink } from "../emulator/partner-sink.ts";
import {
  ACCESS_TOKEN,
  API_KEY,
  CHANNEL_SECRET,
  SENDER_KEY,
  SIGNING_SECRET,
  stackConfig,
} from "../test/support/stack.ts";
import {
  type Child,
  cpuSeconds,
  fmt,
  freePort,
  sleep,
  startChild,
  stopChild,
  waitForHttp,
} from "./support.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROBE = fileURLToPath(new URL("memory-probe.ts", import.meta.url));
const MiB = 1024 * 1024;
/** How often talkgate's RSS is read. */
const RSS_EVERY_MS = 20;
/** How often leg 1 asks `HEAD /line/message/attachment` whether the attachment is stored yet. */
const POLL_MS = 10;
export const AIM_GROWTH_MIB = 50;
const LEG_TIMEOUT_MS = 60_000;
const WARMUP_BYTES = MiB;
/** Idle time before the measured webhook (baseline) and after the download (settled RSS). */
const SETTLE_MS = 1_000;
const USER = `U${"be0d1a".padEnd(32, "0")}`;

export interface MediaOptions {
  /** A fresh directory for this scenario's configuration, database, media and logs. */
  dir: string;
  sizeBytes: number;
  seed: number;
  /** Extra Node flags for the talkgate child. */
  nodeFlags: readonly string[];
  /** Preload bench/memory-probe.ts into talkgate to log process.memoryUsage() every 20 ms. */
  probe: boolean;
  say: (line?: string) => void;
}

// ---------------------------------------------------------------------------------------------------------
// talkgate's memory, from /proc/<pid>/status.

interface RssSample {
  /** performance.now() of the reading. */
  t: number;
  /** VmRSS, RssAnon, RssFile of /proc/<pid>/status, in bytes. */
  rss: number;
  anon: number;
  file: number;
}

// Sampled from a worker thread, so the readings keep their pace while the bench's own event loop is busy
// serving the body (leg 1) or hashing it (leg 2). Times travel as epoch ms (timeOrigin differs per thread).
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
const { pid, everyMs } = workerData;
const field = (lines, key) => {
  const line = lines.find((l) => l.startsWith(key + ":"));
  return line === undefined ? NaN : Number.parseInt(line.slice(key.length + 1), 10) * 1024;
};
const sample = () => {
  let lines;
  try {
    lines = readFileSync("/proc/" + pid + "/status", "utf8").split("\\n");
  } catch {
    return;
  }
  const t = performance.timeOrigin + performance.now();
  parentPort.postMessage({ t, rss: field(lines, "VmRSS"), anon: field(lines, "RssAnon"), file: field(lines, "RssFile") });
};
sample();
const timer = setInterval(sample, everyMs);
parentPort.on("message", () => {
  clearInterval(timer);
  sample();
  parentPort.postMessage("done");
});
`;

class RssSampler {
  readonly samples: RssSample[] = [];
  readonly #worker: Worker;
  readonly #done: Promise<void>;
  /** Resolves with the first reading. */
  readonly first: Promise<RssSample>;

  constructor(pid: number) {
    this.#worker = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { pid, everyMs: RSS_EVERY_MS } });
    let onFirst: (sample: RssSample) => void = () => {};
    let onDone: () => void = () => {};
    this.first = new Promise((resolve) => {
      onFirst = resolve;
    });
    this.#done = new Promise((resolve) => {
      onDone = resolve;
    });
    this.#worker.on("message", (message: "done" | (Omit<RssSample, "t"> & { t: number })) => {
      if (message === "done") return onDone();
      const sample = { ...message, t: message.t - performance.timeOrigin };
      this.samples.push(sample);
      if (this.samples.length === 1) onFirst(sample);
    });
    this.#worker.once("error", () => onDone());
    this.#worker.once("exit", () => onDone());
  }

  /** Takes a last reading and stops; every reading has arrived when it resolves. */
  async stop(): Promise<void> {
    this.#worker.postMessage("stop");
    await this.#done;
    await this.#worker.terminate();
  }

  /** The samples taken from `from` to `to` (performance.now() times), at least one. */
  window(from: number, to: number): RssSample[] {
    const inside = this.samples.filter((s) => s.t >= from && s.t <= to);
    if (inside.length === 0) throw new Error(`no RSS sample between ${from} and ${to}`);
    return inside;
  }

  /** The last sample taken at or before `t`. */
  at(t: number): RssSample | undefined {
    return this.samples.findLast((s) => s.t <= t);
  }
}

const peakOf = (samples: readonly RssSample[]) =>
  samples.reduce((best, s) => (s.rss > best.rss ? s : best), samples[0] as RssSample);
const meanOf = (samples: readonly RssSample[], key: "rss" | "anon" | "file") =>
  samples.reduce((sum, s) => sum + s[key], 0) / samples.length;
const largestGap = (samples: readonly RssSample[]) =>
  samples.reduce((gap, s, i) => (i === 0 ? 0 : Math.max(gap, s.t - (samples[i - 1] as RssSample).t)), 0);
const mib = (bytes: number, digits = 1) => fmt(bytes / MiB, digits);
const signedMib = (bytes: number) => `${bytes >= 0 ? "+" : "−"}${mib(Math.abs(bytes))}`;

// ---------------------------------------------------------------------------------------------------------
// One relay: register the content, send the webhook, wait until stored (leg 1), download it (leg 2).

interface Relay {
  size: number;
  messageId: string;
  serial: string;
  sentAt: number;
  /** Webhook answered 200 (performance.now() and Date.now()). */
  ackedAt: number;
  ackedEpoch: number;
  /** The HEAD that first answered 200 came back; the last one that answered 202 had been sent at `notStoredAt`. */
  storedAt: number;
  notStoredAt: number;
  headPolls: number;
  /** The payload reached the partner sink. */
  sinkAt: number;
  leg2Start: number;
  leg2Headers: number;
  leg2End: number;
  bytes: number;
  sha256: string;
  expectedSha256: string;
  etag: string | null;
  contentLength: string | null;
  talkgateCpu1: number | null;
  talkgateCpu2: number | null;
  benchCpu1: number;
  benchCpu2: number;
}

interface Context {
  emulator: LineEmulator;
  sink: PartnerSink;
  arrivals: Map<string, number>;
  talkgate: Child;
  talkgateUrl: string;
  agent: Agent;
  serialOf(messageId: string): string | undefined;
}

const auth = { authorization: `Bearer ${API_KEY}` };
const cpuOf = (before: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
};
const delta = (after: number | null, before: number | null) =>
  after !== null && before !== null ? after - before : null;

async function relayOnce(ctx: Context, size: number, seed: number): Promise<Relay> {
  const expectedSha256 = await generatedSha256(size, seed);
  const pid = ctx.talkgate.proc.pid;
  const event = videoEvent(userSource(USER), { duration: 60_000 });
  const messageId = event.message.id;
  ctx.emulator.setContent(messageId, { generated: { size, seed }, contentType: "video/mp4" });

  // Leg 1: LINE → talkgate.
  const talkgateCpu0 = cpuSeconds(pid);
  const benchCpu0 = process.cpuUsage();
  const sentAt = performance.now();
  const answer = await ctx.emulator.sendWebhook(SENDER_KEY, [event]);
  const ackedAt = performance.now();
  const ackedEpoch = Date.now();
  if (answer.status !== 200) throw new Error(`webhook answered ${answer.status}: ${answer.body}`);
  // The event is committed before the 200, so its serial number is in the database already.
  const serial = ctx.serialOf(messageId);
  if (!serial) throw new Error(`no serial number stored for message ${messageId}`);
  const url =
    `${ctx.talkgateUrl}/line/message/attachment?sender_key=${SENDER_KEY}` +
    `&serial_number=${encodeURIComponent(serial)}`;
  let notStoredAt = ackedAt;
  let storedAt = 0;
  let headPolls = 0;
  for (;;) {
    if (ctx.talkgate.exitCode !== undefined) throw new Error(`talkgate exited (${ctx.talkgate.exitCode})`);
    const asked = performance.now();
    const head = await request(url, { method: "HEAD", headers: auth, dispatcher: ctx.agent });
    await head.body.dump();
    headPolls++;
    if (head.statusCode === 200) {
      storedAt = performance.now();
      break;
    }
    if (head.statusCode !== 202) throw new Error(`HEAD attachment answered ${head.statusCode}`);
    notStoredAt = asked;
    if (asked - ackedAt > LEG_TIMEOUT_MS)
      throw new Error(`attachment not stored ${LEG_TIMEOUT_MS / 1000} s after the webhook`);
    await sleep(POLL_MS);
  }
  const talkgateCpu1 = delta(cpuSeconds(pid), talkgateCpu0);
  const benchCpu1 = cpuOf(benchCpu0);

  // The partner gets the payload once the content is stored; a partner would download only then.
  await ctx.sink.waitFor(
    (accepted) => accepted.some((p) => (p as { content?: { id?: string } }).content?.id === messageId),
    40_000,
  );
  const sinkAt = ctx.arrivals.get(messageId) ?? Number.NaN;

  // Leg 2: talkgate → partner, streamed and hashed as it comes, never held whole.
  const talkgateCpu2Before = cpuSeconds(pid);
  const benchCpu2Before = process.cpuUsage();
  const leg2Start = performance.now();
  const response = await request(url, {
    headers: auth,
    dispatcher: ctx.agent,
    headersTimeout: LEG_TIMEOUT_MS,
    bodyTimeout: LEG_TIMEOUT_MS,
  });
  const leg2Headers = performance.now();
  if (response.statusCode !== 200) {
    throw new Error(`GET attachment answered ${response.statusCode}: ${await response.body.text()}`);
  }
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const leg2End = performance.now();
  const header = (name: string) => {
    const value = response.headers[name];
    return typeof value === "string" ? value : null;
  };
  return {
    size,
    messageId,
    serial,
    sentAt,
    ackedAt,
    ackedEpoch,
    storedAt,
    notStoredAt,
    headPolls,
    sinkAt,
    leg2Start,
    leg2Headers,
    leg2End,
    bytes,
    sha256: hash.digest("hex"),
    expectedSha256,
    etag: header("etag"),
    contentLength: header("content-length"),
    talkgateCpu1,
    talkgateCpu2: delta(cpuSeconds(pid), talkgateCpu2Before),
    benchCpu1,
    benchCpu2: cpuOf(benchCpu2Before),
  };
}

const byteExact = (r: Relay) =>
  r.bytes === r.size &&
  r.sha256 === r.expectedSha256 &&
  r.etag === `"sha256-${r.expectedSha256}"` &&
  r.contentLength === String(r.size);

// ---------------------------------------------------------------------------------------------------------
// process.memoryUsage() lines written by bench/memory-probe.ts (epoch ms times).

interface ProbeSample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}
const PROBE_KEYS = ["rss", "heapTotal", "heapUsed", "external", "arrayBuffers"] as const;

function readProbe(path: string): ProbeSample[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ProbeSample);
}

// ---------------------------------------------------------------------------------------------------------

/** Runs the media scenario and reports it under "## Media" through `say`; returns whether it passed. */
export interface MediaResult {
  /** Byte-exact both ways, nothing left half-written. */
  ok: boolean;
  leg1MiBs: number;
  leg2MiBs: number;
  /** talkgate's peak RSS over its baseline during the two legs. */
  growthMiB: number;
}

export async function runMedia(options: MediaOptions): Promise<MediaResult> {
  const { dir, sizeBytes: size, seed, say } = options;
  mkdirSync(dir, { recursive: true });

  // The expected digest first, so hashing it competes with neither leg.
  const t = performance.now();
  const expected = await generatedSha256(size, seed);
  console.log(
    `media: expected SHA-256 of the ${mib(size, 0)} MiB body computed in ${fmt((performance.now() - t) / 1000, 1)} s`,
  );

  const arrivals = new Map<string, number>();
  const emulator = await startLineEmulator({
    channels: [{ channelId: SENDER_KEY, channelSecret: CHANNEL_SECRET, accessToken: ACCESS_TOKEN }],
  });
  const sink = await startPartnerSink({
    signingSecret: SIGNING_SECRET,
    onPayload(payload) {
      const id = (payload as { content?: { id?: string } }).content?.id;
      if (id !== undefined && !arrivals.has(id)) arrivals.set(id, performance.now());
    },
  });
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  let talkgate: Child | undefined;
  let db: DatabaseSync | undefined;
  let sampler: RssSampler | undefined;
  try {
    const port = await freePort();
    const raw = stackConfig(emulator.url, sink.url, {
      // Production defaults for media, delivery and profiles (the test stack shortens them); info logging.
      config: {
        listen: { host: "127.0.0.1", port },
        logLevel: "info",
        delivery: {},
        media: {},
        profiles: {},
      },
    });
    const configPath = join(dir, "talkgate.config.json");
    writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
    const logPath = join(dir, "talkgate.log");
    const probePath = join(dir, "memory-probe.jsonl");
    talkgate = startChild(
      "talkgate (media)",
      [
        ...(options.probe ? ["--import", PROBE] : []),
        ...options.nodeFlags,
        join(ROOT, "bin", "talkgate.js"),
        "serve",
        "--config",
        configPath,
      ],
      logPath,
      options.probe
        ? { BENCH_MEMORY_PROBE_FILE: probePath, BENCH_MEMORY_PROBE_MS: String(RSS_EVERY_MS) }
        : {},
    );
    const talkgateUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(`${talkgateUrl}/readyz`, talkgate);
    const pid = talkgate.proc.pid;
    if (pid === undefined) throw new Error("talkgate has no pid");
    emulator.setWebhookUrl(SENDER_KEY, `${talkgateUrl}/line/webhook/${SENDER_KEY}`);
    emulator.setProfile(USER, { displayName: "Bench Media", language: "ko" });
    db = new DatabaseSync(join(dir, "talkgate.db"), { readOnly: true });
    const serialQuery = db.prepare(
      "SELECT serial_number FROM events WHERE sender_key = ? AND message_id = ?",
    );
    const ctx: Context = {
      emulator,
      sink,
      arrivals,
      talkgate,
      talkgateUrl,
      agent,
      serialOf: (messageId) =>
        (serialQuery.get(SENDER_KEY, messageId) as { serial_number: string } | undefined)?.serial_number,
    };

    sampler = new RssSampler(pid);
    const cold = await Promise.race([sampler.first, sleep(2_000).then(() => undefined)]);
    if (!cold) throw new Error(`cannot read /proc/${pid}/status`);

    console.log(`media: warm-up, ${mib(WARMUP_BYTES, 0)} MiB through both legs…`);
    const warmup = await relayOnce(ctx, WARMUP_BYTES, seed + 1);
    const baselineFrom = performance.now();
    await sleep(SETTLE_MS);
    const baselineTo = performance.now();

    console.log(`media: ${mib(size, 0)} MiB video, LINE → talkgate → partner…`);
    const run = await relayOnce(ctx, size, seed);
    const doneAt = performance.now();
    await sleep(SETTLE_MS);
    await sampler.stop();
    const settled = sampler.samples.at(-1) as RssSample;
    const baselineSamples = sampler.window(baselineFrom, baselineTo);
    const baseline = meanOf(baselineSamples, "rss");
    const atLeg2Start = sampler.at(run.leg2Start) ?? settled;

    const leg1Samples = sampler.window(run.sentAt, run.storedAt);
    const leg2Samples = sampler.window(run.leg2Start, run.leg2End);
    const leg1Peak = peakOf(leg1Samples);
    const leg2Peak = peakOf(leg2Samples);
    const allPeak = peakOf(sampler.window(run.sentAt, doneAt));
    const measured = sampler.window(run.sentAt, doneAt);

    db.close();
    db = undefined;
    await stopChild(talkgate, 15_000);
    const exitCode = talkgate.exitCode;

    // What talkgate left on disk and said in its log.
    const mediaDir = join(dir, "media");
    const incoming = readdirSync(join(mediaDir, ".incoming"));
    const stored = readdirSync(join(mediaDir, SENDER_KEY)).map((name) =>
      statSync(join(mediaDir, SENDER_KEY, name)),
    );
    const logLines = readFileSync(logPath, "utf8").split("\n").filter(Boolean);
    const problems = logLines.filter((line) => /"level":(40|50|60)/.test(line));
    const storedLog = logLines
      .map((line) => {
        try {
          return JSON.parse(line) as { msg?: string; message_id?: string; time?: number };
        } catch {
          return {};
        }
      })
      .find((entry) => entry.msg === "media:stored" && entry.message_id === run.messageId);

    // ---- report ----
    const leg1Ms = run.storedAt - run.ackedAt;
    const leg2Ms = run.leg2End - run.leg2Start;
    const rate = (ms: number) => size / MiB / (ms / 1000);
    const growth = allPeak.rss - baseline;
    const aimHolds = growth <= AIM_GROWTH_MIB * MiB;
    const exact = byteExact(run) && byteExact(warmup);
    const cpuCores = (seconds: number | null, ms: number) =>
      seconds === null ? "n/a" : fmt(seconds / (ms / 1000), 2);
    const leg1WithWebhookMs = run.storedAt - run.sentAt;

    say(
      `- content: a ${mib(size, 0)} MiB video (${fmt(size)} B, \`generated: {size, seed: ${seed}}\`, video/mp4) ` +
        "served by the LINE emulator (in the bench process, generated on the fly), announced by one signed " +
        "webhook with a video message event",
    );
    say(
      "- talkgate: `bin/talkgate.js serve` in a child process, fresh data directory (SQLite + mediaDir), " +
        "production media/delivery/profile settings, log level info to a file; partner = the emulator's " +
        `partner sink in the bench process${options.probe ? "; **memory probe preloaded** (bench/memory-probe.ts)" : ""}` +
        (options.nodeFlags.length > 0 ? `; extra Node flags \`${options.nodeFlags.join(" ")}\`` : ""),
    );
    say(
      `- leg 1 (LINE → talkgate): from the webhook's 200 until \`HEAD /line/message/attachment\` first answers ` +
        `200 (asked every ${POLL_MS} ms, with the serial number read from talkgate's database right after the ` +
        "webhook's 200): an upper bound, bracketed in the detail below. The partner payload is not the end mark " +
        "because it follows the store by a delivery round (and would go out anyway after `media.relayWaitMs`); " +
        "its arrival is given as a cross-check",
    );
    say(
      "- leg 2 (talkgate → partner): `GET /line/message/attachment` with the partner API key (undici, one " +
        "connection), from the request until the last byte, each chunk hashed as it arrives and dropped",
    );
    say(
      `- warm-up: a ${mib(WARMUP_BYTES, 0)} MiB video went through both legs first, so code loaded on first ` +
        "use is part of the baseline, not of the growth",
    );
    say();
    say(
      "| leg | time s | MiB/s | talkgate CPU (cores) | bench CPU (cores) | talkgate peak RSS MiB | growth over baseline MiB |",
    );
    say("|---|---:|---:|---:|---:|---:|---:|");
    say(
      `| 1 LINE → talkgate | ${fmt(leg1Ms / 1000, 2)} | ${fmt(rate(leg1Ms), 0)} | ` +
        `${cpuCores(run.talkgateCpu1, leg1WithWebhookMs)} | ${cpuCores(run.benchCpu1, leg1WithWebhookMs)} | ` +
        `${mib(leg1Peak.rss)} | ${signedMib(leg1Peak.rss - baseline)} |`,
    );
    say(
      `| 2 talkgate → partner | ${fmt(leg2Ms / 1000, 2)} | ${fmt(rate(leg2Ms), 0)} | ` +
        `${cpuCores(run.talkgateCpu2, leg2Ms)} | ${cpuCores(run.benchCpu2, leg2Ms)} | ` +
        `${mib(leg2Peak.rss)} | ${signedMib(leg2Peak.rss - baseline)} |`,
    );
    say();
    say(
      "MiB = 2^20 bytes. CPU is cores busy over the leg (1.00 = one core); the bench process is the emulator " +
        "generating and sending the body in leg 1, and the downloader hashing it in leg 2.",
    );
    say();
    say(
      `- talkgate RSS (VmRSS from /proc/${"<pid>"}/status every ${RSS_EVERY_MS} ms, read by a worker thread; ` +
        `${fmt(measured.length)} samples over the two legs, largest gap ${fmt(largestGap(measured))} ms): cold ` +
        `after start ${mib(cold.rss)} MiB; baseline after the warm-up ${mib(baseline)} MiB (mean of ` +
        `${baselineSamples.length} samples over ${SETTLE_MS / 1000} s idle); peak leg 1 ${mib(leg1Peak.rss)} MiB; ` +
        `leg 2 started at ${mib(atLeg2Start.rss)} MiB and peaked at ${mib(leg2Peak.rss)} MiB; ` +
        `${SETTLE_MS / 1000} s after the download ${mib(settled.rss)} MiB`,
    );
    say(
      `- at the peak (${mib(allPeak.rss)} MiB, leg ${allPeak.t <= run.storedAt ? 1 : 2}): anonymous memory ` +
        `(RssAnon) ${signedMib(allPeak.anon - meanOf(baselineSamples, "anon"))} MiB, file-backed (RssFile) ` +
        `${signedMib(allPeak.file - meanOf(baselineSamples, "file"))} MiB over the baseline`,
    );
    say(
      `- aim peak RSS growth ≤ ${AIM_GROWTH_MIB} MiB: **${aimHolds ? "holds" : "does NOT hold"}** ` +
        `(${signedMib(growth)} MiB)`,
    );
    if (!aimHolds && !options.probe)
      say(
        "- to see what the growth is made of: `BENCH_MEDIA_PROBE=1` (V8 heap, external memory, ArrayBuffers " +
          'inside talkgate) and `BENCH_TALKGATE_NODE_FLAGS="--trace-gc"` (when and why V8 collected)',
      );
    say(
      `- byte-exact: **${exact ? "yes" : "NO"}**: ${fmt(run.bytes)} of ${fmt(size)} B, SHA-256 ` +
        `${run.sha256 === run.expectedSha256 ? "equals" : "DIFFERS from"} \`generatedSha256(size, ${seed})\` ` +
        `(${run.expectedSha256.slice(0, 16)}…), ETag ${run.etag === `"sha256-${expected}"` ? "matches" : `\`${run.etag}\` does not match`}, ` +
        `Content-Length ${run.contentLength}; the warm-up body ${byteExact(warmup) ? "too" : "was NOT byte-exact"}`,
    );
    say(
      `- leg 1 detail: webhook answered 200 in ${fmt(run.ackedAt - run.sentAt, 1)} ms; ${run.headPolls} HEAD polls; ` +
        `the store happened between ${fmt((run.notStoredAt - run.ackedAt) / 1000, 3)} s (last 202 asked) and ` +
        `${fmt(leg1Ms / 1000, 3)} s (first 200 back), an uncertainty of ${fmt(run.storedAt - run.notStoredAt, 1)} ms` +
        (storedLog?.time !== undefined
          ? `; talkgate's own \`media:stored\` log line is at ${fmt((storedLog.time - run.ackedEpoch) / 1000, 3)} s`
          : "") +
        `; the partner sink had the payload at ${fmt((run.sinkAt - run.ackedAt) / 1000, 3)} s`,
    );
    say(
      `- leg 2 detail: response headers after ${fmt(run.leg2Headers - run.leg2Start, 1)} ms, then ` +
        `${fmt((run.leg2End - run.leg2Headers) / 1000, 2)} s of body`,
    );
    say(
      `- on disk afterwards: ${stored.length} stored file(s) of ${stored.map((s) => fmt(s.size)).join(", ")} B; ` +
        `${incoming.length} partial file(s) in .incoming`,
    );

    if (options.probe) {
      const probe = readProbe(probePath);
      const epoch = (perf: number) => performance.timeOrigin + perf;
      const within = (from: number, to: number) =>
        probe.filter((s) => s.t >= epoch(from) && s.t <= epoch(to));
      const base = within(baselineSamples[0]?.t ?? 0, run.sentAt);
      const legs = [
        ["leg 1", within(run.sentAt, run.storedAt)],
        ["leg 2", within(run.leg2Start, run.leg2End)],
      ] as const;
      say();
      say(
        `process.memoryUsage() inside talkgate (memory probe, ${fmt(probe.length)} samples): baseline mean, ` +
          "then each figure's own peak during the leg (MiB):",
      );
      say();
      say(`| | ${PROBE_KEYS.join(" | ")} |`);
      say(`|---|${PROBE_KEYS.map(() => "---:").join("|")}|`);
      const mean = (xs: readonly ProbeSample[], key: (typeof PROBE_KEYS)[number]) =>
        xs.reduce((sum, s) => sum + s[key], 0) / Math.max(1, xs.length);
      say(`| baseline | ${PROBE_KEYS.map((k) => mib(mean(base, k))).join(" | ")} |`);
      for (const [name, xs] of legs)
        say(
          `| ${name} peak | ${PROBE_KEYS.map((k) => (xs.length ? mib(Math.max(...xs.map((s) => s[k]))) : "n/a")).join(" | ")} |`,
        );
    }
    say();
    say(
      `- talkgate exit code after SIGTERM: ${exitCode}; log: ${fmt(logLines.length)} lines, ${problems.length} at ` +
        `warn or above${problems.length > 0 ? `; first: \`${problems[0]?.slice(0, 300)}\`` : ""}`,
    );
    console.log(
      `media: leg 1 ${fmt(rate(leg1Ms))} MiB/s, leg 2 ${fmt(rate(leg2Ms))} MiB/s, RSS growth ${signedMib(growth)} MiB`,
    );
    return {
      ok: exact && incoming.length === 0,
      leg1MiBs: rate(leg1Ms),
      leg2MiBs: rate(leg2Ms),
      growthMiB: growth / MiB,
    };
  } finally {
    await sampler?.stop();
    db?.close();
    if (talkgate) await stopChild(talkgate, 3_000);
    await agent.close();
    await emulator.close();
    await sink.close();
  }
}
