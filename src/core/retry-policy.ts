// When a failed delivery is tried again, and when it is given up as dead (SPEC §4).

export interface RetryPolicy {
  /** Delay before the first retry; it doubles with each further failure. */
  initialDelayMs: number;
  /** Cap on one delay. */
  maxDelayMs: number;
  /** Age (from when the event was received) after which a failing delivery is dead. */
  maxAgeMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialDelayMs: 1_000,
  maxDelayMs: 10 * 60_000,
  maxAgeMs: 24 * 60 * 60_000,
};

/**
 * The delay after the `attempts`-th failure: exponential, capped, with "equal jitter" (between half
 * and all of it) so that many conversations failing together do not retry in lockstep.
 */
export function retryDelay(
  attempts: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type AfterFailure = { state: "retrying"; nextAttemptAt: number } | { state: "dead" };

/**
 * Decides what follows the `attempts`-th failed attempt: another try later, or dead once the event is
 * older than the policy allows. The last try is made right at that age, never skipped.
 */
export function afterFailure(
  delivery: { attempts: number; createdAt: number },
  now: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): AfterFailure {
  const deadline = delivery.createdAt + policy.maxAgeMs;
  if (now >= deadline) return { state: "dead" };
  return {
    state: "retrying",
    nextAttemptAt: Math.min(now + retryDelay(delivery.attempts, policy, random), deadline),
  };
}

/**
 * Time kept free at the end of a delivery lease, for recording the outcomes before another worker may take
 * the conversation over: an attempt starts only if it ends (at its deadline at the latest) this long before.
 */
export const LEASE_MARGIN_MS = 1_000;

/** The shortest delivery lease for an attempt deadline: twice the deadline, and room for one attempt and the margin twice. */
export function shortestLeaseMs(timeoutMs: number): number {
  return Math.max(2 * timeoutMs, timeoutMs + 2 * LEASE_MARGIN_MS);
}
