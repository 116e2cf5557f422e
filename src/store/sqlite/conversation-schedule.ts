// When each conversation of the outbox is due and who holds its lease, kept in memory by the one process that
// owns the SQLite file (rebuilt from the waiting deliveries when it opens), so that claims write nothing.
import { fairShares } from "../../core/fair-share.ts";

/** A conversation of one channel. */
export interface ConversationRef {
  senderKey: string;
  conversation: string;
}

/** How many conversations of a partner may be held at once now. */
export type Slots = (partnerId: string) => number;

interface Entry extends ConversationRef {
  partnerId: string;
  /** Look at the head no later than this; null: nothing waits. While leased: the lease's end. */
  dueAt: number | null;
  lease: { owner: string; until: number } | null;
  /** The earliest wake-up while leased: the release makes the conversation due by then. */
  wokenAt: number | null;
  /** Position in its partner's heap of due entries, -1 when not due. */
  index: number;
}

/** One partner's conversations: those with a due time (a heap on it), and those held. */
class PartnerQueue {
  readonly heap = new DueHeap();
  readonly held = new Set<Entry>();

  /** Held conversations whose lease has not run out. */
  heldAt(now: number): number {
    let count = 0;
    for (const entry of this.held) if (entry.lease && entry.lease.until > now) count++;
    return count;
  }

  get idle(): boolean {
    return this.heap.size === 0 && this.held.size === 0;
  }
}

/**
 * The due times and leases of the outbox's conversations, by partner. A leased conversation is due again
 * when its lease ends, so that one whose holder died is taken up again; a wake-up for it waits for the
 * release, as work that came after its holder last looked. Claims share the partners' slots fairly
 * (core/fair-share.ts).
 */
export class ConversationSchedule {
  readonly #entries = new Map<string, Entry>();
  readonly #partners = new Map<string, PartnerQueue>();

  /**
   * There may be work for the conversation (of `partnerId`) from `at` on: it is due then at the latest,
   * or, while leased, once released.
   */
  wake(ref: ConversationRef, partnerId: string, at: number): void {
    const k = key(ref);
    let entry = this.#entries.get(k);
    if (!entry) {
      const { senderKey, conversation } = ref;
      entry = { senderKey, conversation, partnerId, dueAt: null, lease: null, wokenAt: null, index: -1 };
      this.#entries.set(k, entry);
    } else if (entry.partnerId !== partnerId) {
      this.#move(entry, partnerId);
    }
    if (entry.lease !== null) entry.wokenAt = Math.min(entry.wokenAt ?? at, at);
    else if (entry.dueAt === null || at < entry.dueAt) this.#setDue(entry, at);
  }

  /**
   * Leases to `owner` until `until` up to `total` conversations due at `now` that no one holds (a lease
   * that has run out no longer counts): of each partner at most its `slots` held at once, the free
   * slots going to the partners holding the fewest; within a partner, earliest due first.
   */
  lease(now: number, total: number, slots: Slots, owner: string, until: number): ConversationRef[] {
    const candidates = [];
    for (const [partnerId, queue] of this.#partners) {
      const free = slots(partnerId);
      if (free <= 0 || queue.heap.size === 0) continue;
      const held = queue.heldAt(now);
      if (held >= free) continue;
      const due = queue.heap.countDue(now, total);
      if (due > 0) candidates.push({ partnerId, held, slots: free, due, head: queue.heap.head });
    }
    // Ties go to the partner whose head has waited longest.
    candidates.sort((a, b) => due(a.head) - due(b.head));
    const leased: ConversationRef[] = [];
    for (const [partnerId, count] of fairShares(candidates, total)) {
      const queue = this.#partners.get(partnerId) as PartnerQueue;
      for (let n = 0; n < count; n++) {
        const entry = queue.heap.head as Entry;
        entry.lease = { owner, until };
        entry.wokenAt = null; // the holder reads the conversation after this
        queue.held.add(entry);
        this.#setDue(entry, until);
        leased.push({ senderKey: entry.senderKey, conversation: entry.conversation });
      }
    }
    return leased;
  }

