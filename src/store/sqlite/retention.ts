// Retention and erasure in the SQLite file (SPEC §12): each purge batch one short write transaction, at most
// `limit` rows of a kind; an erasure one transaction.
import type { DatabaseSync } from "node:sqlite";
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
import type { GroupCommit } from "./group-commit.ts";

const WAITING = "state IN ('pending', 'retrying')";

/** {@link Retention} over the file; writes go through the store's group commit. */
export function sqliteRetention(db: DatabaseSync, writes: GroupCommit): Retention {
  const sql = {
    events: db.prepare(
      `SELECT e.id, e.received_at AS receivedAt, d.state AS delivery, m.state AS mediaState, m.path
       FROM events e LEFT JOIN deliveries d ON d.event_id = e.id LEFT JOIN media m ON m.event_id = e.id
       WHERE e.id > ? ORDER BY e.id LIMIT ?`,
    ),
    deleteDelivery: db.prepare("DELETE FROM deliveries WHERE event_id = ?"),
    deleteMedia: db.prepare("DELETE FROM media WHERE event_id = ?"),
    deleteEvent: db.prepare("DELETE FROM events WHERE id = ?"),
    markPurged: db.prepare(
      `INSERT INTO retention_state (id, purged_through) VALUES (1, ?1)
       ON CONFLICT (id) DO UPDATE SET purged_through = max(purged_through, excluded.purged_through)`,
    ),
    purgedThrough: db.prepare("SELECT purged_through AS at FROM retention_state WHERE id = 1"),
    attachments: db.prepare(
      `UPDATE media SET state = 'gone', gone_reason = ?4, updated_at = ?1, lease_owner = NULL, lease_until = NULL
       WHERE event_id IN (SELECT event_id FROM media m WHERE state <> 'gone' AND created_at < ?2
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = m.event_id AND d.${WAITING})
         LIMIT ?3)
       RETURNING path`,
    ),
    sends: db.prepare(
      `DELETE FROM sends WHERE (sender_key, serial_number) IN
         (SELECT sender_key, serial_number FROM sends WHERE created_at < ? AND state <> 'sending' LIMIT ?)`,
    ),
    counters: db.prepare(
      `DELETE FROM serial_counters WHERE (sender_key, prefix, day) IN
         (SELECT sender_key, prefix, day FROM serial_counters WHERE day < ? LIMIT ?)`,
    ),
    audit: db.prepare(
      "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)",
    ),
    usersEvents: db.prepare(
      "SELECT id, body FROM events WHERE user_id = ? AND sender_key = ? AND erased_at IS NULL",
    ),
    eraseEvent: db.prepare("UPDATE events SET body = ?, erased_at = ? WHERE id = ?"),
    eraseMedia: db.prepare(
      `UPDATE media SET state = 'gone', gone_reason = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL
       WHERE event_id = ? AND state <> 'gone' RETURNING path`,
    ),
    eraseSends: db.prepare(
      `UPDATE sends SET messages = '[]'
       WHERE sender_key = ? AND conversation = 'user:' || ? AND state <> 'sending' AND messages <> '[]'`,
    ),
    eraseDirectory: db.prepare("DELETE FROM user_directory WHERE sender_key = ? AND user_id = ?"),
  };
  return {
    purgeBatch: (request: PurgeRequest) =>
      writes.run((): PurgeBatch => {
        const { eventsBefore, mediaBefore, auditBefore, after, limit, now } = request;
        const batch = sql.events.all(after, limit) as unknown as AgedEvent[];
        const expired = expiredEvents(batch, eventsBefore, after, limit);
        for (const id of expired.ids) {
          sql.deleteDelivery.run(id);
          sql.deleteMedia.run(id);
          sql.deleteEvent.run(id);
        }
        if (expired.newest !== null) sql.markPurged.run(expired.newest);
        const attachments = sql.attachments.all(now, mediaBefore, limit, RETENTION_GONE_REASON) as Array<{
          path: string | null;
        }>;
        return purgeBatchOf(
          expired,
          {
            attachments,
            sends: Number(sql.sends.run(eventsBefore, limit).changes),
            counters: Number(sql.counters.run(oldestCounterDay(eventsBefore), limit).changes),
            audit: Number(sql.audit.run(auditBefore, limit).changes),
          },
          limit,
        );
      }),

    async purgedThrough() {
      return (sql.purgedThrough.get() as { at: number } | undefined)?.at ?? null;
    },

    eraseUser: (senderKey: string, userId: string, now: number) =>
      writes.run((): ErasedUser => {
        const events = sql.usersEvents.all(userId, senderKey) as Array<{ id: number; body: string }>;
        const files: string[] = [];
        let attachments = 0;
        for (const { id, body } of events) {
          sql.eraseEvent.run(scrubbed(body), now, id);
          const media = sql.eraseMedia.get(ERASED_GONE_REASON, now, id) as
            | { path: string | null }
            | undefined;
          if (media) attachments++;
          if (media?.path) files.push(media.path);
        }
        return {
          events: events.length,
          attachments,
          sends: Number(sql.eraseSends.run(senderKey, userId).changes),
          directory: Number(sql.eraseDirectory.run(senderKey, userId).changes) > 0,
          files,
        };
      }),
  };
}
