// The embedded store: one SQLite file (WAL, each commit's log fsynced), writes group-committed. One process per file,
// which a lock beside it enforces.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from "node:sqlite";
import type {
  BeginSend,
  ChannelActivity,
  ChannelTokens,
  ClaimRef,
  ClaimRequest,
  ConversationClaim,
  DeliveryFilter,
  DeliveryOutcome,
  DeliveryRecord,
  DeliveryState,
  DeliveryTask,
  EventQuery,
  EventRecord,
  IngestRequest,
  IngestResult,
  MediaJob,
  MediaOutcome,
  NewSend,
  OperatorData,
  PartnerSlots,
  Retention,
  SendListing,
  SendOutcome,
  Store,
  StoredEvent,
  StoredMessage,
  Work,
} from "../../app/store.ts";
import type { MediaKind } from "../../core/attachment.ts";
import { type ConversationState, conversationAfter, recordEvent, scrubbed } from "../../core/event-record.ts";
import { decideSend, type SendTiming } from "../../core/send-decision.ts";
import { formatSerialNumber, serialScope } from "../../core/serial-number.ts";
import { DatabaseRefusal } from "../database-refusal.ts";
import { LocalWorkSignals } from "../local-work-signals.ts";
import {
  type ConversationRow,
  type EventLookupRow,
  type MessageRow,
  SEND_LISTING_COLUMNS,
  type SendListingRow,
  type SendRow,
  toConversationState,
  toEventRecord,
  toSendListing,
  toSendRecord,
  toStoredMessage,
} from "../rows.ts";
import { sqliteChannelTokens } from "./channel-tokens.ts";
import { ConversationSchedule } from "./conversation-schedule.ts";
import { GroupCommit } from "./group-commit.ts";
import { type FileLock, lockDatabaseFile } from "./lock-database-file.ts";
import { sqliteOperatorData } from "./operator-data.ts";
import { sqliteRetention } from "./retention.ts";
import { MIGRATIONS } from "./schema.ts";
import { FileSync } from "./wal-sync.ts";

const WAITING = "state IN ('pending', 'retrying')";

/**
 * Opens (creating if needed) the SQLite database at `path` for this process alone and brings its schema up to
 * date; throws a {@link DatabaseRefusal} when another talkgate process has the file or its schema is newer.
 */
export function openSqliteStore(path: string): SqliteStore {
  const { db, lock } = openDatabase(path);
  const release = () => lock?.release();
  if (path === ":memory:") return new SqliteStore(db, () => Promise.resolve(), release);
  const wal = new FileSync(`${path}-wal`);
  return new SqliteStore(db, () => wal.sync(), release);
}

/**
 * Brings the schema of the SQLite database at `path` up to date and closes it (`talkgate migrate`); answers
 * the schema version. Refused like {@link openSqliteStore}.
 */
export function migrateSqliteFile(path: string): number {
  const { db, lock } = openDatabase(path);
  db.close();
  lock?.release();
  return MIGRATIONS.length;
}

// The database at `path` (created if needed), locked for this process and migrated; closed again on failure.
function openDatabase(path: string): { db: DatabaseSync; lock: FileLock | null } {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  // Taken before the database is opened: a second process changes nothing, not even the schema.
  const lock = path === ":memory:" ? null : lockDatabaseFile(path);
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    // Only another process (a backup, an operator's sqlite3) can hold the lock; the wait for it is kept
    // short: LINE redelivers a webhook answered 5xx. Commits write the WAL without an fsync (NORMAL); every
    // write resolves only after the WAL's fsync, run in the thread pool while the next commits go on. SQLite
    // copies the WAL into the database file (a checkpoint) once it has grown past 1,000 pages.
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 250;");
    migrate(db, path);
    return { db, lock };
  } catch (error) {
    db?.close();
    lock?.release();
    throw error;
  }
}

