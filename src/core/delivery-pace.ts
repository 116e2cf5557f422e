// How many deliveries may run at once: intake comes first (LINE waits 2 s for its answer), so deliveries back off
// when intake's commits slow down because the process is out of CPU, and come back as soon as they are fast again,
// sooner when the outbox waits.

export interface PaceOptions {
  /** Most deliveries at once (delivery.concurrency). */
  max: number;
  /** Intake's commit latency (the 90th percentile of a window) above which deliveries may back off. */
  targetMs: number;
  /** Length of one measuring window. */
  windowMs: number;
  /**
   * How busy the event loop was since the last call (0 to 1). Slow commits on a busy loop are CPU taken
   * from intake, which fewer deliveries give back; on an idle loop they are the disk's doing (an fsync
   * taking its time), which fewer deliveries would not change.
   */
  loopBusy(): number;
}

/** Event loop use above which slow commits are taken for a lack of CPU. */
export const BUSY_LOOP = 0.9;
/** Samples kept per window; more are dropped (a window of 100 ms at 10,000 webhooks/s is plenty). */
const MAX_SAMPLES = 1_024;

/**
 * Additive increase, multiplicative decrease, once per window: intake's commits slower than the target on a
 * busy event loop halve the limit (never below one delivery, so the outbox never stops); slow commits on an
 * idle loop keep it; otherwise it grows by an eighth of the maximum, or doubles while deliveries wait in the
 * outbox longer than the target themselves.
 */
export class DeliveryPace {
  readonly #options: PaceOptions;
  #limit: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #commits: number[] = [];
  #longestWait = 0;

  constructor(options: PaceOptions) {
    this.#options = options;
    this.#limit = options.max;
  }

  /** An intake commit (a webhook's events, from the store call to durable) took `ms`. */
  observeCommit(ms: number): void {
    if (this.#commits.length < MAX_SAMPLES) this.#commits.push(ms);
  }

  /** A delivery waited `ms` in the outbox from its due time to its attempt. */
  observeWait(ms: number): void {
    this.#longestWait = Math.max(this.#longestWait, ms);
  }

  /** The limit at `now`, adjusted at the end of each window. */
  limit(now: number): number {
    if (now - this.#windowStart < this.#options.windowMs) return this.#limit;
    const { max, targetMs } = this.#options;
    const busy = this.#options.loopBusy();
    const slow = percentile90(this.#commits) > targetMs;
    if (slow && busy > BUSY_LOOP) this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    else if (slow) {
      // The disk, not the deliveries: keep the limit.
    } else if (this.#longestWait > targetMs) this.#limit = Math.min(max, this.#limit * 2);
    else this.#limit = Math.min(max, this.#limit + Math.ceil(max / 8));
    this.#windowStart = now;
    this.#commits = [];
    this.#longestWait = 0;
    return this.#limit;
  }
}

function percentile90(samples: number[]): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length * 0.9) - 1] as number;
}
