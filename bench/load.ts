// The load the benchmark scenarios send: pools of distinct signed webhook bodies, autocannon at saturation, and an
// open-loop generator at a fixed rate.
//
// Fixed-rate runs do not use autocannon's rate limit: it lets each connection send its whole quota for a second
// at the start of that second, so "1,000/s" arrives as one burst a second. Here a request is due every
// 1/rate s, sent when due whether or not earlier ones were answered (open loop), and its latency is counted
// from when it was due, so a server that falls behind cannot hide it (no coordinated omission).
import autocannon, { type Result } from "autocannon";
import { Pool as HttpPool } from "undici";
import { textEvent, ulid, userSource, webhookBody } from "../emulator/events.ts";
import { lineSignature } from "../src/core/signature.ts";
import { CHANNEL_SECRET } from "../test/support/stack.ts";
import { machineTicks, treeCpuSeconds } from "./support.ts";

export interface Pool {
  bodies: Buffer[];
  signatures: string[];
  size: number;
}

export const userId = (i: number) => `U${(0xbe0000 + i).toString(16).padStart(32, "0")}`;

/**
 * `size` signed webhook bodies, one text message event each, from `users` users in turn; event i's text is
 * `text(i)`. Every id and token is unique (one random stem plus a counter: as unique as random ones, far
 * cheaper to make); LINE timestamps rise by one per event so each user's events have a strict order.
 */
export function buildPool(size: number, users: number, text: (i: number) => string): Pool {
  const bodies = new Array<Buffer>(size);
  const signatures = new Array<string>(size);
  const stem = ulid();
  const idStem = stem.slice(0, 16);
  const tokenStem = Buffer.from(stem).toString("hex").slice(0, 24);
  const longStem = Buffer.from(`${stem}${stem}`).toString("base64url").slice(0, 56);
  const firstMessageId = Date.now() * 100_000;
  const now = Date.now();
  for (let i = 0; i < size; i++) {
    const n = i.toString(16).padStart(8, "0");
    const event = textEvent(
      userSource(userId(i % users)),
      {
        text: text(i),
        id: String(firstMessageId + i),
        quoteToken: `q${longStem}${n}`,
        markAsReadToken: `m${longStem}${n}`,
      },
      {
        webhookEventId: `${idStem}${i.toString(32).toUpperCase().padStart(10, "0")}`,
        replyToken: `${tokenStem}${n}`,
        timestamp: now + i,
      },
    );
    const body = Buffer.from(JSON.stringify(webhookBody([event])));
    bodies[i] = body;
    signatures[i] = lineSignature(CHANNEL_SECRET, body);
  }
  return { bodies, signatures, size };
}

const headersFor = (pool: Pool, i: number) => ({
  "content-type": "application/json; charset=utf-8",
  "x-line-signature": pool.signatures[i] as string,
});

/** The processes whose CPU a measured stretch counts, each with its descendants (PostgreSQL's backends). */
export interface MeteredPids {
  /** The server(s) under test: every talkgate instance. */
  server?: readonly (number | undefined)[];
  /** A helper process (talkgate's partner sink). */
  helper?: readonly (number | undefined)[];
  /** The database server (PostgreSQL's postmaster). */
  database?: readonly (number | undefined)[];
}

/** Machine-wide and per-process CPU over a measured stretch. */
export interface CpuUse {
  /** Cores the server process(es) kept busy (1.00 = one core). */
  server: number | null;
  /** Cores a helper process (talkgate's partner sink) kept busy. */
  helper: number | null;
  /** Cores the database server kept busy (PostgreSQL and its backends); null without one. */
  database: number | null;
  /** Cores the bench process (the load generator) kept busy. */
  bench: number;
  /** Machine-wide busy cores and the hypervisor's steal (fraction of all CPU time). */
  machine: { busyCores: number; steal: number } | null;
}

/** Starts measuring CPU; the returned function ends the stretch. */
export function cpuMeter(pids: MeteredPids = {}): () => CpuUse {
  const groups = [pids.server, pids.helper, pids.database];
  const before = groups.map((group) => (group ? treeCpuSeconds(group) : null));
  const bench = process.cpuUsage();
  const ticks = machineTicks();
  const started = performance.now();
  return () => {
    const elapsed = (performance.now() - started) / 1000;
    const [server, helper, database] = groups.map((group, i) => {
      const after = group ? treeCpuSeconds(group) : null;
      const from = before[i];
      return from !== null && from !== undefined && after !== null ? (after - from) / elapsed : null;
    }) as [number | null, number | null, number | null];
    const benchUsed = process.cpuUsage(bench);
    const ticksAfter = machineTicks();
    const total = ticks && ticksAfter ? ticksAfter.total - ticks.total : 0;
    return {
      server,
      helper,
      database,
      bench: (benchUsed.user + benchUsed.system) / 1e6 / elapsed,
      machine:
        ticks && ticksAfter && total > 0
          ? {
              busyCores: (ticksAfter.busy - ticks.busy) / 100 / elapsed,
              steal: (ticksAfter.steal - ticks.steal) / total,
            }
          : null,
    };
  };
}

