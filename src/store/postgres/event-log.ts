// The event log on PostgreSQL: concurrent webhooks stored in one transaction per instance (group commit), a few
// statements per transaction whatever its size; deduped across instances by a unique index; the core decides.
import type {
  EventLog,
  EventQuery,
  EventRecord,
  IngestRequest,
  IngestResult,
  StoredEvent,
  StoredMessage,
  Work,
} from "../../app/store.ts";
import { type ConversationState, conversationAfter, recordEvent, scrubbed } from "../../core/event-record.ts";
import { formatSerialNumber, serialScope } from "../../core/serial-number.ts";
import {
  type ConversationRow,
  type EventLookupRow,
  type MessageRow,
  toConversationState,
  toEventRecord,
  toStoredMessage,
} from "../rows.ts";
import type { Pool } from "./connection.ts";
import type { Tx } from "./tx.ts";
import { json, notify, wakeConversations } from "./tx.ts";

/** Most webhooks stored in one transaction. */
const MAX_BATCH = 64;

interface Pending {
  request: IngestRequest;
  resolve(result: IngestResult): void;
  reject(error: unknown): void;
}

/**
 * {@link EventLog} committing on `commits` (one transaction at a time) and reading from `reads`; `signal` tells
 * this instance's workers at once (others hear the NOTIFY).
 */
export function postgresEventLog(
  { commits, reads }: { commits: Pool; reads: Pool },
  signal: (work: Work) => void,
): EventLog {
  const queue: Pending[] = [];
  let running = false;

  // Stores `batch` in one transaction and answers each webhook; throws, answering none, if it fails.
  const commit = async (batch: Pending[]) => {
    const works = new Set<Work>();
    const results = await commits.begin((tx) =>
      ingestBatch(
        tx,
        batch.map((p) => p.request),
        works,
      ),
    );
    for (const [i, pending] of batch.entries()) pending.resolve(results[i] as IngestResult);
    for (const work of works) signal(work);
  };

  // One transaction at a time takes every webhook waiting: they share its commit. Should the database refuse
  // the data (SQLSTATE classes 22 and 23), each webhook is tried again alone, so that one that cannot be stored
  // fails alone; a database that cannot be reached fails them all at once.
  const run = async () => {
    running = true;
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        await commit(batch);
      } catch (error) {
        const refusedData = /^2[23]/.test(String((error as { code?: unknown }).code));
        if (batch.length === 1 || !refusedData) for (const pending of batch) pending.reject(error);
        else for (const pending of batch) await commit([pending]).catch(pending.reject);
      }
    }
    running = false;
  };

  return {
    ingest(request) {
      return new Promise((resolve, reject) => {
        queue.push({ request, resolve, reject });
        if (!running) void run();
      });
    },

    async findMessage(senderKey, serialNumber): Promise<StoredMessage | null> {
      const [row] = await reads<MessageRow[]>`
        SELECT e.id, e.serial_number, e.body, e.unsent_at, e.erased_at, m.kind, m.state, m.content_type, m.size, m.sha256,
          m.path, m.gone_reason
        FROM events e LEFT JOIN media m ON m.event_id = e.id
        WHERE e.sender_key = ${senderKey} AND e.serial_number = ${serialNumber}`;
      return row ? toStoredMessage(row) : null;
    },

    async findEvents(q: EventQuery): Promise<EventRecord[]> {
      const rows = await reads<EventLookupRow[]>`
        SELECT id, sender_key, serial_number, type, conversation, user_id, message_id, received_at, unsent_at,
          body, state, attempts, last_status, last_error, updated_at
        FROM events
        WHERE sender_key = ANY(${[...q.senderKeys]}::text[])
          AND (${q.serialNumber ?? null}::text IS NULL OR serial_number = ${q.serialNumber ?? null})
          AND (${q.messageId ?? null}::text IS NULL OR message_id = ${q.messageId ?? null})
          AND (${q.userId ?? null}::text IS NULL OR user_id = ${q.userId ?? null})
          AND (${q.conversation ?? null}::text IS NULL OR conversation = ${q.conversation ?? null})
          AND received_at >= ${q.from ?? 0} AND received_at < ${q.to ?? Number.MAX_SAFE_INTEGER}
          AND id < ${q.before ?? Number.MAX_SAFE_INTEGER}
        ORDER BY id DESC LIMIT ${q.limit}`;
      return rows.map(toEventRecord);
    },
  };
}

const conversationKey = (senderKey: string, conversation: string) => `${senderKey}\n${conversation}`;

