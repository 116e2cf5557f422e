// When a partner endpoint keeps failing, stop hammering it: pause its deliveries, probe with one, resume on success.

export interface PausePolicy {
  /** Consecutive failed attempts (across all conversations) that pause the partner. */
  failuresToPause: number;
  /** The first pause; each failed probe doubles it. */
  initialPauseMs: number;
  maxPauseMs: number;
}

/** What a partner's deliveries are doing: as `/metrics` and the deliveries API show it. */
export type PartnerState =
  | { state: "delivering" }
  | { state: "paused"; until: number }
  /** The pause is over: one delivery (the probe) goes, the others wait for its answer. */
  | { state: "probing" };

export type Admission = { send: true; probe: boolean } | { send: false };

/**
 * One partner's circuit. Closed, it counts consecutive failures; at the threshold it opens once: the
 * partner is paused. Attempts already under way when it opened end as they end; a failure among them
 * changes nothing (it is the same outage), a success closes the circuit. When the pause is over, one
 * attempt goes as the probe: its success closes the circuit, its failure pauses again for twice as long.
 */
export class PartnerHealth {
  readonly #policy: PausePolicy;
  #failures = 0;
  /** Pauses since the circuit last closed; 0 while closed. */
  #pauses = 0;
  #pausedUntil = 0;
  #probeOut = false;

  constructor(policy: PausePolicy) {
    this.#policy = policy;
  }

  /** Whether an attempt may go now; after a pause, the first one asked is the probe. */
  admit(now: number): Admission {
    if (this.#pauses === 0) return { send: true, probe: false };
    if (now < this.#pausedUntil || this.#probeOut) return { send: false };
    this.#probeOut = true;
    return { send: true, probe: true };
  }

  /**
   * Records an attempt's result (`probe`: it was admitted as the probe). Answers what changed: paused
   * until a time, resumed, or null.
   */
  record(ok: boolean, now: number, probe: boolean): { pausedUntil: number } | { resumed: true } | null {
    if (probe) this.#probeOut = false;
    if (ok) {
      const resumed = this.#pauses > 0;
      this.#failures = 0;
      this.#pauses = 0;
      return resumed ? { resumed: true } : null;
    }
    if (this.#pauses > 0 && !probe) return null;
    this.#failures++;
    if (this.#pauses === 0 && this.#failures < this.#policy.failuresToPause) return null;
    const pause = Math.min(
      this.#policy.maxPauseMs,
      this.#policy.initialPauseMs * 2 ** Math.min(this.#pauses, 30),
    );
    this.#pauses++;
    this.#pausedUntil = now + pause;
    return { pausedUntil: this.#pausedUntil };
  }

  /** The probe admitted last never went out (talkgate failed, not the partner): another may go. */
  abandonProbe(): void {
    this.#probeOut = false;
  }

  /** Where the partner stands at `now`. */
  state(now: number): PartnerState {
    if (this.#pauses === 0) return { state: "delivering" };
    if (now < this.#pausedUntil) return { state: "paused", until: this.#pausedUntil };
    return { state: "probing" };
  }

  /**
   * How many of its conversations may be held at once now: `full` while delivering, none while paused,
   * one while probing (the probe's).
   */
  slots(now: number, full: number): number {
    const { state } = this.state(now);
    return state === "delivering" ? full : state === "paused" ? 0 : 1;
  }
}
