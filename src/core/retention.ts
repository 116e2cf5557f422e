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
  let next = after;
  for (const event of batch) {
    if (event.receivedAt >= eventsBefore) return { ids, files, next, done: true };
    next = event.id;
    if (event.delivery === "pending" || event.delivery === "retrying") continue;
    ids.push(event.id);
    if (event.mediaState !== "gone" && event.path !== null) files.push(event.path);
  }
  return { ids, files, next, done: batch.length < limit };
}
