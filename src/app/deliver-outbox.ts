// Use case: drain the outbox — each conversation's events to its partner, one at a time, in LINE timestamp order,
// each partner within its share of the slots, none held up by another.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { DeliveryPace } from "../core/delivery-pace.ts";
import { asObject, senderOf } from "../core/line-event.ts";
import type { LongTextPolicy } from "../core/long-text.ts";
import { PartnerHealth, type PartnerState, type PausePolicy } from "../core/partner-health.ts";
import { buildPartnerPayload, webhookIdOf } from "../core/partner-payload.ts";
import { afterFailure, LEASE_MARGIN_MS, type RetryPolicy } from "../core/retry-policy.ts";
import type { AttemptResult, Clock, Metrics, PartnerTransport } from "./ports.ts";
import type { ConversationClaim, DeliveryOutcome, DeliveryTask, Outbox, PartnerSlots } from "./store.ts";
import type { UserNames } from "./user-names.ts";
import { WorkLoop } from "./work-loop.ts";

export interface DeliveryOptions {
  /** Conversations delivered at the same time, at most (the pace may allow fewer). */
  concurrency: number;
  /** Conversations of one partner delivered at the same time, at most: its share of the slots. */
  partnerConcurrency: number;
  /** Most events taken from one conversation per claim. */
  batchSize: number;
  /** How long a claim is held; a worker that dies releases its conversations when this runs out. */
  leaseMs: number;
  /** One attempt's deadline (the transport's): no attempt starts unless it can end well within the lease. */
  timeoutMs: number;
  /** Longest sleep when idle (new events and finished claims wake the worker sooner). */
  pollMs: number;
  retry: RetryPolicy;
  /** When a partner that keeps failing is paused instead of hammered. */
  pause: PausePolicy;
  longText: LongTextPolicy;
  /**
   * What the runtime configuration says of a partner now: whether its payloads carry LINE's own event fields
   * (partners[].lineEventFields), and whether it is disabled (its deliveries wait).
   */
  partner(partnerId: string): { lineEventFields: boolean; disabled: boolean } | undefined;
}

export interface DeliveryDeps {
  outbox: Outbox;
  /** How many deliveries may run at once now (intake first). */
  pace: DeliveryPace;
  transport: PartnerTransport;
  userNames: UserNames;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  random?: () => number;
}

/** Waits between attempts to record outcomes the store refused (disk full…), doubling up to the last. */
const RECORD_RETRY_MS = [50, 100, 200, 500, 1_000, 2_000];

/** Delivers the outbox: claims due conversations, sends their events in order, records the outcomes. */
export class DeliveryWorker {
  readonly #deps: DeliveryDeps;
  readonly #options: DeliveryOptions;
  readonly #loop: WorkLoop<ConversationClaim>;
  readonly #partners = new Map<string, PartnerHealth>();
  readonly #slots: PartnerSlots;

