// Retention of personal data (SPEC §12): how long each kind is kept, and which old events a purge may delete.
// talkgate is a relay, not an archive: what is older than its period goes, except what is still to be delivered.

const DAY_MS = 86_400_000;

/** Why an attachment deleted by retention is gone, as its -410 answer says. */
export const RETENTION_GONE_REASON = "deleted after retention.mediaDays";
/** Why an erased user's attachment is gone. */
export const ERASED_GONE_REASON = "erased at the user's request";

/** retention.* of the configuration, in days. */
export interface RetentionPolicy {
  eventsDays: number;
  mediaDays: number;
  auditDays: number;
}

/** What is older than these times (ms) is deleted. */
export interface RetentionCutoffs {
  eventsBefore: number;
  mediaBefore: number;
  auditBefore: number;
}

export function retentionCutoffs(now: number, policy: RetentionPolicy): RetentionCutoffs {
  return {
    eventsBefore: now - policy.eventsDays * DAY_MS,
    mediaBefore: now - policy.mediaDays * DAY_MS,
    auditBefore: now - policy.auditDays * DAY_MS,
  };
}

/** A stored event as a purge sees it, in id order. */
export interface AgedEvent {
  id: number;
  receivedAt: number;
  /** Its delivery's state; null: not forwarded. */
  delivery: string | null;
  /** Its attachment's state and file; null: none. */
  mediaState: string | null;
  path: string | null;
}

/** Which of a batch of events (by id, oldest first) go, and where the next batch starts. */
export interface ExpiredEvents {
  ids: number[];
  /** When the newest of them was received; null: none. */
  newest: number | null;
  /** Files of their attachments still stored. */
  files: string[];
  next: number;
  /** No later event is old enough. */
  done: boolean;
}

/**
 * The events received before `eventsBefore` whose delivery does not wait (an undelivered event stays until it is
 * delivered or dead). Events are looked at in id order, which is receive order: the first one young enough ends
 * the purge.
 */
export function expiredEvents(
  batch: readonly AgedEvent[],
  eventsBefore: number,
  after: number,
  limit: number,
): ExpiredEvents {
  const ids: number[] = [];
  const files: string[] = [];
  let newest: number | null = null;
  let next = after;
  for (const event of batch) {
    if (event.receivedAt >= eventsBefore) return { ids, newest, files, next, done: true };
    next = event.id;
    if (event.delivery === "pending" || event.delivery === "retrying") continue;
    ids.push(event.id);
    newest = Math.max(newest ?? event.receivedAt, event.receivedAt);
    if (event.mediaState !== "gone" && event.path !== null) files.push(event.path);
  }
  return { ids, newest, files, next, done: batch.length < limit };
}

/** What one retention batch (SPEC §12) deletes: each kind up to `limit` rows, older than its cutoff. */
export interface PurgeRequest {
  /**
   * Events received before this go, with their deliveries and attachments, unless their delivery still waits
   * (pending or retrying); partner sends made before it go too, unless under way.
   */
  eventsBefore: number;
  /** Attachments of events received before this go (the event stays; its content answers -410). */
  mediaBefore: number;
  /** Audit entries written before this go. */
  auditBefore: number;
  /** The events looked at are those after this id: 0, then the `next` of the batch before. */
  after: number;
  limit: number;
  now: number;
}

/** What a retention batch deleted. */
export interface PurgeBatch {
  events: number;
  attachments: number;
  sends: number;
  audit: number;
  /** The stored files of the deleted attachments: the caller removes them. */
  files: string[];
  /** The `after` of the next batch. */
  next: number;
  /** Nothing more is old enough: no next batch is needed. */
  done: boolean;
}

/** The UTC day (`YYYY-MM-DD`, as serial counters are kept) of the oldest counters still needed. */
export const oldestCounterDay = (eventsBefore: number): string =>
  new Date(eventsBefore).toISOString().slice(0, 10);

/** A batch's outcome from what each of its deletions took (at most `limit` rows each). */
export function purgeBatchOf(
  expired: ExpiredEvents,
  deleted: {
    attachments: ReadonlyArray<{ path: string | null }>;
    sends: number;
    counters: number;
    audit: number;
  },
  limit: number,
): PurgeBatch {
  const { attachments, sends, counters, audit } = deleted;
  return {
    events: expired.ids.length,
    attachments: attachments.length,
    sends,
    audit,
    files: [...expired.files, ...attachments.flatMap((a) => (a.path ? [a.path] : []))],
    next: expired.next,
    done: expired.done && Math.max(attachments.length, sends, counters, audit) < limit,
  };
}
