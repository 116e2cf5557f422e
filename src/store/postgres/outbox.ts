// The outbox on PostgreSQL: each conversation a serial queue whose lease is a row's columns (owner, expiry), taken
// with FOR UPDATE SKIP LOCKED by any instance, the slots shared fairly among partners (core/fair-share.ts).
import type {
  ChannelActivity,
  ClaimRef,
  ClaimRequest,
  ConversationClaim,
  DeliveryFilter,
  DeliveryOutcome,
  DeliveryRecord,
  DeliveryState,
  DeliveryStats,
  DeliveryTask,
  Outbox,
  PartnerSlots,
  Work,
} from "../../app/store.ts";
import { fairShares } from "../../core/fair-share.ts";
import type { Pool } from "./connection.ts";
import { json, notify, type Tx, wakeConversations } from "./tx.ts";

interface TaskRow {
  id: number;
  serial_number: string;
  sender_key: string;
  partner_id: string;
  conversation: string;
  attempts: number;
  next_attempt_at: number;
  received_at: number;
  retry_from: number;
  body: string;
  e164: string | null;
  agree_type: number | null;
}

/** {@link Outbox} over a pool; `signal` tells this instance's workers at once (others hear the NOTIFY). */
export function postgresOutbox(pool: Pool, signal: (work: Work) => void): Outbox {
  /** Records outcomes and releases the lease; the conversation is due again when its head is, read under its lock. */
  async function completeClaim(claim: ClaimRef, outcomes: DeliveryOutcome[]): Promise<void> {
    await pool.begin(async (tx) => {
      // The conversation's row first: a webhook adding to it meanwhile is then seen by the head's read below.
      const [row] = await tx<Array<{ lease_owner: string | null }>>`
        SELECT lease_owner FROM conversations
        WHERE sender_key = ${claim.senderKey} AND conversation = ${claim.conversation} FOR UPDATE`;
      if (outcomes.length > 0) {
        await tx`UPDATE events e SET state = t.state, attempts = e.attempts + 1, next_attempt_at = t.next_at,
          updated_at = t.at, last_status = t.status, last_error = t.error
        FROM jsonb_to_recordset(${json(
          tx,
          outcomes.map((o) => ({
            id: o.eventId,
            state: o.state,
            next_at: o.state === "retrying" ? o.nextAttemptAt : o.at,
            at: o.at,
            status: o.status,
            error: o.error,
          })),
        )}) AS t(id bigint, state text, next_at bigint, at bigint, status integer, error text)
        WHERE e.id = t.id`;
      }
      if (row?.lease_owner !== claim.owner) return; // the lease ran out and another instance holds it now
      // Due again when its new head is (or never, when nothing waits).
      await tx`UPDATE conversations SET lease_owner = NULL, lease_until = NULL,
        due_at = (SELECT next_attempt_at FROM events
          WHERE sender_key = ${claim.senderKey} AND conversation = ${claim.conversation}
            AND state IN ('pending', 'retrying')
          ORDER BY line_timestamp, id LIMIT 1)
        WHERE sender_key = ${claim.senderKey} AND conversation = ${claim.conversation}`;
    });
  }

  return {
    async claimConversations(request: ClaimRequest): Promise<ConversationClaim[]> {
      const { owner, limit, batchSize, now, leaseMs, slots } = request;
      const until = now + leaseMs;
      // Every partner with due conversations: how many it holds now (on any instance), how many wait.
      const partners = await pool<
        Array<{ partner_id: string; held: number; due: number; head: number | null }>
      >`
        SELECT partner_id,
          count(*) FILTER (WHERE lease_until > ${now})::integer AS held,
          count(*) FILTER (WHERE due_at <= ${now} AND (lease_until IS NULL OR lease_until <= ${now}))::integer AS due,
          min(due_at) FILTER (WHERE due_at <= ${now} AND (lease_until IS NULL OR lease_until <= ${now})) AS head
        FROM conversations WHERE due_at IS NOT NULL AND partner_id IS NOT NULL GROUP BY partner_id`;
      const candidates = partners
        .filter((p) => p.due > 0 && slots(p.partner_id) > p.held)
        .sort((a, b) => (a.head ?? 0) - (b.head ?? 0))
        .map((p) => ({ partnerId: p.partner_id, held: p.held, slots: slots(p.partner_id), due: p.due }));
      const claimed: Array<{ sender_key: string; conversation: string }> = [];
      for (const [partnerId, count] of fairShares(candidates, limit)) {
        // Another instance may take some of them first: SKIP LOCKED passes them by.
        claimed.push(
          ...(await pool<Array<{ sender_key: string; conversation: string }>>`
            UPDATE conversations c SET lease_owner = ${owner}, lease_until = ${until}, due_at = ${until}
            FROM (SELECT sender_key, conversation FROM conversations
                  WHERE partner_id = ${partnerId} AND due_at <= ${now}
                    AND (lease_until IS NULL OR lease_until <= ${now})
                  ORDER BY due_at LIMIT ${count} FOR UPDATE SKIP LOCKED) AS d
            WHERE c.sender_key = d.sender_key AND c.conversation = d.conversation
            RETURNING c.sender_key, c.conversation`),
        );
      }
      if (claimed.length === 0) return [];
      const rows = await pool<TaskRow[]>`
        SELECT d.id, d.serial_number, d.sender_key, d.partner_id, d.conversation, d.attempts, d.next_attempt_at,
          d.received_at, d.retry_from, d.body, u.e164, u.agree_type
        FROM jsonb_to_recordset(${json(
          pool,
          claimed.map((c) => ({ s: c.sender_key, c: c.conversation })),
        )})
          AS q(s text, c text)
        CROSS JOIN LATERAL (
          SELECT * FROM events e WHERE e.sender_key = q.s AND e.conversation = q.c
            AND e.state IN ('pending', 'retrying')
          ORDER BY e.line_timestamp, e.id LIMIT ${batchSize}) AS d
        LEFT JOIN user_directory u ON u.sender_key = d.sender_key AND u.user_id = d.user_id
        ORDER BY d.sender_key, d.conversation, d.line_timestamp, d.id`;
      const claims: ConversationClaim[] = [];
      for (const { sender_key: senderKey, conversation } of claimed) {
        const waiting = rows.filter(
          (row) => row.sender_key === senderKey && row.conversation === conversation,
        );
        const end = waiting.findIndex((row) => row.next_attempt_at > now);
        const due = end === -1 ? waiting : waiting.slice(0, end);
        if (due.length > 0) {
          claims.push({ senderKey, conversation, owner, until, deliveries: due.map(toTask) });
          continue;
        }
        // The wake-up was early (the head waits for a retry or its attachment) or stale (nothing waits): release
        // it, due when its head is. Read again under the row's lock, not taken from the rows above: an attachment
        // stored meanwhile has made the head due now, and that wake-up must not be overwritten.
        await completeClaim({ senderKey, conversation, owner }, []);
      }
      return claims;
    },

    completeClaim,

    async nextDueAt(now: number, slots: PartnerSlots): Promise<number | null> {
      const partners = await pool<
        Array<{ partner_id: string; held: number; next: number | null; first_lease_end: number | null }>
      >`SELECT partner_id,
          count(*) FILTER (WHERE lease_until > ${now})::integer AS held,
          min(CASE WHEN lease_until > ${now} THEN lease_until ELSE due_at END) AS next,
          min(lease_until) FILTER (WHERE lease_until > ${now}) AS first_lease_end
        FROM conversations WHERE due_at IS NOT NULL AND partner_id IS NOT NULL GROUP BY partner_id`;
      let next: number | null = null;
      for (const p of partners) {
        const free = slots(p.partner_id);
        if (free <= 0) continue;
        // A partner whose slots are all held counts only from its first lease's end.
        const at = p.held < free ? p.next : p.first_lease_end;
        if (at !== null && (next === null || at < next)) next = at;
      }
      return next;
    },

    async listDeliveries(filter, page): Promise<DeliveryRecord[]> {
      const rows = await pool<
        Array<{
          id: number;
          serial_number: string;
          sender_key: string;
          conversation: string;
          type: string;
          state: DeliveryState;
          attempts: number;
          last_status: number | null;
          last_error: string | null;
          received_at: number;
          updated_at: number;
          next_attempt_at: number;
        }>
      >`SELECT id, serial_number, sender_key, conversation, type, state, attempts, last_status, last_error,
          received_at, updated_at, next_attempt_at
        FROM events e WHERE ${where(pool, filter)} AND e.id > ${page.after} ORDER BY e.id LIMIT ${page.limit}`;
      return rows.map((row) => ({
        eventId: row.id,
        serialNumber: row.serial_number,
        senderKey: row.sender_key,
        conversation: row.conversation,
        eventType: row.type,
        state: row.state,
        attempts: row.attempts,
        lastStatus: row.last_status,
        lastError: row.last_error,
        receivedAt: row.received_at,
        updatedAt: row.updated_at,
        nextAttemptAt: row.next_attempt_at,
      }));
    },

    async countDeliveries(filter): Promise<number> {
      const [row] = await pool<Array<{ n: number }>>`
        SELECT count(*)::integer AS n FROM events e WHERE ${where(pool, filter)}`;
      return row?.n ?? 0;
    },

    async replayDeliveries(filter, now, limit): Promise<string[]> {
      const replayed = await pool.begin(async (tx) => {
        const rows = await tx<Array<{ sender_key: string; conversation: string; serial_number: string }>>`
          UPDATE events SET state = 'pending', next_attempt_at = ${now}, retry_from = ${now}, updated_at = ${now}
          WHERE id IN (SELECT e.id FROM events e WHERE ${where(tx, filter)} ORDER BY e.id LIMIT ${limit})
          RETURNING sender_key, conversation, serial_number, id`;
        await wakeConversations(
          tx,
          rows.map((row) => ({ senderKey: row.sender_key, conversation: row.conversation })),
          now,
        );
        if (rows.length > 0) await notify(tx, "delivery");
        return rows;
      });
      if (replayed.length > 0) signal("delivery");
      return replayed.map((row) => row.serial_number);
    },

    async deliveryStats(): Promise<DeliveryStats> {
      const [row] = await pool<
        Array<{ pending: number; retrying: number; dead: number; oldest: number | null }>
      >`SELECT count(*) FILTER (WHERE state = 'pending')::integer AS pending,
          count(*) FILTER (WHERE state = 'retrying')::integer AS retrying,
          (SELECT count(*)::integer FROM events WHERE state = 'dead') AS dead,
          min(retry_from) AS oldest
        FROM events WHERE state IN ('pending', 'retrying')`;
      return {
        pending: row?.pending ?? 0,
        retrying: row?.retrying ?? 0,
        dead: row?.dead ?? 0,
        oldestWaitingAt: row?.oldest ?? null,
      };
    },

    async channelActivity(senderKeys: readonly string[], since: number): Promise<ChannelActivity[]> {
      return await pool<ChannelActivity[]>`
        SELECT k.sender_key AS "senderKey",
          (SELECT count(*)::integer FROM events e
            WHERE e.sender_key = k.sender_key AND e.received_at >= ${since}) AS received,
          (SELECT count(*)::integer FROM events e
            WHERE e.sender_key = k.sender_key AND e.state = 'delivered' AND e.updated_at >= ${since}) AS delivered,
          (SELECT max(e.received_at) FROM events e WHERE e.sender_key = k.sender_key) AS "lastReceivedAt",
          w.pending, w.retrying, w.oldest AS "oldestWaitingAt",
          (SELECT count(*)::integer FROM events e
            WHERE e.sender_key = k.sender_key AND e.state = 'dead') AS dead
        FROM jsonb_array_elements_text(${json(pool, senderKeys)}::jsonb) WITH ORDINALITY AS k(sender_key, n)
        CROSS JOIN LATERAL (
          SELECT count(*) FILTER (WHERE e.state = 'pending')::integer AS pending,
            count(*) FILTER (WHERE e.state = 'retrying')::integer AS retrying,
            min(e.retry_from) AS oldest
          FROM events e WHERE e.sender_key = k.sender_key AND e.state IN ('pending', 'retrying')) AS w
        ORDER BY k.n`;
    },
  };
}

