// How busy webhook intake is, for the work that makes way for it (deliveries slow down while LINE waits).
import type { Clock } from "./ports.ts";

/**
 * Counts the webhooks waiting for their events to be stored. Intake is busy once `busyAt` of them wait at
 * the same time, and stays so for `holdMs` after it last was: commits answer whole groups of webhooks at
 * once, so the count dips to zero between groups even at full load.
 */
export class IntakeLoad {
  readonly #busyAt: number;
  readonly #holdMs: number;
  readonly #clock: Clock;
  #waiting = 0;
  #lastBusyAt = Number.NEGATIVE_INFINITY;

  constructor(options: { busyAt: number; holdMs: number; clock: Clock }) {
    this.#busyAt = options.busyAt;
    this.#holdMs = options.holdMs;
    this.#clock = options.clock;
  }

  /** A webhook starts waiting for its events to be stored. */
  started(): void {
    if (++this.#waiting >= this.#busyAt) this.#lastBusyAt = this.#clock.now();
  }

  /** A webhook's events are stored, or failed to be. */
  ended(): void {
    this.#waiting--;
  }

  get waiting(): number {
    return this.#waiting;
  }

  get busy(): boolean {
    return this.#clock.now() - this.#lastBusyAt < this.#holdMs;
  }
}
