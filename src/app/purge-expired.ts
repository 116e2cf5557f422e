// Retention (SPEC §12): every retention.intervalMs, what is older than its period is deleted — events with their
// deliveries and attachments, old attachments, sends, audit entries — one small batch after another, so that no
// lock is held for long; then the files of the deleted attachments are removed.
import type { Logger } from "pino";
import { type RetentionPolicy, retentionCutoffs } from "../core/retention.ts";
import type { Clock, MediaFiles } from "./ports.ts";
import type { PurgeBatch, Retention } from "./store.ts";

export interface PurgeOptions extends RetentionPolicy {
  /** How often a purge runs (the first at start). */
  intervalMs: number;
  /** The most rows of a kind one batch deletes. */
  batchSize: number;
}

/** What one purge deleted. */
export type PurgeTotals = Pick<PurgeBatch, "events" | "attachments" | "sends" | "audit">;

const KINDS = ["events", "attachments", "sends", "audit"] as const;

export interface PurgeDeps {
  store: Pick<Retention, "purgeBatch">;
  files: Pick<MediaFiles, "remove">;
  clock: Clock;
  logger: Pick<Logger, "info" | "error">;
  /** Told how many rows of a kind went. */
  onPurged?: (kind: keyof PurgeTotals, count: number) => void;
}

/** Runs the purge at start and every `intervalMs`, one at a time. */
export class PurgeExpired {
  readonly #deps: PurgeDeps;
  readonly #options: PurgeOptions;
  #timer: NodeJS.Timeout | undefined;
  /** The purge under way, if any: a tick while one runs is skipped (no pile-up of slow purges). */
  #running: Promise<unknown> | null = null;
  #closed = false;

  constructor(deps: PurgeDeps, options: PurgeOptions) {
    this.#deps = deps;
    this.#options = options;
  }

  start(): void {
    const tick = () => {
      this.#running ??= this.run().finally(() => {
        this.#running = null;
      });
    };
    tick();
    this.#timer = setInterval(tick, this.#options.intervalMs).unref();
  }

  /** Deletes what is old enough now, batch after batch; a failed batch ends this purge (the next one goes on). */
  async run(): Promise<PurgeTotals> {
    const { store, files, clock, logger, onPurged } = this.#deps;
    const totals: PurgeTotals = { events: 0, attachments: 0, sends: 0, audit: 0 };
    const startedAt = Date.now();
    try {
      const cutoffs = retentionCutoffs(clock.now(), this.#options);
      for (let after = 0; !this.#closed; ) {
        const batch = await store.purgeBatch({
          ...cutoffs,
          after,
          limit: this.#options.batchSize,
          now: clock.now(),
        });
        for (const kind of KINDS) {
          totals[kind] += batch[kind];
          if (batch[kind] > 0) onPurged?.(kind, batch[kind]);
        }
        await Promise.all(
          batch.files.map((path) =>
            files
              .remove(path)
              .catch((error: unknown) => logger.error({ err: error }, "retention:remove:failed")),
          ),
        );
        if (batch.done) break;
        after = batch.next;
        // Intake and deliveries go between two batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      logger.error({ err: error, ...totals }, "retention:purge:failed");
      return totals;
    }
    if (KINDS.some((kind) => totals[kind] > 0))
      logger.info({ ...totals, ms: Date.now() - startedAt }, "retention:purged");
    return totals;
  }

  /** Stops: a purge under way ends after its current batch. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