// The conditions of a delivery filter over events e (deliveries: the events with a delivery state).
function where(sql: Pool | Tx, filter: DeliveryFilter) {
  let q = sql`e.state IS NOT NULL
    AND e.sender_key IN (SELECT jsonb_array_elements_text(${json(sql, filter.senderKeys)}::jsonb))`;
  if (filter.state) q = sql`${q} AND e.state = ${filter.state}`;
  if (filter.conversation) q = sql`${q} AND e.conversation = ${filter.conversation}`;
  if (filter.serialNumbers)
    q = sql`${q} AND e.serial_number IN (SELECT jsonb_array_elements_text(${json(sql, filter.serialNumbers)}::jsonb))`;
  if (filter.from !== undefined) q = sql`${q} AND e.received_at >= ${filter.from}`;
  if (filter.to !== undefined) q = sql`${q} AND e.received_at < ${filter.to}`;
  return q;
}

function toTask(row: TaskRow): DeliveryTask {
  return {
    eventId: row.id,
    serialNumber: row.serial_number,
    senderKey: row.sender_key,
    partnerId: row.partner_id,
    conversation: row.conversation,
    attempts: row.attempts,
    receivedAt: row.received_at,
    retryFrom: row.retry_from,
    dueAt: row.next_attempt_at,
    body: row.body,
    e164: row.e164,
    agreeType: row.agree_type,
  };
}