/** Stores the events of several webhooks in one transaction; answers each webhook's result in order. */
async function ingestBatch(tx: Tx, requests: IngestRequest[], works: Set<Work>): Promise<IngestResult[]> {
  const all = requests.flatMap((request) => request.events.map((event) => ({ request, event })));

  // What the rules need: the keys stored already, the unsends stored already, and each conversation,
  // locked (in one order for every instance) so that its mode and reply token change one writer at a time.
  const known = new Set(
    (
      await tx<Array<{ k: string }>>`
        SELECT e.sender_key || E'\\n' || e.event_key AS k FROM events e
        JOIN jsonb_to_recordset(${json(
          tx,
          all.map(({ request, event }) => ({ s: request.senderKey, k: event.facts.key })),
        )})
          AS t(s text, k text) ON e.sender_key = t.s AND e.event_key = t.k`
    ).map((row) => row.k),
  );
  const withMessage = all.filter(({ event }) => event.facts.messageId !== null);
  const unsentBefore = new Set(
    (
      await tx<Array<{ k: string }>>`
        SELECT DISTINCT e.sender_key || E'\\n' || e.message_id AS k FROM events e
        JOIN jsonb_to_recordset(${json(
          tx,
          withMessage.map(({ request, event }) => ({ s: request.senderKey, m: event.facts.messageId })),
        )})
          AS t(s text, m text) ON e.sender_key = t.s AND e.message_id = t.m
        WHERE e.type = 'unsend'`
    ).map((row) => row.k),
  );
  const conversationRefs = [
    ...new Map(
      all.map(({ request, event }) => [
        conversationKey(request.senderKey, event.facts.conversation),
        { s: request.senderKey, c: event.facts.conversation },
      ]),
    ).values(),
  ].sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : a.c < b.c ? -1 : a.c > b.c ? 1 : 0));
  const conversations = new Map<string, ConversationState | null>();
  for (const row of await tx<
    Array<ConversationRow & { sender_key: string; conversation: string }>
  >`INSERT INTO conversations (sender_key, conversation)
    SELECT t.s, t.c FROM jsonb_to_recordset(${json(tx, conversationRefs)}) AS t(s text, c text) ORDER BY t.s, t.c
    ON CONFLICT (sender_key, conversation) DO UPDATE SET sender_key = EXCLUDED.sender_key
    RETURNING sender_key, conversation, last_event_at, last_mode, reply_token, reply_token_at, reply_token_used_by`) {
    conversations.set(conversationKey(row.sender_key, row.conversation), toConversationState(row));
  }

  // The core decides each event, in order: duplicates, what is stored, what each conversation keeps.
  const results: IngestResult[] = requests.map(() => ({ stored: [], duplicates: 0, unsentFiles: [] }));
  const seen = new Set<string>();
  const fresh: Array<{
    at: number;
    request: IngestRequest;
    event: IngestRequest["events"][number];
    record: ReturnType<typeof recordEvent>;
    scope: ReturnType<typeof serialScope>;
  }> = [];
  const changed = new Set<string>();
  const woken = new Map<string, { s: string; c: string; p: string; at: number }>();
  for (const [at, request] of requests.entries()) {
    const { senderKey, receivedAt } = request;
    for (const event of request.events) {
      const { facts } = event;
      const key = `${senderKey}\n${facts.key}`;
      if (known.has(key) || seen.has(key)) {
        (results[at] as IngestResult).duplicates++;
        continue;
      }
      seen.add(key);
      const record = recordEvent(facts, event, {
        receivedAt,
        mediaWaitMs: request.mediaWaitMs,
        unsentBefore: facts.messageId !== null && unsentBefore.has(`${senderKey}\n${facts.messageId}`),
      });
      if (facts.type === "unsend" && facts.messageId !== null)
        unsentBefore.add(`${senderKey}\n${facts.messageId}`);
      fresh.push({
        at,
        request,
        event,
        record,
        scope: serialScope(facts.serialPrefix, senderKey, receivedAt),
      });
      const ck = conversationKey(senderKey, facts.conversation);
      const next = conversationAfter(conversations.get(ck) ?? null, facts, receivedAt);
      if (next && next !== conversations.get(ck)) {
        conversations.set(ck, next);
        changed.add(ck);
      }
      if (record.delivery)
        woken.set(ck, { s: senderKey, c: facts.conversation, p: request.partnerId, at: receivedAt });
    }
  }
  if (fresh.length === 0) return results;

  // Serial numbers: one counter row per (channel, prefix, day), bumped once per transaction.
  const scopes = new Map<string, { s: string; p: string; d: string; n: number }>();
  for (const { request, scope } of fresh) {
    const k = `${request.senderKey}\n${scope.prefix}\n${scope.day}`;
    const entry = scopes.get(k) ?? { s: request.senderKey, p: scope.prefix, d: scope.day, n: 0 };
    entry.n++;
    scopes.set(k, entry);
  }
  const next = new Map<string, number>();
  for (const row of await tx<Array<{ sender_key: string; prefix: string; day: string; last: number }>>`
    INSERT INTO serial_counters (sender_key, prefix, day, last)
    SELECT t.s, t.p, t.d, t.n FROM jsonb_to_recordset(${json(tx, [...scopes.values()])}) AS t(s text, p text, d text, n integer)
    ORDER BY t.s, t.p, t.d
    ON CONFLICT (sender_key, prefix, day) DO UPDATE SET last = serial_counters.last + EXCLUDED.last
    RETURNING sender_key, prefix, day, last`) {
    const k = `${row.sender_key}\n${row.prefix}\n${row.day}`;
    next.set(k, row.last - (scopes.get(k)?.n ?? 0) + 1);
  }
  const rows = fresh.map(({ request, event, record, scope }) => {
    const k = `${request.senderKey}\n${scope.prefix}\n${scope.day}`;
    const n = next.get(k) ?? 1;
    next.set(k, n + 1);
    const { facts } = event;
    return {
      sender_key: request.senderKey,
      event_key: facts.key,
      serial_number: formatSerialNumber(scope.prefix, n, request.receivedAt),
      type: facts.type,
      mode: facts.mode,
      conversation: facts.conversation,
      user_id: facts.userId,
      message_id: facts.messageId,
      line_timestamp: facts.timestamp,
      received_at: request.receivedAt,
      body: record.body,
      unsent_at: record.unsentAt,
      partner_id: record.delivery ? request.partnerId : null,
      state: record.delivery ? "pending" : null,
      next_attempt_at: record.delivery?.relayAt ?? null,
      retry_from: record.delivery ? request.receivedAt : null,
      updated_at: record.delivery ? request.receivedAt : null,
    };
  });
  // Another instance may have stored one of them meanwhile (a redelivery it took): that one is a duplicate.
  const ids = new Map<string, number>();
  for (const row of await tx<Array<{ id: number; sender_key: string; event_key: string }>>`
    INSERT INTO events (sender_key, event_key, serial_number, type, mode, conversation, user_id, message_id,
      line_timestamp, received_at, body, unsent_at, partner_id, state, next_attempt_at, retry_from, updated_at)
    SELECT * FROM jsonb_to_recordset(${json(tx, rows)}) AS t(sender_key text, event_key text, serial_number text,
      type text, mode text, conversation text, user_id text, message_id text, line_timestamp bigint,
      received_at bigint, body text, unsent_at bigint, partner_id text, state text, next_attempt_at bigint,
      retry_from bigint, updated_at bigint)
    ON CONFLICT (sender_key, event_key) DO NOTHING
    RETURNING id, sender_key, event_key`) {
    ids.set(`${row.sender_key}\n${row.event_key}`, row.id);
  }

  const media: Array<Record<string, unknown>> = [];
  for (const [i, { at, request, event, record }] of fresh.entries()) {
    const id = ids.get(`${request.senderKey}\n${event.facts.key}`);
    const result = results[at] as IngestResult;
    if (id === undefined) {
      result.duplicates++;
      continue;
    }
    if (record.media) {
      const { kind, state, goneReason } = record.media;
      media.push({
        event_id: id,
        sender_key: request.senderKey,
        message_id: event.facts.messageId,
        kind,
        state,
        at: request.receivedAt,
        gone_reason: goneReason,
      });
      if (state === "pending") works.add("media");
    }
    if (record.delivery) works.add("delivery");
    const stored: StoredEvent = {
      serialNumber: (rows[i] as { serial_number: string }).serial_number,
      facts: event.facts,
      forward: event.forward,
      fetchesMedia: record.media?.state === "pending",
    };
    result.stored.push(stored);
  }
  if (media.length > 0) {
    await tx`INSERT INTO media (event_id, sender_key, message_id, kind, state, next_attempt_at, created_at,
        updated_at, gone_reason)
      SELECT t.event_id, t.sender_key, t.message_id, t.kind, t.state, t.at, t.at, t.at, t.gone_reason
      FROM jsonb_to_recordset(${json(tx, media)}) AS t(event_id bigint, sender_key text, message_id text, kind text,
        state text, at bigint, gone_reason text)`;
  }

  // Each conversation's new mode and reply token, and its queue due now if a delivery was added.
  const updates = [...new Set([...changed, ...woken.keys()])].map((ck) => {
    const [s, c] = ck.split("\n") as [string, string];
    const state = changed.has(ck) ? conversations.get(ck) : null;
    return {
      s,
      c,
      changed: state ? 1 : 0,
      last_event_at: state?.lastEventAt ?? null,
      last_mode: state?.lastMode ?? null,
      reply_token: state?.replyToken ?? null,
      reply_token_at: state?.replyTokenAt ?? null,
      reply_token_used_by: state?.replyTokenUsedBy ?? null,
      partner_id: woken.get(ck)?.p ?? null,
      wake_at: woken.get(ck)?.at ?? null,
    };
  });
  if (updates.length > 0) {
    await tx`UPDATE conversations c SET
        last_event_at = CASE WHEN t.changed = 1 THEN t.last_event_at ELSE c.last_event_at END,
        last_mode = CASE WHEN t.changed = 1 THEN t.last_mode ELSE c.last_mode END,
        reply_token = CASE WHEN t.changed = 1 THEN t.reply_token ELSE c.reply_token END,
        reply_token_at = CASE WHEN t.changed = 1 THEN t.reply_token_at ELSE c.reply_token_at END,
        reply_token_used_by = CASE WHEN t.changed = 1 THEN t.reply_token_used_by ELSE c.reply_token_used_by END,
        partner_id = coalesce(t.partner_id, c.partner_id),
        due_at = CASE WHEN t.wake_at IS NULL THEN c.due_at ELSE least(coalesce(c.due_at, t.wake_at), t.wake_at) END
      FROM jsonb_to_recordset(${json(tx, updates)}) AS t(s text, c text, changed integer, last_event_at bigint,
        last_mode text, reply_token text, reply_token_at bigint, reply_token_used_by text, partner_id text,
        wake_at bigint)
      WHERE c.sender_key = t.s AND c.conversation = t.c`;
  }

  // Unsends take their message's text and content back (rare: one statement each).
  for (const { at, request, event, record } of fresh) {
    if (record.takesBack === null || !ids.has(`${request.senderKey}\n${event.facts.key}`)) continue;
    const taken = await unsend(tx, request.senderKey, record.takesBack, request.receivedAt);
    (results[at] as IngestResult).unsentFiles.push(...taken.files);
    if (taken.released) works.add("delivery");
  }
  for (const work of works) await notify(tx, work);
  return results;
}

