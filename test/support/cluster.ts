// A talkgate cluster for tests and the cluster demo: N `talkgate serve` processes on one PostgreSQL database,
// the LINE emulator and a partner sink, and a client-side load balancer that spreads webhooks over the
// instances round-robin, each retry going to the next instance (as a load balancer does after a failure).

import * as ev from "../../emulator/events.ts";
import { type LineEmulator, startLineEmulator, type WebhookResult } from "../../emulator/line-emulator.ts";
import { type PartnerSink, startPartnerSink } from "../../emulator/partner-sink.ts";
import { ACCESS_TOKEN, API_KEY, CHANNEL_SECRET, SENDER_KEY, SIGNING_SECRET, stackConfig } from "./stack.ts";
import { freePort, startTalkgateProcess, type TalkgateProcess } from "./talkgate-process.ts";

export interface Cluster {
  readonly emulator: LineEmulator;
  readonly sink: PartnerSink;
  readonly instances: readonly TalkgateProcess[];
  /** Which instance took each webhook body that was answered 200 (index into `instances`). */
  readonly acknowledgedBy: number[];
  /**
   * Posts `events` to the next instance; a body not answered 200 within 2 s is posted again, marked as a
   * redelivery, to the instance after it, until one answers 200 or `deadline` passes (then it throws).
   */
  sendWebhook(
    events: readonly ev.LineEvent[],
    deadline: number,
  ): Promise<{ attempts: number; instance: number }>;
  /** Calls the partner API of instance `i`. */
  api(
    i: number,
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** Settings that let the instances take a killed instance's work over within seconds rather than a minute. */
export const CLUSTER_SETTINGS = {
  delivery: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 200, timeoutMs: 1_000, leaseMs: 3_000 },
  media: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 200, timeoutMs: 2_000, leaseMs: 5_000 },
};

/** Starts `count` instances on the PostgreSQL database `database`; every other setting as in the stack suites. */
export async function startCluster(
  database: string,
  count: number,
  options: {
    partnerRespond?: Parameters<PartnerSink["respondWith"]>[0];
    /** Sees every line instance `i` writes. */
    onOutput?: (i: number, line: string) => void;
  } = {},
): Promise<Cluster> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const emulator = await startLineEmulator({
    channels: [{ channelId: SENDER_KEY, channelSecret: CHANNEL_SECRET, accessToken: ACCESS_TOKEN }],
  });
  const sink = await startPartnerSink({ signingSecret: SIGNING_SECRET });
  if (options.partnerRespond) sink.respondWith(options.partnerRespond);
  const config = stackConfig(emulator.url, sink.url, { config: CLUSTER_SETTINGS });
  const instances: TalkgateProcess[] = [];
  try {
    // One after the other: the first applies the migrations, the others find them applied.
    for (const [i, port] of ports.entries())
      instances.push(
        await startTalkgateProcess(config, port, {
          database,
          onOutput: (line) => options.onOutput?.(i, line),
        }),
      );
  } catch (error) {
    await Promise.all(instances.map((instance) => instance.close()));
    await emulator.close();
    await sink.close();
    throw error;
  }
  let next = 0;
  const acknowledgedBy: number[] = [];
  return {
    emulator,
    sink,
    instances,
    acknowledgedBy,
    async sendWebhook(events, deadline) {
      for (let attempt = 0; ; attempt++) {
        if (Date.now() > deadline)
          throw new Error(`a webhook body was not acknowledged in time (${attempt} attempts)`);
        const instance = next++ % instances.length;
        const url = `${instances[instance]?.url}/line/webhook/${SENDER_KEY}`;
        const body = attempt === 0 ? events : events.map((event) => ev.redelivered(event));
        const result: WebhookResult | null = await emulator
          .sendWebhook(SENDER_KEY, body, { url, timeoutMs: 2_000 })
          .catch(() => null);
        if (result?.status === 200) {
          acknowledgedBy.push(instance);
          return { attempts: attempt + 1, instance };
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async api(i, method, path, body) {
      const response = await fetch(`${instances[i]?.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${API_KEY}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    async close() {
      await Promise.all(instances.map((instance) => instance.close()));
      await emulator.close();
      await sink.close();
    },
  };
}

/** One delivery as `GET /line/deliveries` lists it. */
export interface ListedDelivery {
  serial_number: string;
  conversation: string;
  state: string;
  attempts: number;
}

/** Every delivery of the channel, paged through `GET /line/deliveries` on instance `i`. */
export async function allDeliveries(cluster: Cluster, i = 0): Promise<ListedDelivery[]> {
  const all: ListedDelivery[] = [];
  for (let cursor: string | null = "0"; cursor !== null; ) {
    const page = await cluster.api(
      i,
      "GET",
      `/line/deliveries?sender_key=${SENDER_KEY}&limit=1000&cursor=${cursor}`,
    );
    if (page.status !== 200)
      throw new Error(`GET /line/deliveries answered ${page.status}: ${JSON.stringify(page.body)}`);
    all.push(...(page.body.deliveries as ListedDelivery[]));
    cursor = page.body.next_cursor as string | null;
  }
  return all;
}