  constructor(deps: DeliveryDeps, options: DeliveryOptions) {
    this.#deps = deps;
    this.#options = options;
    const owner = `delivery-${randomUUID()}`;
    this.#slots = (partnerId) =>
      options.partner(partnerId)?.disabled
        ? 0
        : this.#health(partnerId).slots(deps.clock.now(), options.partnerConcurrency);
    this.#loop = new WorkLoop({
      name: "delivery",
      concurrency: options.concurrency,
      limit: () => deps.pace.limit(deps.clock.now()),
      pollMs: options.pollMs,
      clock: deps.clock,
      logger: deps.logger,
      claim: async (limit) => {
        const started = performance.now();
        const claims = await deps.outbox.claimConversations({
          owner,
          limit,
          batchSize: options.batchSize,
          now: deps.clock.now(),
          leaseMs: options.leaseMs,
          slots: this.#slots,
        });
        if (claims.length > 0) deps.metrics.stage("claim", (performance.now() - started) / 1000);
        return claims;
      },
      process: (claim) => this.#deliver(claim),
      nextDueAt: () => this.#nextDueAt(),
    });
  }

  start(): void {
    this.#loop.start();
  }

  /** Tells the worker there may be new work (called after intake commits). */
  wake(): void {
    this.#loop.wake();
  }

  /** Stops claiming, lets attempts in flight finish and records them. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Where a partner's deliveries stand: delivering, paused until a time, or probing. */
  partnerState(partnerId: string): PartnerState {
    return this.#health(partnerId).state(this.#deps.clock.now());
  }

  // The store's next due conversation that may be taken, or the end of a pause (a probe may go then).
  async #nextDueAt(): Promise<number | null> {
    const now = this.#deps.clock.now();
    let next = await this.#deps.outbox.nextDueAt(now, this.#slots);
    for (const health of this.#partners.values()) {
      const state = health.state(now);
      if (state.state === "paused" && (next === null || state.until < next)) next = state.until;
    }
    return next;
  }

  async #deliver(claim: ConversationClaim): Promise<void> {
    const { clock, logger } = this.#deps;
    const outcomes: DeliveryOutcome[] = [];
    try {
      for (const task of claim.deliveries) {
        // An attempt starts only if it ends (at its deadline at the latest) well before the lease does,
        // so that no other worker can take the conversation while one of its events is in flight.
        const now = clock.now();
        if (now + this.#options.timeoutMs + LEASE_MARGIN_MS > claim.until) break;
        if (outcomes.length > 0 && !this.#loop.running) break;
        const outcome = await this.#attempt(task);
        if (!outcome) break; // its partner is paused: the conversation waits, nothing is recorded
        outcomes.push(outcome);
        const lag = outcome.state === "delivered" ? outcome.at - task.receivedAt : undefined;
        this.#deps.metrics.deliveryAttempt(task.partnerId, outcome.state, lag);
        // The head waits for its retry; the rest of the conversation waits behind it.
        if (outcome.state === "retrying") break;
      }
    } catch (error) {
      // A bug, not a partner failure: record what was done; the rest comes back when the lease ends.
      logger.error({ err: error, conversation: claim.conversation }, "delivery:attempt:error");
    }
    await this.#record(claim, outcomes);
  }

  // Records a claim's outcomes and releases it. Should the store refuse (a full disk), it tries again,
  // so that the conversation is released as soon as writing works again rather than when its lease ends.
  async #record(claim: ConversationClaim, outcomes: DeliveryOutcome[]): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await this.#deps.outbox.completeClaim(claim, outcomes);
        return;
      } catch (error) {
        if (failures === 0)
          this.#deps.logger.error({ err: error, conversation: claim.conversation }, "delivery:record:failed");
        // Stopping: the lease runs out and the events are delivered again (at least once, never lost).
        if (!this.#loop.running) return;
        const wait = RECORD_RETRY_MS[Math.min(failures, RECORD_RETRY_MS.length - 1)] as number;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  #health(partnerId: string): PartnerHealth {
    let health = this.#partners.get(partnerId);
    if (!health) {
      health = new PartnerHealth(this.#options.pause);
      this.#partners.set(partnerId, health);
    }
    return health;
  }

  /** One attempt, or null when the partner may not be sent to now (paused, or another probe is out). */
  async #attempt(task: DeliveryTask): Promise<DeliveryOutcome | null> {
    const { transport, clock, logger, metrics, pace } = this.#deps;
    const health = this.#health(task.partnerId);
    const admission = health.admit(clock.now());
    if (!admission.send) return null;
    const started = clock.now();
    const waited = Math.max(0, started - task.dueAt);
    pace.observeWait(waited);
    metrics.stage("queue", waited / 1000);
    let result: AttemptResult;
    const posted = performance.now();
    try {
      const body = JSON.stringify(await this.#payload(task));
      result = await transport.send(task.partnerId, webhookIdOf(task.senderKey, task.serialNumber), body);
    } catch (error) {
      // Not the partner's doing (a bug): the probe, if this was it, goes again with the next attempt.
      if (admission.probe) health.abandonProbe();
      throw error;
    }
    metrics.stage("post", (performance.now() - posted) / 1000);
    const at = clock.now();
    const log = { serial_number: task.serialNumber, partner: task.partnerId, attempt: task.attempts + 1 };
    const change = health.record(result.ok, at, admission.probe);
    if (change && "pausedUntil" in change) {
      logger.warn(
        { partner: task.partnerId, until: change.pausedUntil, probe: admission.probe },
        "delivery:partner:paused",
      );
    } else if (change) {
      logger.info({ partner: task.partnerId }, "delivery:partner:resumed");
      // Its conversations may all be taken up now.
      this.#loop.wake();
    }
    if (result.ok) {
      logger.info({ ...log, status: result.status }, "delivery:delivered");
      return { eventId: task.eventId, at, status: result.status, error: null, state: "delivered" };
    }
    const next = afterFailure(
      { attempts: task.attempts + 1, createdAt: task.retryFrom },
      at,
      this.#options.retry,
      this.#deps.random,
    );
    const failure = { eventId: task.eventId, at, status: result.status, error: result.reason };
    if (next.state === "dead") {
      logger.error({ ...log, status: result.status, reason: result.reason }, "delivery:dead");
      return { ...failure, state: "dead" };
    }
    logger.warn(
      { ...log, status: result.status, reason: result.reason, retry_at: next.nextAttemptAt },
      "delivery:attempt:failed",
    );
    return { ...failure, state: "retrying", nextAttemptAt: next.nextAttemptAt };
  }

  async #payload(task: DeliveryTask) {
    const event = asObject(JSON.parse(task.body)) ?? {};
    const sender = senderOf(asObject(event.source));
    const userName = sender
      ? await this.#deps.userNames.resolve(task.senderKey, sender.chat, sender.userId)
      : "";
    return buildPartnerPayload({
      senderKey: task.senderKey,
      serialNumber: task.serialNumber,
      receivedAt: task.receivedAt,
      event,
      userName,
      e164: task.e164,
      agreeType: task.agreeType,
      longText: this.#options.longText,
      lineEventFields: this.#options.partner(task.partnerId)?.lineEventFields ?? false,
    });
  }
}
