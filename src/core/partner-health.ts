// When a partner endpoint keeps failing, stop hammering it: pause its deliveries, probe with one, resume on success.

export interface PausePolicy {
  /** Consecutive failed attempts (across all conversations) that pause the partner. */
  failuresToPause: number;
  /** The first pause; each further pause without a success in between doubles it. */
  initialPauseMs: number;
  maxPauseMs: number;
}

export type Admission = { send: true; probe: boolean } | { send: false; retryAt: number };

/**
 * One partner's circuit: closed (sending), paused until a time, then one probe at a time until an
 * attempt succeeds. Failures while paused do not happen (nothing is sent); a failed probe pauses again,
 * for twice as long.
 */
export class PartnerHealth {
  readonly #policy: PausePolicy;
  #failures = 0;
  #pauses = 0;
  #pausedUntil = 0;
  #probing = false;

  constructor(policy: PausePolicy) {
    this.#policy = policy;
  }

  /** Whether an attempt may go now; while paused or probing, when to look again. */
  admit(now: number): Admission {
    if (this.#pauses === 0) return { send: true, probe: false };
    if (now < this.#pausedUntil) return { send: false, retryAt: this.#pausedUntil };
    if (this.#probing) return { send: false, retryAt: now + this.#policy.initialPauseMs };
    this.#probing = true;
    return { send: true, probe: true };
  }

  /** Records an attempt's result; answers the time the partner is paused until when this pauses it. */
  record(ok: boolean, now: number): number | null {
    this.#probing = false;
    if (ok) {
      this.#failures = 0;
      this.#pauses = 0;
      return null;
    }
    this.#failures++;
    if (this.#pauses === 0 && this.#failures < this.#policy.failuresToPause) return null;
    const pause = Math.min(
      this.#policy.maxPauseMs,
      this.#policy.initialPauseMs * 2 ** Math.min(this.#pauses, 30),
    );
    this.#pauses++;
    this.#pausedUntil = now + pause;
    return this.#pausedUntil;
  }

  get paused(): boolean {
    return this.#pauses > 0;
  }
}
