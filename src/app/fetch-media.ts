// Use case: fetch every attachment from LINE as soon as it is stored, before LINE deletes it (SPEC §5).
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { afterFailure, type RetryPolicy } from "../core/retry-policy.ts";
import type { Clock, LineApi, MediaFiles, Metrics } from "./ports.ts";
import type { MediaJob, MediaJobs, MediaOutcome } from "./store.ts";
import { WorkLoop } from "./work-loop.ts";

export interface MediaOptions {
  /** Downloads at the same time. */
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  /** Retries of failed or not-yet-ready downloads; past `maxAgeMs` the attachment is given up as gone. */
  retry: RetryPolicy;
  /** Free disk space below which nothing is downloaded (it is kept for incoming webhooks). */
  minFreeBytes: number;
}

export interface MediaDeps {
  jobs: MediaJobs;
  line: LineApi;
  files: MediaFiles;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** Downloads attachments in the background: streamed to disk, retried, survives restarts. */
export class MediaWorker {
  readonly #deps: MediaDeps;
  readonly #options: MediaOptions;
  readonly #loop: WorkLoop<MediaJob>;

  constructor(deps: MediaDeps, options: MediaOptions) {
    this.#deps = deps;
    this.#options = options;
    const owner = `media-${randomUUID()}`;
    this.#loop = new WorkLoop({
      name: "media",
      concurrency: options.concurrency,
      pollMs: options.pollMs,
      clock: deps.clock,
      logger: deps.logger,
      claim: (limit) =>
        deps.jobs.claimMedia({ owner, limit, now: deps.clock.now(), leaseMs: options.leaseMs }),
      process: (job) => this.#fetch(job),
      nextDueAt: () => deps.jobs.nextMediaDueAt(),
    });
  }

  start(): void {
    this.#loop.start();
  }

  /** Tells the worker there may be new attachments (called after intake commits). */
  wake(): void {
    this.#loop.wake();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #fetch(job: MediaJob): Promise<void> {
    const { jobs, files, clock, logger } = this.#deps;
    const outcome = await this.#attempt(job);
    const log = {
      sender_key: job.senderKey,
      message_id: job.messageId,
      kind: job.kind,
      attempt: job.attempts + 1,
    };
    const wanted = await jobs.finishMedia(job, outcome, clock.now());
    this.#deps.metrics.mediaDownload(outcome.state === "pending" ? "retry" : outcome.state);
    if (outcome.state === "stored") {
      if (!wanted) await files.remove(outcome.path); // unsent meanwhile, or taken over by another worker
      logger.info({ ...log, size: outcome.size, kept: wanted }, "media:stored");
    } else if (outcome.state === "gone") {
      logger.warn({ ...log, reason: outcome.reason }, "media:gone");
    } else {
      logger.warn({ ...log, error: outcome.error, retry_at: outcome.nextAttemptAt }, "media:attempt:failed");
    }
  }

  async #attempt(job: MediaJob): Promise<MediaOutcome> {
    const { line, files } = this.#deps;
    // Downloads stop before the disk is full, so that webhooks can still be stored; LINE is asked later.
    const free = await files.freeBytes().catch(() => Number.POSITIVE_INFINITY);
    if (free < this.#options.minFreeBytes)
      return this.#retry(job, "not enough free disk space (below media.minFreeBytes)");
    const content = await line.getContent(job.senderKey, job.messageId);
    switch (content.kind) {
      case "ready": {
        // Each attempt writes its own file: one whose lease ran out can never remove another's.
        const path = `${job.senderKey}/${job.eventId}-${randomUUID().slice(0, 8)}`;
        try {
          const saved = await files.save(path, content.body, content.length, { release: content.release });
          return { state: "stored", contentType: content.contentType, path, ...saved };
        } catch (error) {
          return this.#retry(
            job,
            `download failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
      case "gone":
        return { state: "gone", reason: `LINE answered ${content.status}: the content no longer exists` };
      case "not-ready": {
        // 202: a video or audio still being prepared. LINE says when it has failed for good.
        const transcoding = await line.getTranscoding(job.senderKey, job.messageId);
        if (transcoding.ok && transcoding.value === "failed")
          return { state: "gone", reason: "LINE could not prepare the content" };
        if (transcoding.ok && transcoding.value === "succeeded") {
          return { state: "pending", nextAttemptAt: this.#deps.clock.now(), error: "ready now" };
        }
        return this.#retry(job, "not ready yet (202)");
      }
      case "failed":
        return this.#retry(job, content.reason);
    }
  }

  #retry(job: MediaJob, error: string): MediaOutcome {
    const now = this.#deps.clock.now();
    const next = afterFailure(
      { attempts: job.attempts + 1, createdAt: job.receivedAt },
      now,
      this.#options.retry,
    );
    if (next.state === "dead")
      return { state: "gone", reason: `given up after ${job.attempts + 1} attempts: ${error}` };
    return { state: "pending", nextAttemptAt: next.nextAttemptAt, error };
  }
}
