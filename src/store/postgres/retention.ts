// Retention and erasure on PostgreSQL (SPEC §12): each purge batch one short transaction; rows another instance's
// purge holds are skipped (SKIP LOCKED), so that every instance may purge at once. An erasure is one transaction.
import type { ErasedUser, PurgeBatch, PurgeRequest, Retention } from "../../app/store.ts";
import { scrubbed } from "../../core/event-record.ts";
import {
  type AgedEvent,
  ERASED_GONE_REASON,
  expiredEvents,
  oldestCounterDay,
  purgeBatchOf,
  RETENTION_GONE_REASON,
} from "../../core/retention.ts";
import type { Pool } from "./connection.ts";
import { json } from "./tx.ts";

/** {@link Retention} over a pool. */
export function postgresRetention(pool: Pool): Retention {
  return {
    purgeBatch: (request: PurgeRequest) =>
      pool.begin(async (tx): Promise<PurgeBatch> => {
        const { eventsBefore, mediaBefore, auditBefore, after, limit, now } = request;
        const batch = await tx<AgedEvent[]>`
          SELECT e.id, e.received_at AS "receivedAt", e.state AS delivery, m.state AS "mediaState", m.path
          FROM events e LEFT JOIN media m ON m.event_id = e.id
          WHERE e.id > ${after} ORDER BY e.id LIMIT ${limit} FOR UPDATE OF e SKIP LOCKED`;
        const expired = expiredEvents(batch, eventsBefore, after, limit);
        if (expired.ids.length > 0) {
          const ids = tx`SELECT jsonb_array_elements_text(${json(tx, expired.ids)}::jsonb)::bigint`;
          await tx`DELETE FROM media WHERE event_id IN (${ids})`;
          await tx`DELETE FROM events WHERE id IN (${ids})`;
          await tx`INSERT INTO retention_state (id, purged_through) VALUES (1, ${expired.newest})
            ON CONFLICT (id) DO UPDATE
            SET purged_through = greatest(retention_state.purged_through, excluded.purged_through)`;
        }
        const attachments = await tx<Array<{ path: string | null }>>`
          UPDATE media SET state = 'gone', gone_reason = ${RETENTION_GONE_REASON}, updated_at = ${now}, lease_owner = NULL,
            lease_until = NULL
          WHERE event_id IN (SELECT event_id FROM media m WHERE state <> 'gone' AND created_at < ${mediaBefore}
            AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = m.event_id AND e.state IN ('pending', 'retrying'))
            LIMIT ${limit} FOR UPDATE OF m SKIP LOCKED)
          RETURNING path`;
        const { length: sends } = await tx`
          DELETE FROM sends WHERE (sender_key, serial_number) IN (SELECT sender_key, serial_number FROM sends
            WHERE created_at < ${eventsBefore} AND state <> 'sending' LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          RETURNING 1`;
        const { length: counters } = await tx`
          DELETE FROM serial_counters WHERE (sender_key, prefix, day) IN (SELECT sender_key, prefix, day
            FROM serial_counters WHERE day < ${oldestCounterDay(eventsBefore)} LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          RETURNING 1`;
        const { length: audit } = await tx`
          DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ${auditBefore} ORDER BY at
            LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          RETURNING 1`;
        return purgeBatchOf(expired, { attachments, sends, counters, audit }, limit);
      }),

    async purgedThrough() {
      const [row] = await pool<
        Array<{ at: number }>
      >`SELECT purged_through AS at FROM retention_state WHERE id = 1`;
      return row?.at ?? null;
    },

    eraseUser: (senderKey: string, userId: string, now: number) =>
      pool.begin(async (tx): Promise<ErasedUser> => {
        const events = await tx<Array<{ id: number; body: string }>>`
          SELECT id, body FROM events
          WHERE user_id = ${userId} AND sender_key = ${senderKey} AND erased_at IS NULL FOR UPDATE`;
        const files: string[] = [];
        let attachments = 0;
        for (const { id, body } of events) {
          await tx`UPDATE events SET body = ${scrubbed(body)}, erased_at = ${now} WHERE id = ${id}`;
          const [media] = await tx<Array<{ path: string | null }>>`
            UPDATE media SET state = 'gone', gone_reason = ${ERASED_GONE_REASON}, updated_at = ${now},
              lease_owner = NULL, lease_until = NULL
            WHERE event_id = ${id} AND state <> 'gone' RETURNING path`;
          if (media) attachments++;
          if (media?.path) files.push(media.path);
        }
        const { length: sends } = await tx`
          UPDATE sends SET messages = '[]'
          WHERE sender_key = ${senderKey} AND conversation = ${`user:${userId}`} AND state <> 'sending' AND messages <> '[]'
          RETURNING 1`;
        const directory = await tx`
          DELETE FROM user_directory WHERE sender_key = ${senderKey} AND user_id = ${userId} RETURNING 1`;
        return { events: events.length, attachments, sends, directory: directory.length > 0, files };
      }),
  };
}
