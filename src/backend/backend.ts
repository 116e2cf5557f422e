// The backend: the store and the work it sets going (deliveries to partners, attachment fetches, profile
// lookups). The HTTP side talks to it as a Store.
import type { Logger } from "pino";
import { DeliveryWorker } from "../app/deliver-outbox.ts";
import { MediaWorker } from "../app/fetch-media.ts";
import { IntakeLoad } from "../app/intake-load.ts";
import type {
  BeginSend,
  ClaimRef,
  Clock,
  ConversationClaim,
  DeliveryFilter,
  DeliveryOutcome,
  DeliveryRecord,
  IngestRequest,
  IngestResult,
  MediaJob,
  MediaOutcome,
  Metrics,
  NewSend,
  SendOutcome,
  Store,
  StoredMessage,
} from "../app/ports.ts";
import { UserNames } from "../app/user-names.ts";
import type { TalkgateConfig } from "../config/config.ts";
import type { RetryPolicy } from "../core/retry-policy.ts";
import { LineClient } from "../line/line-client.ts";
import { DiskMediaFiles } from "../media/disk-media-files.ts";
import { HttpPartnerTransport } from "../partner/http-partner-transport.ts";

/** How long deliveries keep making way for intake after it was last busy (see delivery.intakeBusyAt). */
const INTAKE_BUSY_HOLD_MS = 1_000;

export interface BackendDeps {
  store: Store;
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
  readonly #load: IntakeLoad;
  readonly #line: LineClient;
  readonly #files: DiskMediaFiles;
  readonly #names: UserNames;
  readonly #transport: HttpPartnerTransport;
  readonly #delivery: DeliveryWorker;
  readonly #media: MediaWorker;

  constructor(config: TalkgateConfig, deps: BackendDeps) {
    const { store, logger, metrics, clock } = deps;
    this.#store = store;
    this.#logger = logger;
    this.#load = new IntakeLoad({ busyAt: config.delivery.intakeBusyAt, holdMs: INTAKE_BUSY_HOLD_MS, clock });
    this.#line = new LineClient(
      config.channels.flatMap((c) =>
        c.channelAccessToken ? [{ senderKey: c.senderKey, channelAccessToken: c.channelAccessToken }] : [],
      ),
      {
        ...config.line,
        contentTimeoutMs: config.media.timeoutMs,
        onCall: (endpoint, status) => metrics.lineCall(endpoint, status),
      },
    );
    // Downloads only: the HTTP side serves the files and takes uploads with its own DiskMediaFiles.
    this.#files = new DiskMediaFiles(config.mediaDir);
    this.#names = new UserNames(this.#line, clock, config.profiles);
    this.#transport = new HttpPartnerTransport(config.partners, {
      timeoutMs: config.delivery.timeoutMs,
      clock,
    });
    this.#delivery = new DeliveryWorker(
      {
        store,
        intake: this.#load,
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
      },
    );
    this.#media = new MediaWorker(
      {
        store,
        line: this.#line,
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
    this.#load.started();
    let result: IngestResult;
    try {
      result = await this.#store.ingest(request);
    } finally {
      this.#load.ended();
    }
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

  /** Stops the workers, letting the attempts in flight finish and be recorded. */
  async stopWorkers(): Promise<void> {
    await Promise.all([this.#delivery.stop(), this.#media.stop()]);
  }

  /** Stops the workers (see stopWorkers), then closes their connections and the store. */
  async close(): Promise<void> {
    await this.stopWorkers();
    await Promise.all([this.#transport.close(), this.#line.close()]);
    await this.#store.close();
  }

  // The rest goes to the store as it is.

  claimConversations(request: {
    owner: string;
    limit: number;
    batchSize: number;
    now: number;
    leaseMs: number;
  }): Promise<ConversationClaim[]> {
    return this.#store.claimConversations(request);
  }

  completeClaim(claim: ClaimRef, outcomes: DeliveryOutcome[]): Promise<void> {
    return this.#store.completeClaim(claim, outcomes);
  }

  listDeliveries(filter: DeliveryFilter, page: { after: number; limit: number }): Promise<DeliveryRecord[]> {
    return this.#store.listDeliveries(filter, page);
  }

  deliveryStats(): Promise<{
    pending: number;
    retrying: number;
    dead: number;
    oldestWaitingAt: number | null;
  }> {
    return this.#store.deliveryStats();
  }

  nextDueAt(): Promise<number | null> {
    return this.#store.nextDueAt();
  }

  claimMedia(request: { owner: string; limit: number; now: number; leaseMs: number }): Promise<MediaJob[]> {
    return this.#store.claimMedia(request);
  }

  finishMedia(job: MediaJob, outcome: MediaOutcome, now: number): Promise<boolean> {
    return this.#store.finishMedia(job, outcome, now);
  }

  nextMediaDueAt(): Promise<number | null> {
    return this.#store.nextMediaDueAt();
  }

  findMessage(senderKey: string, serialNumber: string): Promise<StoredMessage | null> {
    return this.#store.findMessage(senderKey, serialNumber);
  }

  beginSend(
    send: NewSend,
    now: number,
    options: { staleAfterMs: number; replyTokenMaxAgeMs: number },
  ): Promise<BeginSend> {
    return this.#store.beginSend(send, now, options);
  }

  claimReplyToken(
    senderKey: string,
    conversation: string,
    token: string,
    serialNumber: string,
  ): Promise<boolean> {
    return this.#store.claimReplyToken(senderKey, conversation, token, serialNumber);
  }

  notePush(senderKey: string, serialNumber: string): Promise<void> {
    return this.#store.notePush(senderKey, serialNumber);
  }

  getDirectoryEntry(
    senderKey: string,
    userId: string,
  ): Promise<{ e164: string | null; agreeType: number | null } | null> {
    return this.#store.getDirectoryEntry(senderKey, userId);
  }

  setDirectoryEntry(
    senderKey: string,
    userId: string,
    fields: { e164?: string | undefined; agreeType?: number | undefined },
    now: number,
  ): Promise<void> {
    return this.#store.setDirectoryEntry(senderKey, userId, fields, now);
  }

  finishSend(senderKey: string, serialNumber: string, outcome: SendOutcome, now: number): Promise<void> {
    return this.#store.finishSend(senderKey, serialNumber, outcome, now);
  }

  ping(): Promise<void> {
    return this.#store.ping();
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