function migrate(db: DatabaseSync, path: string): void {
  const { user_version: version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
  if (version > MIGRATIONS.length)
    throw new DatabaseRefusal(
      `the database ${path} has schema version ${version}, newer than this talkgate knows (${MIGRATIONS.length}): run a newer talkgate`,
    );
  for (let next = version; next < MIGRATIONS.length; next++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[next] as string);
      db.exec(`PRAGMA user_version = ${next + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
}

interface TaskRow {
  event_id: number;
  serial_number: string;
  sender_key: string;
  partner_id: string;
  conversation: string;
  attempts: number;
  next_attempt_at: number;
  received_at: number;
  created_at: number;
  body: string;
  e164: string | null;
  agree_type: number | null;
}

/** The SQLite implementation of {@link Store}. */
export class SqliteStore implements Store {
  readonly db: DatabaseSync;
  readonly #writes: GroupCommit;
  readonly #sql: ReturnType<typeof prepareStatements>;
  /** The claim's query for each batch size asked for. */
  readonly #waiting = new Map<number, StatementSync>();

  /** Which conversations are due, and their leases: only this process uses the file, so memory will do. */
  readonly #schedule = new ConversationSchedule();
  readonly #signals = new LocalWorkSignals();
  readonly #release: () => void;
  readonly #operators: OperatorData;
  readonly #tokens: ChannelTokens;
  readonly #retention: Retention;

  /**
   * `durable` resolves once every commit made before the call is on disk; `release` lets another process
   * have the file once this store is closed.
   */
  constructor(db: DatabaseSync, durable: () => Promise<void>, release: () => void = () => {}) {
    this.db = db;
    this.#release = release;
    this.#writes = new GroupCommit(db, durable);
    this.#sql = prepareStatements(db);
    this.#operators = sqliteOperatorData(db, this.#writes);
    this.#tokens = sqliteChannelTokens(db, this.#writes);
    this.#retention = sqliteRetention(db, this.#writes);
    // Only this process uses the file, so leases left by an earlier run (killed or crashed) are void.
    db.exec(`
      UPDATE media SET lease_owner = NULL, lease_until = NULL, next_attempt_at = 0 WHERE lease_owner IS NOT NULL;
      UPDATE sends SET updated_at = 0 WHERE state = 'sending';
    `);
    // Every conversation with waiting deliveries is looked at once; its first claim learns when its head is due.
    for (const ref of this.#sql.waitingConversations.all() as Array<{
      sender_key: string;
      conversation: string;
      partner_id: string;
    }>)
      this.#schedule.wake({ senderKey: ref.sender_key, conversation: ref.conversation }, ref.partner_id, 0);
  }

  async ingest(request: IngestRequest): Promise<IngestResult> {
    const signals = new Set<Work>();
    const result = await this.#writes.run(() => {
      const sql = this.#sql;
      const { senderKey, receivedAt } = request;
      const stored: StoredEvent[] = [];
      const unsentFiles: string[] = [];
      let duplicates = 0;
      for (const event of request.events) {
        const { facts } = event;
        if (sql.findEvent.get(senderKey, facts.key)) {
          duplicates++;
          continue;
        }
        const record = recordEvent(facts, event, {
          receivedAt,
          mediaWaitMs: request.mediaWaitMs,
          unsentBefore:
            facts.messageId !== null && sql.findUnsend.get(senderKey, facts.messageId) !== undefined,
        });
        const scope = serialScope(facts.serialPrefix, senderKey, receivedAt);
        const { last } = sql.nextSerial.get(senderKey, scope.prefix, scope.day) as { last: number };
        const serialNumber = formatSerialNumber(scope.prefix, last, receivedAt);
        const { id } = sql.insertEvent.get(
          senderKey,
          facts.key,
          serialNumber,
          facts.type,
          facts.mode,
          facts.conversation,
          facts.userId,
          facts.messageId,
          facts.timestamp,
          receivedAt,
          record.body,
          record.unsentAt,
        ) as { id: number };
        if (record.media) {
          const { kind, state, goneReason } = record.media;
          sql.insertMedia.run(id, senderKey, facts.messageId, kind, state, receivedAt, goneReason);
          if (state === "pending") signals.add("media");
        }
        if (record.delivery) {
          const { relayAt } = record.delivery;
          sql.insertDelivery.run(
            id,
            senderKey,
            facts.conversation,
            facts.timestamp,
            request.partnerId,
            relayAt,
            receivedAt,
          );
          this.#schedule.wake({ senderKey, conversation: facts.conversation }, request.partnerId, receivedAt);
          signals.add("delivery");
        }
        const conversation = conversationAfter(
          this.#conversation(senderKey, facts.conversation),
          facts,
          receivedAt,
        );
        if (conversation) this.#saveConversation(senderKey, facts.conversation, conversation);
        if (record.takesBack !== null) {
          const taken = this.#unsend(senderKey, record.takesBack, receivedAt);
          unsentFiles.push(...taken.files);
          if (taken.released) signals.add("delivery");
        }
        stored.push({
          serialNumber,
          facts,
          forward: event.forward,
          fetchesMedia: record.media?.state === "pending",
        });
      }
      return { stored, duplicates, unsentFiles };
    });
    for (const work of signals) this.#signals.signal(work);
    return result;
  }

  onWork(work: Work, wake: () => void): void {
    this.#signals.onWork(work, wake);
  }

  // What sending needs of a conversation, as stored.
  #conversation(senderKey: string, conversation: string): ConversationState | null {
    return toConversationState(
      this.#sql.conversationState.get(senderKey, conversation) as ConversationRow | undefined,
    );
  }

  #saveConversation(senderKey: string, conversation: string, state: ConversationState): void {
    this.#sql.saveConversation.run(
      senderKey,
      conversation,
      state.lastEventAt,
      state.lastMode,
      state.replyToken,
      state.replyTokenAt,
      state.replyTokenUsedBy,
    );
  }

  // Deletes the text and content of an unsent message; answers the stored files to remove, and whether a
  // delivery held back for its attachment may go now.
  #unsend(senderKey: string, messageId: string, now: number): { files: string[]; released: boolean } {
    const sql = this.#sql;
    const taken = sql.unsendTargets.all(senderKey, messageId) as Array<{ id: number; body: string }>;
    const files: string[] = [];
    let released = false;
    for (const { id, body } of taken) {
      sql.scrubEvent.run(scrubbed(body), now, id);
      const media = sql.mediaGone.get("unsent", now, id) as { path: string | null } | undefined;
      if (media?.path) files.push(media.path);
      released = this.#releaseGate(id, now) || released;
    }
    return { files, released };
  }

  // A message held back for its attachment may go now; answers whether one was.
  #releaseGate(eventId: number, now: number): boolean {
    const delivery = this.#sql.releaseGate.get(now, eventId, now) as
      | { sender_key: string; conversation: string; partner_id: string }
      | undefined;
    if (!delivery) return false;
    const { sender_key: senderKey, conversation, partner_id: partnerId } = delivery;
    this.#schedule.wake({ senderKey, conversation }, partnerId, now);
    return true;
  }

  async claimConversations(request: ClaimRequest): Promise<ConversationClaim[]> {
    const { owner, limit, batchSize, now, leaseMs } = request;
    const claims: ConversationClaim[] = [];
    for (const ref of this.#schedule.lease(now, limit, request.slots, owner, now + leaseMs)) {
      const rows = this.#waitingDeliveries(batchSize).all(
        ref.senderKey,
        ref.conversation,
      ) as unknown as TaskRow[];
      const dueRows = takeWhile(rows, (row) => row.next_attempt_at <= now);
      // The wake-up was early (the head is waiting for a retry) or stale (nothing waits): correct it.
      if (dueRows.length === 0) this.#schedule.release(ref, owner, rows[0]?.next_attempt_at ?? null);
      else claims.push({ ...ref, owner, until: now + leaseMs, deliveries: dueRows.map(toTask) });
    }
    // What was read may have been committed by a write whose sync is still under way: it must be on disk
    // before it goes to a partner.
    await this.#writes.synced();
    return claims;
  }

  #waitingDeliveries(limit: number): StatementSync {
    let statement = this.#waiting.get(limit);
    if (!statement) {
      statement = this.db.prepare(waitingDeliveriesSql(limit));
      this.#waiting.set(limit, statement);
    }
    return statement;
  }

  completeClaim(claim: ClaimRef, outcomes: DeliveryOutcome[]): Promise<void> {
    // Not waiting for the sync: an outcome a crash takes back only means the delivery is made again.
    const recorded = this.#writes.run(
      () => {
        const sql = this.#sql;
        for (const outcome of outcomes) {
          const nextAttemptAt = outcome.state === "retrying" ? outcome.nextAttemptAt : outcome.at;
          sql.recordOutcome.run(
            outcome.state,
            nextAttemptAt,
            outcome.at,
            outcome.status,
            outcome.error,
            outcome.eventId,
          );
        }
        const head = sql.headDue.get(claim.senderKey, claim.conversation) as
          | { next_attempt_at: number }
          | undefined;
        return head?.next_attempt_at ?? null;
      },
      { durable: false },
    );
    // Released only once recorded: should that fail, the lease runs out first and the events come again.
    return recorded.then((nextAt) => this.#schedule.release(claim, claim.owner, nextAt));
  }

  async listDeliveries(
    filter: DeliveryFilter,
    page: { after: number; limit: number },
  ): Promise<DeliveryRecord[]> {
    const { where, params } = deliveryWhere(filter);
    const rows = this.db
      .prepare(
        `SELECT d.event_id, e.serial_number, d.sender_key, d.conversation, e.type, d.state, d.attempts, d.last_status,
           d.last_error, e.received_at, d.updated_at, d.next_attempt_at
         FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE ${where} AND d.event_id > ? ORDER BY d.event_id LIMIT ?`,
      )
      .all(...params, page.after, page.limit) as Array<Record<string, SQLOutputValue>>;
    return rows.map((row) => ({
      eventId: Number(row.event_id),
      serialNumber: String(row.serial_number),
      senderKey: String(row.sender_key),
      conversation: String(row.conversation),
      eventType: String(row.type),
      state: row.state as DeliveryState,
      attempts: Number(row.attempts),
      lastStatus: row.last_status === null ? null : Number(row.last_status),
      lastError: row.last_error === null ? null : String(row.last_error),
      receivedAt: Number(row.received_at),
      updatedAt: Number(row.updated_at),
      nextAttemptAt: Number(row.next_attempt_at),
    }));
  }

  async countDeliveries(filter: DeliveryFilter): Promise<number> {
    const { where, params } = deliveryWhere(filter);
    const row = this.db
      .prepare(`SELECT count(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where}`)
      .get(...params) as { n: number };
    return row.n;
  }

  async replayDeliveries(filter: DeliveryFilter, now: number, limit: number): Promise<string[]> {
    const { where, params } = deliveryWhere(filter);
    const replayed = await this.#writes.run(() => {
      const rows = this.db
        .prepare(
          `SELECT d.event_id, d.sender_key, d.conversation, d.partner_id, e.serial_number
           FROM deliveries d JOIN events e ON e.id = d.event_id
           WHERE ${where} ORDER BY d.event_id LIMIT ?`,
        )
        .all(...params, limit) as Array<{
        event_id: number;
        sender_key: string;
        conversation: string;
        partner_id: string;
        serial_number: string;
      }>;
      for (const row of rows) {
        this.#sql.replay.run(now, row.event_id);
        this.#schedule.wake(
          { senderKey: row.sender_key, conversation: row.conversation },
          row.partner_id,
          now,
        );
      }
      return rows.map((row) => row.serial_number);
    });
    if (replayed.length > 0) this.#signals.signal("delivery");
    return replayed;
  }

  async deliveryStats(): Promise<{
    pending: number;
    retrying: number;
    dead: number;
    oldestWaitingAt: number | null;
  }> {
    const waiting = this.#sql.waitingStats.get() as {
      pending: number;
      retrying: number;
      oldest: number | null;
    };
    const { dead } = this.#sql.deadCount.get() as { dead: number };
    return {
      pending: waiting.pending ?? 0,
      retrying: waiting.retrying ?? 0,
      dead,
      oldestWaitingAt: waiting.oldest,
    };
  }

  async channelActivity(senderKeys: readonly string[], since: number): Promise<ChannelActivity[]> {
    const sql = this.#sql;
    return senderKeys.map((senderKey) => {
      const waiting = sql.channelWaiting.get(senderKey) as {
        pending: number | null;
        retrying: number | null;
        oldest: number | null;
      };
      return {
        senderKey,
        received: (sql.channelReceived.get(senderKey, since) as { n: number }).n,
        delivered: (sql.channelDelivered.get(senderKey, since) as { n: number }).n,
        lastReceivedAt: (sql.channelLastReceived.get(senderKey) as { at: number | null }).at,
        pending: waiting.pending ?? 0,
        retrying: waiting.retrying ?? 0,
        dead: (sql.channelDead.get(senderKey) as { n: number }).n,
        oldestWaitingAt: waiting.oldest,
      };
    });
  }

  async nextDueAt(now: number, slots: PartnerSlots): Promise<number | null> {
    return this.#schedule.nextDueAt(now, slots);
  }

  claimMedia(request: { owner: string; limit: number; now: number; leaseMs: number }): Promise<MediaJob[]> {
    const { owner, limit, now, leaseMs } = request;
    return this.#writes.run(() => {
      const rows = this.#sql.dueMedia.all(now, limit) as Array<{
        event_id: number;
        sender_key: string;
        message_id: string;
        kind: MediaKind;
        attempts: number;
        received_at: number;
      }>;
      return rows.map((row): MediaJob => {
        this.#sql.leaseMedia.run(owner, now + leaseMs, row.event_id);
        return {
          eventId: row.event_id,
          owner,
          senderKey: row.sender_key,
          messageId: row.message_id,
          kind: row.kind,
          attempts: row.attempts,
          receivedAt: row.received_at,
        };
      });
    });
  }

  async finishMedia(job: MediaJob, outcome: MediaOutcome, now: number): Promise<boolean> {
    let released = false;
    const counted = await this.#writes.run(() => {
      const sql = this.#sql;
      let changed: number | bigint;
      if (outcome.state === "stored") {
        const { contentType, size, sha256, path } = outcome;
        changed = sql.mediaStored.run(contentType, size, sha256, path, now, job.eventId, job.owner).changes;
      } else if (outcome.state === "gone") {
        changed = sql.mediaGaveUp.run(outcome.reason, now, job.eventId, job.owner).changes;
      } else {
        changed = sql.mediaRetry.run(
          outcome.nextAttemptAt,
          outcome.error,
          now,
          job.eventId,
          job.owner,
        ).changes;
      }
      if (changed && outcome.state !== "pending") released = this.#releaseGate(job.eventId, now);
      return changed > 0;
    });
    if (released) this.#signals.signal("delivery");
    return counted;
  }

  async nextMediaDueAt(): Promise<number | null> {
    const row = this.#sql.nextMediaDue.get() as { next_attempt_at: number | null };
    return row.next_attempt_at;
  }

  async findMessage(senderKey: string, serialNumber: string): Promise<StoredMessage | null> {
    const row = this.#sql.findMessage.get(senderKey, serialNumber) as MessageRow | undefined;
    return row ? toStoredMessage(row) : null;
  }

  async findEvents(q: EventQuery): Promise<EventRecord[]> {
    const rows = this.#sql.findEvents.all(
      JSON.stringify(q.senderKeys),
      q.serialNumber ?? null,
      q.messageId ?? null,
      q.userId ?? null,
      q.from ?? 0,
      q.to ?? Number.MAX_SAFE_INTEGER,
      q.before ?? Number.MAX_SAFE_INTEGER,
      q.limit,
      q.conversation ?? null,
    ) as unknown as EventLookupRow[];
    return rows.map(toEventRecord);
  }

  async listSends(senderKey: string, conversation: string, limit: number): Promise<SendListing[]> {
    const rows = this.#sql.listSends.all(senderKey, conversation, limit) as unknown as SendListingRow[];
    return rows.map(toSendListing);
  }

  beginSend(send: NewSend, now: number, timing: SendTiming): Promise<BeginSend> {
    return this.#writes.run((): BeginSend => {
      const sql = this.#sql;
      const previous = toSendRecord(
        sql.findSend.get(send.senderKey, send.serialNumber) as SendRow | undefined,
      );
      const conversation = this.#conversation(send.senderKey, send.conversation);
      const { begin, write } = decideSend(previous, conversation, send.requestHash, now, timing);
      if (write) {
        sql.upsertSend.run(
          send.senderKey,
          send.serialNumber,
          send.partnerId,
          send.conversation,
          send.to,
          send.messages,
          send.notificationDisabled ? 1 : 0,
          send.requestHash,
          write.state,
          write.errorCode,
          now,
        );
      }
      return begin;
    });
  }

  claimReplyToken(
    senderKey: string,
    conversation: string,
    token: string,
    serialNumber: string,
  ): Promise<boolean> {
    return this.#writes.run(() => {
      const claimed = this.#sql.claimReplyToken.get(serialNumber, senderKey, conversation, token) as
        | { reply_token_at: number | null }
        | undefined;
      if (claimed) this.#sql.noteAttempt.run("reply", token, claimed.reply_token_at, senderKey, serialNumber);
      return claimed !== undefined;
    });
  }

  notePush(senderKey: string, serialNumber: string): Promise<void> {
    return this.#writes.run(() => {
      this.#sql.noteAttempt.run("push", null, null, senderKey, serialNumber);
    });
  }

  finishSend(senderKey: string, serialNumber: string, outcome: SendOutcome, now: number): Promise<void> {
    return this.#writes.run(() => {
      const sql = this.#sql;
      if ("answer" in outcome) {
        const { answer } = outcome;
        sql.finishSend.run(
          "sent",
          answer.method,
          answer.requestId,
          JSON.stringify(answer),
          null,
          now,
          senderKey,
          serialNumber,
        );
      } else if ("unknown" in outcome) {
        const { code } = outcome.unknown;
        sql.finishSend.run(
          "unknown",
          null,
          null,
          JSON.stringify(outcome.unknown),
          code,
          now,
          senderKey,
          serialNumber,
        );
      } else {
        const { code } = outcome.error;
        sql.finishSend.run(
          "failed",
          null,
          null,
          JSON.stringify(outcome.error),
          code,
          now,
          senderKey,
          serialNumber,
        );
      }
      // An attempt whose answer is known is over; one that may have reached LINE stays for the repeat.
      if (!("error" in outcome && outcome.interrupted))
        sql.noteAttempt.run(null, null, null, senderKey, serialNumber);
    });
  }

  async getDirectoryEntry(
    senderKey: string,
    userId: string,
  ): Promise<{ e164: string | null; agreeType: number | null } | null> {
    const row = this.#sql.getDirectoryEntry.get(senderKey, userId) as
      | { e164: string | null; agree_type: number | null }
      | undefined;
    return row ? { e164: row.e164, agreeType: row.agree_type } : null;
  }

  setDirectoryEntry(
    senderKey: string,
    userId: string,
    fields: { e164?: string | undefined; agreeType?: number | undefined },
    now: number,
  ): Promise<void> {
    return this.#writes.run(() => {
      this.#sql.setDirectoryEntry.run(
        senderKey,
        userId,
        fields.e164 ?? null,
        fields.agreeType ?? null,
        now,
        fields.e164 === undefined ? 0 : 1,
        fields.agreeType === undefined ? 0 : 1,
      );
    });
  }

  recordUploads(
    partnerId: string,
    files: ReadonlyArray<{ name: string; size: number }>,
    now: number,
  ): Promise<void> {
    return this.#writes.run(() => {
      for (const file of files) this.#sql.recordUpload.run(file.name, partnerId, file.size, now);
    });
  }

  async uploadUsage(partnerId: string, since: number): Promise<{ files: number; bytes: number }> {
    const row = this.#sql.uploadUsage.get(partnerId, since) as { files: number; bytes: number | null };
    return { files: row.files, bytes: row.bytes ?? 0 };
  }

  forgetUploads(before: number): Promise<void> {
    return this.#writes.run(() => {
      this.#sql.forgetUploads.run(before);
    });
  }

  // The operator plane (operator-data.ts).
  configVersion: OperatorData["configVersion"] = () => this.#operators.configVersion();
  listConfigEntries: OperatorData["listConfigEntries"] = () => this.#operators.listConfigEntries();
  createConfigEntry: OperatorData["createConfigEntry"] = (e) => this.#operators.createConfigEntry(e);
  updateConfigEntry: OperatorData["updateConfigEntry"] = (...a) => this.#operators.updateConfigEntry(...a);
  deleteConfigEntry: OperatorData["deleteConfigEntry"] = (...a) => this.#operators.deleteConfigEntry(...a);
  listCredentials: OperatorData["listCredentials"] = (kind) => this.#operators.listCredentials(kind);
  addCredential: OperatorData["addCredential"] = (c) => this.#operators.addCredential(c);
  revokeCredential: OperatorData["revokeCredential"] = (...a) => this.#operators.revokeCredential(...a);
  touchCredentials: OperatorData["touchCredentials"] = (...a) => this.#operators.touchCredentials(...a);
  createSession: OperatorData["createSession"] = (s) => this.#operators.createSession(s);
  findSession: OperatorData["findSession"] = (...a) => this.#operators.findSession(...a);
  endSessions: OperatorData["endSessions"] = (...a) => this.#operators.endSessions(...a);
  appendAudit: OperatorData["appendAudit"] = (e) => this.#operators.appendAudit(e);
  listAudit: OperatorData["listAudit"] = (f) => this.#operators.listAudit(f);

  // Issued channel tokens (channel-tokens.ts).
  listChannelTokens: ChannelTokens["listChannelTokens"] = () => this.#tokens.listChannelTokens();
  leaseChannelToken: ChannelTokens["leaseChannelToken"] = (...a) => this.#tokens.leaseChannelToken(...a);
  saveChannelToken: ChannelTokens["saveChannelToken"] = (...a) => this.#tokens.saveChannelToken(...a);

  // Retention (retention.ts).
  purgeBatch: Retention["purgeBatch"] = (r) => this.#retention.purgeBatch(r);
  purgedThrough: Retention["purgedThrough"] = () => this.#retention.purgedThrough();
  eraseUser: Retention["eraseUser"] = (...a) => this.#retention.eraseUser(...a);

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    // Let queued writes commit before closing.
    await this.#writes.run(() => undefined);
    this.db.close();
    this.#release();
  }
}

// The WHERE clause of a delivery filter over deliveries d joined with events e, and its parameters.
function deliveryWhere(filter: DeliveryFilter): { where: string; params: SQLInputValue[] } {
  const conditions = [`d.sender_key IN (${filter.senderKeys.map(() => "?").join(", ") || "NULL"})`];
  const params: SQLInputValue[] = [...filter.senderKeys];
  if (filter.state) {
    conditions.push("d.state = ?");
    params.push(filter.state);
  }
  if (filter.conversation) {
    conditions.push("d.conversation = ?");
    params.push(filter.conversation);
  }
  if (filter.serialNumbers) {
    conditions.push(`e.serial_number IN (${filter.serialNumbers.map(() => "?").join(", ") || "NULL"})`);
    params.push(...filter.serialNumbers);
  }
  if (filter.from !== undefined) {
    conditions.push("e.received_at >= ?");
    params.push(filter.from);
  }
  if (filter.to !== undefined) {
    conditions.push("e.received_at < ?");
    params.push(filter.to);
  }
  return { where: conditions.join(" AND "), params };
}

// A conversation's waiting deliveries in order, at most `limit` (written into the SQL: a bound LIMIT made
// this query, run for every claim, three times slower).
function waitingDeliveriesSql(limit: number): string {
  return `SELECT d.event_id, e.serial_number, d.sender_key, d.partner_id, d.conversation, d.attempts,
      d.next_attempt_at, e.received_at, d.created_at, e.body, u.e164, u.agree_type
    FROM deliveries d
    JOIN events e ON e.id = d.event_id
    LEFT JOIN user_directory u ON u.sender_key = d.sender_key AND u.user_id = e.user_id
    WHERE d.sender_key = ? AND d.conversation = ? AND d.${WAITING}
    ORDER BY d.line_timestamp, d.event_id LIMIT ${Math.trunc(limit)}`;
}

function takeWhile<T>(items: T[], predicate: (item: T) => boolean): T[] {
  const end = items.findIndex((item) => !predicate(item));
  return end === -1 ? items : items.slice(0, end);
}

function toTask(row: TaskRow): DeliveryTask {
  return {
    eventId: row.event_id,
    serialNumber: row.serial_number,
    senderKey: row.sender_key,
    partnerId: row.partner_id,
    conversation: row.conversation,
    attempts: row.attempts,
    receivedAt: row.received_at,
    retryFrom: row.created_at,
    dueAt: row.next_attempt_at,
    body: row.body,
    e164: row.e164,
    agreeType: row.agree_type,
  };
}

function prepareStatements(db: DatabaseSync) {
  const prepare = (sql: string): StatementSync => db.prepare(sql);
  return {
    findEvent: prepare("SELECT 1 FROM events WHERE sender_key = ? AND event_key = ?"),
    nextSerial: prepare(
      `INSERT INTO serial_counters (sender_key, prefix, day, last) VALUES (?, ?, ?, 1)
       ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last`,
    ),
    insertEvent: prepare(
      `INSERT INTO events (sender_key, event_key, serial_number, type, mode, conversation, user_id, message_id,
         line_timestamp, received_at, body, unsent_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    insertDelivery: prepare(
      `INSERT INTO deliveries (event_id, sender_key, conversation, line_timestamp, partner_id, state,
         next_attempt_at, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?7)`,
    ),
    findUnsend: prepare("SELECT 1 FROM events WHERE sender_key = ? AND message_id = ? AND type = 'unsend'"),
    unsendTargets: prepare(
      `SELECT id, body FROM events
       WHERE sender_key = ? AND message_id = ? AND type <> 'unsend' AND unsent_at IS NULL`,
    ),
    scrubEvent: prepare("UPDATE events SET body = ?, unsent_at = ? WHERE id = ?"),
    insertMedia: prepare(
      `INSERT INTO media (event_id, sender_key, message_id, kind, state, next_attempt_at, created_at, updated_at,
         gone_reason)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?7)`,
    ),
    // Holding a message for its attachment means a later next_attempt_at on its first attempt.
    releaseGate: prepare(
      `UPDATE deliveries SET next_attempt_at = ?1
       WHERE event_id = ?2 AND state = 'pending' AND attempts = 0 AND next_attempt_at > ?3
       RETURNING sender_key, conversation, partner_id`,
    ),
    // While leased, next_attempt_at is the lease's end, as for conversations.
    dueMedia: prepare(
      `SELECT m.event_id, m.sender_key, m.message_id, m.kind, m.attempts, e.received_at
       FROM media m JOIN events e ON e.id = m.event_id
       WHERE m.state = 'pending' AND m.next_attempt_at <= ? ORDER BY m.next_attempt_at LIMIT ?`,
    ),
    leaseMedia: prepare(
      "UPDATE media SET lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2 WHERE event_id = ?3",
    ),
    mediaStored: prepare(
      `UPDATE media SET state = 'stored', content_type = ?, size = ?, sha256 = ?, path = ?, updated_at = ?,
         attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, last_error = NULL
       WHERE event_id = ? AND state = 'pending' AND lease_owner = ?`,
    ),
    mediaGaveUp: prepare(
      `UPDATE media SET state = 'gone', gone_reason = ?, updated_at = ?, attempts = attempts + 1,
         lease_owner = NULL, lease_until = NULL
       WHERE event_id = ? AND state = 'pending' AND lease_owner = ?`,
    ),
    // The user unsent the message: whoever holds the job, and whatever state it is in.
    mediaGone: prepare(
      `UPDATE media SET state = 'gone', gone_reason = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL
       WHERE event_id = ? AND state <> 'gone' RETURNING path`,
    ),
    mediaRetry: prepare(
      `UPDATE media SET next_attempt_at = ?, attempts = attempts + 1, last_error = ?, updated_at = ?,
         lease_owner = NULL, lease_until = NULL
       WHERE event_id = ? AND state = 'pending' AND lease_owner = ?`,
    ),
    nextMediaDue: prepare(
      "SELECT min(next_attempt_at) AS next_attempt_at FROM media WHERE state = 'pending'",
    ),
    // What sending needs of a conversation, as core/event-record.ts's conversationAfter decides it.
    saveConversation: prepare(
      `INSERT INTO conversations (sender_key, conversation, last_event_at, last_mode, reply_token, reply_token_at,
         reply_token_used_by)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
       ON CONFLICT DO UPDATE SET last_event_at = ?3, last_mode = ?4, reply_token = ?5, reply_token_at = ?6,
         reply_token_used_by = ?7`,
    ),
    conversationState: prepare(
      `SELECT last_event_at, last_mode, reply_token, reply_token_at, reply_token_used_by FROM conversations
       WHERE sender_key = ? AND conversation = ?`,
    ),
    claimReplyToken: prepare(
      `UPDATE conversations SET reply_token_used_by = ?1
       WHERE sender_key = ?2 AND conversation = ?3 AND reply_token = ?4 AND reply_token_used_by IS NULL
       RETURNING reply_token_at`,
    ),
    noteAttempt: prepare(
      `UPDATE sends SET attempt_method = ?, attempt_token = ?, attempt_token_at = ?
       WHERE sender_key = ? AND serial_number = ?`,
    ),
    findSend: prepare(
      `SELECT state, request_hash, answer, updated_at, attempt_method, attempt_token, attempt_token_at FROM sends
       WHERE sender_key = ? AND serial_number = ?`,
    ),
    upsertSend: prepare(
      `INSERT INTO sends (sender_key, serial_number, partner_id, conversation, recipient, messages, notification_disabled,
         request_hash, state, error_code, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
       ON CONFLICT DO UPDATE SET state = excluded.state, error_code = excluded.error_code, attempts = attempts + 1,
         updated_at = excluded.updated_at`,
    ),
    finishSend: prepare(
      `UPDATE sends SET state = ?, method = ?, line_request_id = ?, answer = ?, error_code = ?, updated_at = ?
       WHERE sender_key = ? AND serial_number = ?`,
    ),
    getDirectoryEntry: prepare(
      "SELECT e164, agree_type FROM user_directory WHERE sender_key = ? AND user_id = ?",
    ),
    // ?6 and ?7 say whether e164 and agree_type were given; a field not given keeps its value.
    setDirectoryEntry: prepare(
      `INSERT INTO user_directory (sender_key, user_id, e164, agree_type, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT DO UPDATE SET
         e164 = CASE WHEN ?6 THEN excluded.e164 ELSE e164 END,
         agree_type = CASE WHEN ?7 THEN excluded.agree_type ELSE agree_type END,
         updated_at = excluded.updated_at`,
    ),
    // A replayed delivery starts over: due now, with a fresh retry window; its attempts stay on record.
    waitingStats: prepare(
      `SELECT sum(d.state = 'pending') AS pending, sum(d.state = 'retrying') AS retrying, min(d.created_at) AS oldest
       FROM deliveries d WHERE d.${WAITING}`,
    ),
    deadCount: prepare("SELECT count(*) AS dead FROM deliveries WHERE state = 'dead'"),
    channelReceived: prepare("SELECT count(*) AS n FROM events WHERE sender_key = ?1 AND received_at >= ?2"),
    channelLastReceived: prepare("SELECT max(received_at) AS at FROM events WHERE sender_key = ?"),
    channelDelivered: prepare(
      "SELECT count(*) AS n FROM deliveries WHERE sender_key = ?1 AND state = 'delivered' AND updated_at >= ?2",
    ),
    channelWaiting: prepare(
      `SELECT sum(state = 'pending') AS pending, sum(state = 'retrying') AS retrying, min(created_at) AS oldest
       FROM deliveries WHERE sender_key = ? AND ${WAITING}`,
    ),
    channelDead: prepare("SELECT count(*) AS n FROM deliveries WHERE sender_key = ? AND state = 'dead'"),
    replay: prepare(
      `UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, created_at = ?1, updated_at = ?1
       WHERE event_id = ?2`,
    ),
    findMessage: prepare(
      `SELECT e.id, e.serial_number, e.body, e.unsent_at, e.erased_at, m.kind, m.state, m.content_type, m.size, m.sha256, m.path,
         m.gone_reason
       FROM events e LEFT JOIN media m ON m.event_id = e.id
       WHERE e.sender_key = ? AND e.serial_number = ?`,
    ),
    findEvents: prepare(
      `SELECT e.id, e.sender_key, e.serial_number, e.type, e.conversation, e.user_id, e.message_id, e.received_at,
         e.unsent_at, e.body, d.state, d.attempts, d.last_status, d.last_error, d.updated_at
       FROM events e LEFT JOIN deliveries d ON d.event_id = e.id
       WHERE e.sender_key IN (SELECT value FROM json_each(?1))
         AND (?2 IS NULL OR e.serial_number = ?2) AND (?3 IS NULL OR e.message_id = ?3)
         AND (?4 IS NULL OR e.user_id = ?4) AND e.received_at >= ?5 AND e.received_at < ?6 AND e.id < ?7
         AND (?9 IS NULL OR e.conversation = ?9)
       ORDER BY e.id DESC LIMIT ?8`,
    ),
    listSends: prepare(
      `SELECT ${SEND_LISTING_COLUMNS} FROM sends WHERE sender_key = ? AND conversation = ?
       ORDER BY created_at DESC, serial_number DESC LIMIT ?`,
    ),
    waitingConversations: prepare(
      `SELECT sender_key, conversation, max(partner_id) AS partner_id FROM deliveries WHERE ${WAITING}
       GROUP BY sender_key, conversation`,
    ),
    headDue: prepare(
      `SELECT next_attempt_at FROM deliveries WHERE sender_key = ? AND conversation = ? AND ${WAITING}
       ORDER BY line_timestamp, event_id LIMIT 1`,
    ),
    recordUpload: prepare("INSERT INTO uploads (name, partner_id, size, created_at) VALUES (?, ?, ?, ?)"),
    uploadUsage: prepare(
      "SELECT count(*) AS files, sum(size) AS bytes FROM uploads WHERE partner_id = ? AND created_at >= ?",
    ),
    forgetUploads: prepare("DELETE FROM uploads WHERE created_at < ?"),
    recordOutcome: prepare(
      `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, updated_at = ?,
         last_status = ?, last_error = ?
       WHERE event_id = ?`,
    ),
  };
}