/** Takes a message's text and content back; answers its stored files and whether a held delivery may go now. */
async function unsend(
  tx: Tx,
  senderKey: string,
  messageId: string,
  now: number,
): Promise<{ files: string[]; released: boolean }> {
  const files: string[] = [];
  let released = false;
  for (const { id, body } of await tx<Array<{ id: number; body: string }>>`
    SELECT id, body FROM events
    WHERE sender_key = ${senderKey} AND message_id = ${messageId} AND type <> 'unsend' AND unsent_at IS NULL
    FOR UPDATE`) {
    await tx`UPDATE events SET body = ${scrubbed(body)}, unsent_at = ${now} WHERE id = ${id}`;
    const [media] = await tx<Array<{ path: string | null }>>`
      UPDATE media SET state = 'gone', gone_reason = 'unsent', updated_at = ${now}, lease_owner = NULL,
        lease_until = NULL
      WHERE event_id = ${id} AND state <> 'gone' RETURNING path`;
    if (media?.path) files.push(media.path);
    released = (await releaseGate(tx, id, now)) || released;
  }
  return { files, released };
}

/** A message held back for its attachment may go now; answers whether one was. */
export async function releaseGate(tx: Tx, eventId: number, now: number): Promise<boolean> {
  const released = await tx<Array<{ sender_key: string; conversation: string }>>`
    UPDATE events SET next_attempt_at = ${now}
    WHERE id = ${eventId} AND state = 'pending' AND attempts = 0 AND next_attempt_at > ${now}
    RETURNING sender_key, conversation`;
  await wakeConversations(
    tx,
    released.map((row) => ({ senderKey: row.sender_key, conversation: row.conversation })),
    now,
  );
  return released.length > 0;
}