  /**
   * Ends `owner`'s lease (nothing happens if another holds it now): due again at `nextAt` (null: idle), or
   * sooner if woken meanwhile.
   */
  release(ref: ConversationRef, owner: string, nextAt: number | null): void {
    const k = key(ref);
    const entry = this.#entries.get(k);
    if (entry?.lease?.owner !== owner) return;
    const next = entry.wokenAt === null ? nextAt : Math.min(nextAt ?? entry.wokenAt, entry.wokenAt);
    entry.lease = null;
    entry.wokenAt = null;
    this.#queue(entry.partnerId).held.delete(entry);
    this.#setDue(entry, next);
    if (next === null) {
      this.#entries.delete(k);
      if (this.#queue(entry.partnerId).idle) this.#partners.delete(entry.partnerId);
    }
  }

  /**
   * When a lease may next be taken under `slots` (a lease's end included), or null when nothing waits
   * that may be taken: a partner with no slot is left out, and one whose slots are all held counts
   * only from its first lease's end (its own releases wake the worker sooner).
   */
  nextDueAt(now: number, slots: Slots): number | null {
    let next: number | null = null;
    for (const [partnerId, queue] of this.#partners) {
      const free = slots(partnerId);
      if (free <= 0) continue;
      let at: number | null = null;
      if (queue.heldAt(now) < free) at = queue.heap.head?.dueAt ?? null;
      else for (const entry of queue.held) at = Math.min(at ?? Infinity, entry.lease?.until ?? Infinity);
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
  }

  /** Conversations of `partnerId` held at `now`. */
  held(partnerId: string, now: number): number {
    return this.#partners.get(partnerId)?.heldAt(now) ?? 0;
  }

  #queue(partnerId: string): PartnerQueue {
    let queue = this.#partners.get(partnerId);
    if (!queue) {
      queue = new PartnerQueue();
      this.#partners.set(partnerId, queue);
    }
    return queue;
  }

  #setDue(entry: Entry, at: number | null): void {
    entry.dueAt = at;
    this.#queue(entry.partnerId).heap.update(entry);
  }

  // A conversation whose events now go to another partner (the channel was given to it) moves with them.
  #move(entry: Entry, partnerId: string): void {
    const from = this.#queue(entry.partnerId);
    const dueAt = entry.dueAt;
    entry.dueAt = null;
    from.heap.update(entry);
    const held = from.held.delete(entry);
    if (from.idle) this.#partners.delete(entry.partnerId);
    entry.partnerId = partnerId;
    if (held) this.#queue(partnerId).held.add(entry);
    this.#setDue(entry, dueAt);
  }
}

/** Entries with a due time, as a binary min-heap on dueAt (entries keep their index). */
class DueHeap {
  readonly #heap: Entry[] = [];

  get size(): number {
    return this.#heap.length;
  }

  get head(): Entry | undefined {
    return this.#heap[0];
  }

  /** Puts `entry` where its dueAt belongs, or takes it out when dueAt is null. */
  update(entry: Entry): void {
    const heap = this.#heap;
    if (entry.dueAt === null) {
      if (entry.index < 0) return;
      const last = heap.pop() as Entry;
      if (last !== entry) {
        this.#place(last, entry.index);
        this.#siftUp(last);
        this.#siftDown(last);
      }
      entry.index = -1;
      return;
    }
    if (entry.index < 0) {
      entry.index = heap.length;
      heap.push(entry);
    }
    this.#siftUp(entry);
    this.#siftDown(entry);
  }

  /** How many entries are due at `now`, counting no further than `max` (they sit at the heap's top). */
  countDue(now: number, max: number): number {
    let count = 0;
    const stack = this.#heap.length > 0 ? [0] : [];
    while (stack.length > 0 && count < max) {
      const i = stack.pop() as number;
      const entry = this.#heap[i];
      if (!entry || due(entry) > now) continue;
      count++;
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return count;
  }

  #siftUp(entry: Entry): void {
    while (entry.index > 0) {
      const parent = this.#heap[(entry.index - 1) >> 1] as Entry;
      if (due(parent) <= due(entry)) return;
      this.#swap(entry, parent);
    }
  }

  #siftDown(entry: Entry): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * entry.index + 1;
      if (left >= heap.length) return;
      const right = heap[left + 1];
      let child = heap[left] as Entry;
      if (right && due(right) < due(child)) child = right;
      if (due(child) >= due(entry)) return;
      this.#swap(entry, child);
    }
  }

  #swap(a: Entry, b: Entry): void {
    const i = a.index;
    this.#place(a, b.index);
    this.#place(b, i);
  }

  #place(entry: Entry, index: number): void {
    entry.index = index;
    this.#heap[index] = entry;
  }
}

const key = (ref: ConversationRef) => `${ref.senderKey}\n${ref.conversation}`;
const due = (entry: Entry | undefined) => entry?.dueAt ?? Infinity;
