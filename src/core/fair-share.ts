// How free delivery slots are shared among partners: the least busy first, each within its own cap, so that one
// partner's backlog or slowness never takes the slots another needs.

/** A partner with due conversations, as a claim sees it. */
export interface ShareCandidate {
  partnerId: string;
  /** Its conversations held (leased) now, by any worker. */
  held: number;
  /** The most it may hold at once now (its share; 0 while paused, 1 while probing). */
  slots: number;
  /** Its conversations due now and not held (only the first few need counting: at most `total`). */
  due: number;
}

/**
 * How many conversations of each partner to claim, `total` at most: one at a time to the partner holding
 * the fewest (ties: the first listed, so list them by how long their head has waited), never past a
 * partner's slots or due conversations. Partners given nothing are left out.
 */
export function fairShares(candidates: readonly ShareCandidate[], total: number): Map<string, number> {
  const shares = new Map<string, number>();
  const load = candidates.map((c) => ({ ...c, given: 0 }));
  for (let n = 0; n < total; n++) {
    let best: (typeof load)[number] | undefined;
    for (const c of load) {
      if (c.given >= c.due || c.held + c.given >= c.slots) continue;
      if (!best || c.held + c.given < best.held + best.given) best = c;
    }
    if (!best) break;
    best.given++;
    shares.set(best.partnerId, best.given);
  }
  return shares;
}
