// The backend: the store and the work it sets going (deliveries to partners, attachment fetches, profile
// lookups). The HTTP side talks to it as a Store.
import type { Logger } from "pino";
import { DeliveryWorker } from "../app/deliver-outbox.ts";
import { MediaWorker } from "../app/fetch-media.ts";
import type {
  Clock,
  DeliveryFilter,
  IngestRequest,
  IngestResult,
  LineApi,
  MediaFiles,
  Metrics,
  Store,
} from "../app/ports.ts";
import { UserNames } from "../app/user-names.ts";
import type { TalkgateConfig } from "../config/config.ts";
import { DeliveryPace } from "../core/delivery-pace.ts";
import type { PartnerState } from "../core/partner-health.ts";
import type { RetryPolicy } from "../core/retry-policy.ts";
import { HttpPartnerTransport } from "../partner/http-partner-transport.ts";

/** How often the delivery pace looks at intake's commit latency again. */
const PACE_WINDOW_MS = 100;

export interface BackendDeps {
  store: Store;
  /** For profile lookups and attachment downloads (the HTTP side's too, which closes it). */
  line: LineApi;
  files: MediaFiles;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

/**
 * A {@link Store} whose writes set the background work going: stored events wake the delivery and media
 * workers and start profile lookups, a replay wakes the delivery worker. Closing it stops the workers
 * (attempts in flight finish and are recorded), then closes the store.
 */
export class Backend implements Store {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #pace: DeliveryPace;
  readonly #files: MediaFiles;
  readonly #names: UserNames;
  readonly #transport: HttpPartnerTransport;
  readonly #delivery: DeliveryWorker;
  readonly #media: MediaWorker;