/** Hands out the pool's bodies in order; once all were used it starts over and counts the repeats. */
export class Cursor {
  #next = 0;
  readonly pool: Pool;
  constructor(pool: Pool) {
    this.pool = pool;
  }
  get used(): number {
    return this.#next;
  }
  get reused(): number {
    return Math.max(0, this.#next - this.pool.size);
  }
  next(): number {
    return this.#next++ % this.pool.size;
  }
}

export interface SaturationRun {
  warmup: Result;
  main: Result;
  cpu: CpuUse;
}

/**
 * Autocannon at full speed: `warmupS` then `durationS` measured, each request the next body of the pool; with
 * several URLs (instances of one server), autocannon spreads the connections over them in turn.
 */
export async function saturate(
  urls: string | readonly string[],
  cursor: Cursor,
  options: { connections: number; warmupS: number; durationS: number; pids?: MeteredPids },
): Promise<SaturationRun> {
  const { pool } = cursor;
  const requests = [
    {
      setupRequest(request: { headers?: Record<string, string> }) {
        const i = cursor.next();
        return {
          ...request,
          method: "POST",
          body: pool.bodies[i] as Buffer,
          headers: { ...request.headers, ...headersFor(pool, i) },
        };
      },
    },
  ];
  const url = typeof urls === "string" ? urls : [...urls];
  const base = { url, connections: options.connections, pipelining: 1, timeout: 10, requests };
  const warmup = await autocannon({ ...base, duration: options.warmupS });
  const meter = cpuMeter(options.pids);
  const main = await autocannon({ ...base, duration: options.durationS });
  return { warmup, main, cpu: meter() };
}

export interface Latencies {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function latencies(values: Float64Array | number[]): Latencies {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted.at(-1) ?? NaN,
    mean: sum / sorted.length,
  };
}

export interface PacedRun {
  /** Acknowledgement latency of the 2xx answers, ms from when each request was due. */
  ack: Latencies;
  /** Answers by status ("error" for requests that got none). */
  statuses: Map<string, number>;
  /** How late the generator itself sent requests (ms after due): large values mean the bench fell behind. */
  sendLag: Latencies;
  /** The pool index of request k, and when it was due (performance.now()), for end-to-end matching. */
  sent: { index: number; dueAt: number }[];
  achievedRate: number;
  cpu: CpuUse;
}

/**
 * Open loop at `rate` requests/s for `durationS`, over `connections` keep-alive connections (more requests in
 * flight than connections queue in the client and count as latency, as they would at a real sender). With
 * several URLs (instances of one server), request k goes to URL k mod n, the connections split among them.
 */
export async function paced(
  urls: string | readonly string[],
  cursor: Cursor,
  options: { rate: number; durationS: number; connections: number; pids?: MeteredPids },
): Promise<PacedRun> {
  const list = typeof urls === "string" ? [urls] : urls;
  const connections = Math.max(1, Math.round(options.connections / list.length));
  const targets = list.map((url) => {
    const target = new URL(url);
    return { path: target.pathname, client: new HttpPool(target.origin, { connections, pipelining: 1 }) };
  });
  const { pool } = cursor;
  const total = Math.round(options.rate * options.durationS);
  const interval = 1000 / options.rate;
  const ack: number[] = [];
  const sendLag: number[] = [];
  const statuses = new Map<string, number>();
  const sent: PacedRun["sent"] = [];
  const inFlight = new Set<Promise<void>>();
  const count = (status: string) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  const meter = cpuMeter(options.pids);
  const started = performance.now();
  let k = 0;
  const fire = (n: number, dueAt: number) => {
    const index = cursor.next();
    sent.push({ index, dueAt });
    sendLag.push(performance.now() - dueAt);
    const target = targets[n % targets.length] as (typeof targets)[number];
    const request = target.client
      .request({
        path: target.path,
        method: "POST",
        headers: headersFor(pool, index),
        body: pool.bodies[index] as Buffer,
      })
      .then(async (response) => {
        await response.body.dump();
        count(String(response.statusCode));
        if (response.statusCode >= 200 && response.statusCode < 300) ack.push(performance.now() - dueAt);
      })
      .catch(() => {
        count("error");
      });
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  };
  while (k < total) {
    const now = performance.now();
    while (k < total && started + k * interval <= now) {
      fire(k, started + k * interval);
      k++;
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, started + k * interval - performance.now())),
    );
  }
  const sendingTook = (performance.now() - started) / 1000;
  await Promise.all(inFlight);
  const cpu = meter();
  await Promise.all(targets.map((target) => target.client.close()));
  return {
    ack: latencies(ack),
    statuses,
    sendLag: latencies(sendLag),
    sent,
    achievedRate: total / sendingTook,
    cpu,
  };
}
