// Attachment jobs on PostgreSQL: leased with FOR UPDATE SKIP LOCKED by any instance; a lease that runs out is taken
// over (its due time is the lease's end).
import type { MediaJob, MediaJobs, Work } from "../../app/store.ts";
import type { MediaKind } from "../../core/attachment.ts";
import type { Pool } from "./connection.ts";
import { releaseGate } from "./event-log.ts";
import { notify } from "./tx.ts";

/** {@link MediaJobs} over a pool; `signal` tells this instance's workers at once (others hear the NOTIFY). */
export function postgresMediaJobs(pool: Pool, signal: (work: Work) => void): MediaJobs {
  return {
    async claimMedia({ owner, limit, now, leaseMs }): Promise<MediaJob[]> {
      const until = now + leaseMs;
      const rows = await pool<
        Array<{
          event_id: number;
          sender_key: string;
          message_id: string;
          kind: MediaKind;
          attempts: number;
          received_at: number;
        }>
      >`UPDATE media m SET lease_owner = ${owner}, lease_until = ${until}, next_attempt_at = ${until}
        FROM (SELECT event_id FROM media WHERE state = 'pending' AND next_attempt_at <= ${now}
              ORDER BY next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED) AS d,
          events e
        WHERE m.event_id = d.event_id AND e.id = m.event_id
        RETURNING m.event_id, m.sender_key, m.message_id, m.kind, m.attempts, e.received_at`;
      return rows.map((row) => ({
        eventId: row.event_id,
        owner,
        senderKey: row.sender_key,
        messageId: row.message_id,
        kind: row.kind,
        attempts: row.attempts,
        receivedAt: row.received_at,
      }));
    },

    async finishMedia(job, outcome, now): Promise<boolean> {
      const { counted, released } = await pool.begin(async (tx) => {
        const mine = tx`event_id = ${job.eventId} AND state = 'pending' AND lease_owner = ${job.owner}`;
        let changed: number;
        if (outcome.state === "stored") {
          const { contentType, size, sha256, path } = outcome;
          changed = (
            await tx`UPDATE media SET state = 'stored', content_type = ${contentType}, size = ${size},
                sha256 = ${sha256}, path = ${path}, updated_at = ${now}, attempts = attempts + 1,
                lease_owner = NULL, lease_until = NULL, last_error = NULL
              WHERE ${mine} RETURNING 1`
          ).length;
        } else if (outcome.state === "gone") {
          changed = (
            await tx`UPDATE media SET state = 'gone', gone_reason = ${outcome.reason}, updated_at = ${now},
                attempts = attempts + 1, lease_owner = NULL, lease_until = NULL
              WHERE ${mine} RETURNING 1`
          ).length;
        } else {
          changed = (
            await tx`UPDATE media SET next_attempt_at = ${outcome.nextAttemptAt}, attempts = attempts + 1,
                last_error = ${outcome.error}, updated_at = ${now}, lease_owner = NULL, lease_until = NULL
              WHERE ${mine} RETURNING 1`
          ).length;
        }
        // Its message, held back for it, may be relayed now.
        const released =
          changed > 0 && outcome.state !== "pending" && (await releaseGate(tx, job.eventId, now));
        if (released) await notify(tx, "delivery");
        return { counted: changed > 0, released };
      });
      if (released) signal("delivery");
      return counted;
    },

    async nextMediaDueAt(): Promise<number | null> {
      const [row] = await pool<Array<{ next: number | null }>>`
        SELECT min(next_attempt_at) AS next FROM media WHERE state = 'pending'`;
      return row?.next ?? null;
    },
  };
}