  constructor(config: TalkgateConfig, deps: BackendDeps) {
    const { store, line, logger, metrics, clock } = deps;
    this.#store = store;
    this.#files = deps.files;
    this.#logger = logger;
    this.#metrics = metrics;
    let loop = performance.eventLoopUtilization();
    this.#pace = new DeliveryPace({
      max: config.delivery.concurrency,
      targetMs: config.delivery.intakeLatencyTargetMs,
      windowMs: PACE_WINDOW_MS,
      loopBusy: () => {
        const since = performance.eventLoopUtilization(loop);
        loop = performance.eventLoopUtilization();
        return since.utilization;
      },
    });
    this.#names = new UserNames(line, clock, config.profiles);
    this.#transport = new HttpPartnerTransport(config.partners, {
      timeoutMs: config.delivery.timeoutMs,
      clock,
    });
    this.#delivery = new DeliveryWorker(
      {
        store,
        pace: this.#pace,
        transport: this.#transport,
        userNames: this.#names,
        clock,
        logger,
        metrics,
      },
      {
        ...config.delivery,
        retry: retryPolicy(config.delivery),
        pause: {
          failuresToPause: config.delivery.pauseAfterFailures,
          initialPauseMs: config.delivery.pauseInitialMs,
          maxPauseMs: config.delivery.pauseMaxMs,
        },
        longText: config.longText,
        lineEventFieldsFor: new Set(config.partners.filter((p) => p.lineEventFields).map((p) => p.id)),
      },
    );
    this.#media = new MediaWorker(
      {
        store,
        line,
        files: this.#files,
        clock,
        logger,
        metrics,
        onSettled: () => this.#delivery.wake(),
      },
      { ...config.media, retry: retryPolicy(config.media) },
    );
  }

  /** Starts the delivery and media workers (waiting work from an earlier run is taken up at once). */
  start(): void {
    this.#delivery.start();
    this.#media.start();
  }

  async ingest(request: IngestRequest): Promise<IngestResult> {
    const started = performance.now();
    const result = await this.#store.ingest(request);
    const took = performance.now() - started;
    // Deliveries make way when intake's commits slow down (LINE waits 2 s for the answer).
    this.#pace.observeCommit(took);
    this.#metrics.stage("commit", took / 1000);
    for (const event of result.stored) {
      // Start the profile lookup now so the name is ready when the payload is built.
      const { sender } = event.facts;
      if (event.forward && sender) this.#names.prefetch(request.senderKey, sender.chat, sender.userId);
    }
    for (const path of result.unsentFiles) {
      this.#files
        .remove(path)
        .catch((error: unknown) => this.#logger.error({ err: error }, "media:remove:failed"));
    }
    if (result.stored.length > 0) this.#delivery.wake();
    if (result.stored.some((event) => event.fetchesMedia)) this.#media.wake();
    return result;
  }

  async replayDeliveries(filter: DeliveryFilter, now: number, limit: number): Promise<string[]> {
    const replayed = await this.#store.replayDeliveries(filter, now, limit);
    this.#delivery.wake();
    return replayed;
  }

  /** Where a partner's deliveries stand: delivering, paused until a time, or probing. */
  partnerState(partnerId: string): PartnerState {
    return this.#delivery.partnerState(partnerId);
  }

  /** Stops the workers, letting the attempts in flight finish and be recorded. */
  async stopWorkers(): Promise<void> {
    await Promise.all([this.#delivery.stop(), this.#media.stop()]);
  }

  /** Stops the workers (see stopWorkers), then closes the partner connections and the store. */
  async close(): Promise<void> {
    await this.stopWorkers();
    await this.#transport.close();
    await this.#store.close();
  }

  // The rest goes to the store as it is.

  claimConversations(
    ...args: Parameters<Store["claimConversations"]>
  ): ReturnType<Store["claimConversations"]> {
    return this.#store.claimConversations(...args);
  }

  completeClaim(...args: Parameters<Store["completeClaim"]>): ReturnType<Store["completeClaim"]> {
    return this.#store.completeClaim(...args);
  }

  listDeliveries(...args: Parameters<Store["listDeliveries"]>): ReturnType<Store["listDeliveries"]> {
    return this.#store.listDeliveries(...args);
  }

  countDeliveries(...args: Parameters<Store["countDeliveries"]>): ReturnType<Store["countDeliveries"]> {
    return this.#store.countDeliveries(...args);
  }

  deliveryStats(...args: Parameters<Store["deliveryStats"]>): ReturnType<Store["deliveryStats"]> {
    return this.#store.deliveryStats(...args);
  }

  nextDueAt(...args: Parameters<Store["nextDueAt"]>): ReturnType<Store["nextDueAt"]> {
    return this.#store.nextDueAt(...args);
  }

  claimMedia(...args: Parameters<Store["claimMedia"]>): ReturnType<Store["claimMedia"]> {
    return this.#store.claimMedia(...args);
  }

  finishMedia(...args: Parameters<Store["finishMedia"]>): ReturnType<Store["finishMedia"]> {
    return this.#store.finishMedia(...args);
  }

  nextMediaDueAt(...args: Parameters<Store["nextMediaDueAt"]>): ReturnType<Store["nextMediaDueAt"]> {
    return this.#store.nextMediaDueAt(...args);
  }

  findMessage(...args: Parameters<Store["findMessage"]>): ReturnType<Store["findMessage"]> {
    return this.#store.findMessage(...args);
  }

  beginSend(...args: Parameters<Store["beginSend"]>): ReturnType<Store["beginSend"]> {
    return this.#store.beginSend(...args);
  }

  claimReplyToken(...args: Parameters<Store["claimReplyToken"]>): ReturnType<Store["claimReplyToken"]> {
    return this.#store.claimReplyToken(...args);
  }

  notePush(...args: Parameters<Store["notePush"]>): ReturnType<Store["notePush"]> {
    return this.#store.notePush(...args);
  }

  getDirectoryEntry(...args: Parameters<Store["getDirectoryEntry"]>): ReturnType<Store["getDirectoryEntry"]> {
    return this.#store.getDirectoryEntry(...args);
  }

  setDirectoryEntry(...args: Parameters<Store["setDirectoryEntry"]>): ReturnType<Store["setDirectoryEntry"]> {
    return this.#store.setDirectoryEntry(...args);
  }

  finishSend(...args: Parameters<Store["finishSend"]>): ReturnType<Store["finishSend"]> {
    return this.#store.finishSend(...args);
  }

  recordUploads(...args: Parameters<Store["recordUploads"]>): ReturnType<Store["recordUploads"]> {
    return this.#store.recordUploads(...args);
  }

  uploadUsage(...args: Parameters<Store["uploadUsage"]>): ReturnType<Store["uploadUsage"]> {
    return this.#store.uploadUsage(...args);
  }

  forgetUploads(...args: Parameters<Store["forgetUploads"]>): ReturnType<Store["forgetUploads"]> {
    return this.#store.forgetUploads(...args);
  }

  ping(...args: Parameters<Store["ping"]>): ReturnType<Store["ping"]> {
    return this.#store.ping(...args);
  }
}

// The retry policy of a configuration section with initialBackoffMs, maxBackoffMs and maxAgeMs.
function retryPolicy(section: {
  initialBackoffMs: number;
  maxBackoffMs: number;
  maxAgeMs: number;
}): RetryPolicy {
  return {
    initialDelayMs: section.initialBackoffMs,
    maxDelayMs: section.maxBackoffMs,
    maxAgeMs: section.maxAgeMs,
  };
}
