// Metrics in Prometheus form (prom-client), on a registry of talkgate's own, served at GET /metrics.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Clock, Metrics, Store } from "../app/ports.ts";

/** The label value of a sender_key that is not a configured channel (labels never take a request's values). */
export const UNKNOWN_CHANNEL = "unknown";

/** {@link Metrics} over prom-client; gauges of the outbox are read from the store at each scrape. */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  readonly #webhooks: Counter;
  readonly #refused: Counter;
  readonly #stored: Counter;
  readonly #deliveries: Counter;
  readonly #lag: Histogram;
  readonly #media: Counter;
  readonly #line: Counter;
  readonly #sends: Counter;
  readonly #isChannel: (senderKey: string) => boolean;

  /** `isChannel` tells configured channels, the only sender_key label values, from any other. */
  constructor(store: Pick<Store, "deliveryStats">, clock: Clock, isChannel: (senderKey: string) => boolean) {
    this.#isChannel = isChannel;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "talkgate_" });
    this.#webhooks = new Counter({
      name: "talkgate_webhooks_received_total",
      help: "Webhook requests received from LINE",
      labelNames: ["sender_key"],
      registers,
    });
    this.#refused = new Counter({
      name: "talkgate_webhooks_refused_total",
      help: "Webhook requests refused, by error code (-412 signature, -406 channel, -405 body, -600 storage…)",
      labelNames: ["sender_key", "code"],
      registers,
    });
    this.#stored = new Counter({
      name: "talkgate_events_stored_total",
      help: "New events committed (duplicates not counted)",
      labelNames: ["sender_key"],
      registers,
    });
    this.#deliveries = new Counter({
      name: "talkgate_delivery_attempts_total",
      help: "Delivery attempts to partners by outcome (delivered, retrying, dead, deferred while paused)",
      labelNames: ["partner", "outcome"],
      registers,
    });
    this.#lag = new Histogram({
      name: "talkgate_delivery_lag_seconds",
      help: "From talkgate receiving an event to the partner acknowledging it",
      labelNames: ["partner"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.#media = new Counter({
      name: "talkgate_media_downloads_total",
      help: "Attachment downloads from LINE by outcome (stored, gone, retry)",
      labelNames: ["outcome"],
      registers,
    });
    this.#line = new Counter({
      name: "talkgate_line_api_calls_total",
      help: "LINE API calls by endpoint and HTTP status (0: LINE not reached)",
      labelNames: ["endpoint", "status"],
      registers,
    });
    this.#sends = new Counter({
      name: "talkgate_sends_total",
      help: "Partner sends to LINE users by method (reply, push) or failed",
      labelNames: ["method"],
      registers,
    });
    // Outbox gauges come from the store when Prometheus scrapes (one query, no bookkeeping on hot paths).
    // The gauges of one scrape are collected together and share the query, so they agree with each other.
    // A store that fails to answer leaves them as they were (/readyz tells that the store is down).
    type Stats = Awaited<ReturnType<Store["deliveryStats"]>>;
    let scrape: Promise<Stats | null> | null = null;
    const stats = () => {
      scrape ??= store
        .deliveryStats()
        .catch(() => null)
        .finally(() => {
          scrape = null;
        });
      return scrape;
    };
    new Gauge({
      name: "talkgate_deliveries_waiting",
      help: "Deliveries not yet acknowledged, by state (pending, retrying)",
      labelNames: ["state"],
      registers,
      async collect() {
        const current = await stats();
        if (!current) return;
        this.set({ state: "pending" }, current.pending);
        this.set({ state: "retrying" }, current.retrying);
      },
    });
    new Gauge({
      name: "talkgate_deliveries_dead",
      help: "Deliveries given up after the retry window (replay them with POST /line/deliveries/replay)",
      registers,
      async collect() {
        const current = await stats();
        if (current) this.set(current.dead);
      },
    });
    new Gauge({
      name: "talkgate_oldest_waiting_delivery_age_seconds",
      help: "Age of the oldest delivery not yet acknowledged (0 when none waits)",
      registers,
      async collect() {
        const current = await stats();
        if (!current) return;
        const oldest = current.oldestWaitingAt;
        this.set(oldest === null ? 0 : Math.max(0, (clock.now() - oldest) / 1000));
      },
    });
  }

  webhookReceived(senderKey: string): void {
    this.#webhooks.inc({ sender_key: this.#channel(senderKey) });
  }
  webhookRefused(senderKey: string, code: string): void {
    this.#refused.inc({ sender_key: this.#channel(senderKey), code });
  }
  eventsStored(senderKey: string, count: number): void {
    if (count > 0) this.#stored.inc({ sender_key: this.#channel(senderKey) }, count);
  }
  #channel(senderKey: string): string {
    return this.#isChannel(senderKey) ? senderKey : UNKNOWN_CHANNEL;
  }
  deliveryAttempt(
    partnerId: string,
    outcome: "delivered" | "retrying" | "dead" | "deferred",
    lagMs?: number,
  ): void {
    this.#deliveries.inc({ partner: partnerId, outcome });
    if (lagMs !== undefined) this.#lag.observe({ partner: partnerId }, lagMs / 1000);
  }
  mediaDownload(outcome: "stored" | "gone" | "retry"): void {
    this.#media.inc({ outcome });
  }
  lineCall(endpoint: string, status: number | null): void {
    this.#line.inc({ endpoint, status: String(status ?? 0) });
  }
  send(method: "reply" | "push" | "failed"): void {
    this.#sends.inc({ method });
  }
}
