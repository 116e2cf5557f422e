// When each conversation of the outbox is due and who holds its lease, kept in memory by the one process that
// owns the SQLite file (rebuilt from the waiting deliveries when it opens), so that claims write nothing.

/** A conversation of one channel. */
export interface ConversationRef {
  senderKey: string;
  conversation: string;
}

interface Entry extends ConversationRef {
  /** Look at the head no later than this; null: nothing waits. While leased: the lease's end. */
  dueAt: number | null;
  lease: { owner: string; until: number } | null;
  /** The earliest wake-up while leased: the release makes the conversation due by then. */
  wokenAt: number | null;
  /** Position in the heap of due entries, -1 when not due. */
  index: number;
}

/**
 * The due times and leases of the outbox's conversations. A leased conversation is due again when its lease
 * ends, so that one whose holder died is taken up again; a wake-up for it waits for the release, as work
 * that came after its holder last looked.
 */
export class ConversationSchedule {
  readonly #entries = new Map<string, Entry>();
  /** The entries with a due time, as a binary min-heap on dueAt. */
  readonly #heap: Entry[] = [];

  /**
   * There may be work for the conversation from `at` on: it is due then at the latest, or, while leased,
   * once released.
   */
  wake(ref: ConversationRef, at: number): void {
    const k = key(ref);
    let entry = this.#entries.get(k);
    if (!entry) {
      const { senderKey, conversation } = ref;
      entry = { senderKey, conversation, dueAt: null, lease: null, wokenAt: null, index: -1 };
      this.#entries.set(k, entry);
    }
    if (entry.lease !== null) entry.wokenAt = Math.min(entry.wokenAt ?? at, at);
    else if (entry.dueAt === null || at < entry.dueAt) this.#setDue(entry, at);
  }

  /**
   * Leases to `owner` until `until` up to `limit` conversations due at `now` that no one holds (a lease
   * that has run out no longer counts), earliest first.
   */
  lease(now: number, limit: number, owner: string, until: number): ConversationRef[] {
    const leased: ConversationRef[] = [];
    while (leased.length < limit) {
      const entry = this.#heap[0];
      if (!entry || due(entry) > now) break;
      entry.lease = { owner, until };
      entry.wokenAt = null; // the holder reads the conversation after this
      this.#setDue(entry, until);
      leased.push({ senderKey: entry.senderKey, conversation: entry.conversation });
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
    this.#setDue(entry, next);
    if (next === null) this.#entries.delete(k);
  }

  /** The earliest due time (a lease's end included), or null when nothing waits. */
  nextDueAt(): number | null {
    return this.#heap[0]?.dueAt ?? null;
  }

  #setDue(entry: Entry, at: number | null): void {
    const heap = this.#heap;
    entry.dueAt = at;
    if (at === null) {
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
const due = (entry: Entry) => entry.dueAt ?? Infinity;
