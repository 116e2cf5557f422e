// Metrics in Prometheus form (prom-client), on a registry of talkgate's own, served at GET /metrics.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Clock, Metrics, Stage } from "../app/ports.ts";
import type { Store } from "../app/store.ts";
import type { PartnerState } from "../core/partner-health.ts";

/** The label value of a sender_key that is not a configured channel (labels never take a request's values). */
export const UNKNOWN_CHANNEL = "unknown";

/** What the metrics read when Prometheus scrapes. */
export interface MetricsSources {
  store: Pick<Store, "deliveryStats">;
  clock: Clock;
  /** Tells configured channels, the only sender_key label values, from any other. */
  isChannel(senderKey: string): boolean;
  /** The configured partners, and where each one's deliveries stand. */
  partners(): readonly string[];
  partnerState(partnerId: string): PartnerState;
  /** Free bytes on the volumes talkgate writes to. */
  freeBytes: Record<"media" | "database", () => Promise<number>>;
  /** Each channel whose token talkgate issues, and when its token expires (null: it has none). */
  tokenExpiries(): ReadonlyArray<{ senderKey: string; expiresAt: number | null }>;
}

/** {@link Metrics} over prom-client; gauges of the outbox and the partners are read at each scrape. */
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
  readonly #stages: Histogram;
  readonly #tokenFailures: Counter;
  readonly #purged: Counter;
  readonly #isChannel: (senderKey: string) => boolean;

  constructor(sources: MetricsSources) {
    const { store, clock } = sources;
    this.#isChannel = sources.isChannel;
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
      help: "Delivery attempts to partners by outcome (delivered, retrying, dead)",
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
    this.#stages = new Histogram({
      name: "talkgate_stage_seconds",
      help: "Time spent in each stage of relaying: commit (a webhook's events stored, durably), queue (a delivery due → its attempt), claim (taking due conversations), post (a partner's answer)",
      labelNames: ["stage"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.#purged = new Counter({
      name: "talkgate_retention_purged_total",
      help: "Rows retention deleted, by kind (events, attachments, sends, audit)",
      labelNames: ["kind"],
      registers,
    });
    this.#tokenFailures = new Counter({
      name: "talkgate_channel_token_renewal_failures_total",
      help: "Channel access tokens LINE would not issue when talkgate asked (the log says why)",
      labelNames: ["sender_key"],
      registers,
    });
    new Gauge({
      name: "talkgate_channel_token_expiry_seconds",
      help: "Seconds until the channel access token talkgate issued expires (0: the channel has no usable token)",
      labelNames: ["sender_key"],
      registers,
      collect() {
        this.reset();
        const now = clock.now();
        for (const { senderKey, expiresAt } of sources.tokenExpiries())
          this.set({ sender_key: senderKey }, expiresAt === null ? 0 : Math.max(0, (expiresAt - now) / 1000));
      },
    });
    const states = ["delivering", "paused", "probing"] as const;
    new Gauge({
      name: "talkgate_partner_state",
      help: "Each partner's deliveries: 1 for its state now (delivering, paused after repeated failures, probing with one delivery)",
      labelNames: ["partner", "state"],
      registers,
      collect() {
        // Partners deleted at runtime drop out.
        this.reset();
        for (const partner of sources.partners()) {
          const { state } = sources.partnerState(partner);
          for (const each of states) this.set({ partner, state: each }, each === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: "talkgate_partner_paused_until_seconds",
      help: "When a paused partner's pause ends (Unix seconds; 0 when it is not paused)",
      labelNames: ["partner"],
      registers,
      collect() {
        this.reset();
        for (const partner of sources.partners()) {
          const state = sources.partnerState(partner);
          this.set({ partner }, state.state === "paused" ? state.until / 1000 : 0);
        }
      },
    });
    new Gauge({
      name: "talkgate_disk_free_bytes",
      help: "Free space on the volume of the attachments and uploads (media) and of the database; uploads and downloads stop below media.minFreeBytes",
      labelNames: ["volume"],
      registers,
      async collect() {
        for (const [volume, read] of Object.entries(sources.freeBytes)) {
          const free = await read().catch(() => null);
          if (free !== null) this.set({ volume }, free);
        }
      },
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
  deliveryAttempt(partnerId: string, outcome: "delivered" | "retrying" | "dead", lagMs?: number): void {
    this.#deliveries.inc({ partner: partnerId, outcome });
    if (lagMs !== undefined) this.#lag.observe({ partner: partnerId }, lagMs / 1000);
  }
  mediaDownload(outcome: "stored" | "gone" | "retry"): void {
    this.#media.inc({ outcome });
  }
  lineCall(endpoint: string, status: number | null): void {
    this.#line.inc({ endpoint, status: String(status ?? 0) });
  }
  tokenRenewalFailed(senderKey: string): void {
    this.#tokenFailures.inc({ sender_key: this.#isChannel(senderKey) ? senderKey : UNKNOWN_CHANNEL });
  }
  retentionPurged(kind: "events" | "attachments" | "sends" | "audit", count: number): void {
    this.#purged.inc({ kind }, count);
  }
  send(method: "reply" | "push" | "failed"): void {
    this.#sends.inc({ method });
  }
  stage(stage: Stage, seconds: number): void {
    this.#stages.observe({ stage }, seconds);
  }
}
