// Use case: drain the outbox — each conversation's events to its partner, one at a time, in LINE timestamp order.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { asObject, senderOf } from "../core/line-event.ts";
import type { LongTextPolicy } from "../core/long-text.ts";
import { PartnerHealth, type PausePolicy } from "../core/partner-health.ts";
import { buildPartnerPayload, webhookIdOf } from "../core/partner-payload.ts";
import { afterFailure, type RetryPolicy } from "../core/retry-policy.ts";
import type { IntakeLoad } from "./intake-load.ts";
import type {
  Clock,
  ConversationClaim,
  DeliveryOutcome,
  DeliveryTask,
  Metrics,
  PartnerTransport,
  Store,
} from "./ports.ts";
import type { UserNames } from "./user-names.ts";
import { WorkLoop } from "./work-loop.ts";

export interface DeliveryOptions {
  /** Conversations delivered at the same time. */
  concurrency: number;
  /**
   * Conversations delivered at the same time while intake is busy, one event at a time: answering LINE
   * within its 2 s comes first, and the backlog drains after the burst.
   */
  busyConcurrency: number;
  /** Most events taken from one conversation per claim. */
  batchSize: number;
  /** How long a claim is held; a worker that dies releases its conversations when this runs out. */
  leaseMs: number;
  /** Longest sleep when idle (new events and finished claims wake the worker sooner). */
  pollMs: number;
  retry: RetryPolicy;
  /** When a partner that keeps failing is paused instead of hammered. */
  pause: PausePolicy;
  longText: LongTextPolicy;
  /** Partners whose payloads carry LINE's own event fields (partners[].lineEventFields). */
  lineEventFieldsFor: ReadonlySet<string>;
}

export interface DeliveryDeps {
  store: Store;
  intake: IntakeLoad;
  transport: PartnerTransport;
  userNames: UserNames;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  random?: () => number;
}

/** Delivers the outbox: claims due conversations, sends their events in order, records the outcomes. */
export class DeliveryWorker {
  readonly #deps: DeliveryDeps;
  readonly #options: DeliveryOptions;
  readonly #loop: WorkLoop<ConversationClaim>;
  readonly #partners = new Map<string, PartnerHealth>();

  constructor(deps: DeliveryDeps, options: DeliveryOptions) {
    this.#deps = deps;
    this.#options = options;
    const owner = `delivery-${randomUUID()}`;
    this.#loop = new WorkLoop({
      name: "delivery",
      concurrency: options.concurrency,
      limit: () => (deps.intake.busy ? options.busyConcurrency : options.concurrency),
      pollMs: options.pollMs,
      clock: deps.clock,
      logger: deps.logger,
      claim: (limit) =>
        deps.store.claimConversations({
          owner,
          limit,
          batchSize: deps.intake.busy ? 1 : options.batchSize,
          now: deps.clock.now(),
          leaseMs: options.leaseMs,
        }),
      process: (claim) => this.#deliver(claim),
      nextDueAt: () => deps.store.nextDueAt(),
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

  async #deliver(claim: ConversationClaim): Promise<void> {
    const { clock, store, logger } = this.#deps;
    const started = clock.now();
    const outcomes: DeliveryOutcome[] = [];
    try {
      for (const task of claim.deliveries) {
        // Stop early enough to record the outcomes while the lease still holds, and promptly on shutdown.
        if (outcomes.length > 0 && (!this.#loop.running || clock.now() - started > this.#options.leaseMs / 2))
          break;
        const outcome = await this.#attempt(task);
        outcomes.push(outcome);
        const lag = outcome.state === "delivered" ? outcome.at - task.receivedAt : undefined;
        this.#deps.metrics.deliveryAttempt(task.partnerId, outcome.state, lag);
        // The head waits (a retry, or its partner paused); the rest of the conversation waits behind it.
        if (outcome.state === "retrying" || outcome.state === "deferred") break;
      }
    } catch (error) {
      // A bug, not a partner failure: record what was done; the rest comes back when the lease ends.
      logger.error({ err: error, conversation: claim.conversation }, "delivery:attempt:error");
    }
    try {
      await store.completeClaim(claim, outcomes);
    } catch (error) {
      // The lease runs out and the events are delivered again: at-least-once, never lost.
      logger.error({ err: error, conversation: claim.conversation }, "delivery:record:failed");
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

  async #attempt(task: DeliveryTask): Promise<DeliveryOutcome> {
    const { transport, clock, logger } = this.#deps;
    const health = this.#health(task.partnerId);
    const now = clock.now();
    // Past its retry window a delivery gets its last try even while its partner is paused: it is dead
    // only once that try has failed, and the deliveries behind it are not held by the pause either.
    const lastTry = now >= task.retryFrom + this.#options.retry.maxAgeMs;
    const admission = lastTry ? { send: true as const, probe: false } : health.admit(now);
    if (!admission.send) {
      return {
        eventId: task.eventId,
        at: now,
        status: null,
        error: null,
        state: "deferred",
        nextAttemptAt: admission.retryAt,
      };
    }
    const body = JSON.stringify(await this.#payload(task));
    const result = await transport.send(task.partnerId, webhookIdOf(task.senderKey, task.serialNumber), body);
    const at = clock.now();
    const log = { serial_number: task.serialNumber, partner: task.partnerId, attempt: task.attempts + 1 };
    const pausedUntil = health.record(result.ok, at);
    if (pausedUntil !== null) {
      logger.warn(
        { partner: task.partnerId, until: pausedUntil, probe: admission.probe },
        "delivery:partner:paused",
      );
    } else if (admission.probe && result.ok) {
      logger.info({ partner: task.partnerId }, "delivery:partner:resumed");
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
      lineEventFields: this.#options.lineEventFieldsFor.has(task.partnerId),
    });
  }
}
