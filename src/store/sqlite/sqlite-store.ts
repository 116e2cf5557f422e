// The embedded store: one SQLite file (WAL, full sync), writes group-committed. One talkgate process per file.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type {
  ConversationClaim,
  DeliveryOutcome,
  DeliveryTask,
  IngestRequest,
  IngestResult,
  Store,
  StoredEvent,
} from "../../app/ports.ts";
import { formatSerialNumber, serialScope } from "../../core/serial-number.ts";
import { GroupCommit } from "./group-commit.ts";
import { MIGRATIONS } from "./schema.ts";

const WAITING = "state IN ('pending', 'retrying')";

/** Opens (creating if needed) the SQLite database at `path` and brings its schema up to date. */
export function openSqliteStore(path: string): SqliteStore {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 1000;");
  migrate(db);
  return new SqliteStore(db);
}

function migrate(db: DatabaseSync): void {
  const { user_version: version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
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
  body: string;
  e164: string | null;
  agree_type: number | null;
}

/** The SQLite implementation of {@link Store}. */
export class SqliteStore implements Store {
  readonly db: DatabaseSync;
  readonly #writes: GroupCommit;
  readonly #sql: ReturnType<typeof prepareStatements>;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.#writes = new GroupCommit(db);
    this.#sql = prepareStatements(db);
    // Only this process uses the file, so leases left by an earlier run (killed or crashed) are void.
    db.exec(
      "UPDATE conversations SET lease_owner = NULL, lease_until = NULL, due_at = 0 WHERE lease_owner IS NOT NULL",
    );
  }

  ingest(request: IngestRequest): Promise<IngestResult> {
    return this.#writes.run(() => {
      const sql = this.#sql;
      const { senderKey, receivedAt } = request;
      const stored: StoredEvent[] = [];
      let duplicates = 0;
      for (const event of request.events) {
        const { facts } = event;
        if (sql.findEvent.get(senderKey, facts.key)) {
          duplicates++;
          continue;
        }
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
          event.body,
        ) as { id: number };
        if (event.forward) {
          sql.insertDelivery.run(
            id,
            senderKey,
            facts.conversation,
            facts.timestamp,
            request.partnerId,
            receivedAt,
          );
          sql.wakeConversation.run(senderKey, facts.conversation, receivedAt);
        }
        stored.push({ serialNumber, facts, forward: event.forward });
      }
      return { stored, duplicates };
    });
  }

  claimConversations(request: {
    owner: string;
    limit: number;
    batchSize: number;
    now: number;
    leaseMs: number;
  }): Promise<ConversationClaim[]> {
    const { owner, limit, batchSize, now, leaseMs } = request;
    return this.#writes.run(() => {
      const sql = this.#sql;
      const claims: ConversationClaim[] = [];
      const due = sql.dueConversations.all(now, now, limit) as Array<{
        sender_key: string;
        conversation: string;
      }>;
      for (const { sender_key: senderKey, conversation } of due) {
        const rows = sql.waitingDeliveries.all(senderKey, conversation, batchSize) as unknown as TaskRow[];
        const dueRows = takeWhile(rows, (row) => row.next_attempt_at <= now);
        if (dueRows.length === 0) {
          // The hint was early (the head is waiting for a retry) or stale (nothing waits): correct it.
          sql.setDue.run(rows[0]?.next_attempt_at ?? null, senderKey, conversation);
          continue;
        }
        sql.lease.run(owner, now + leaseMs, now + leaseMs, senderKey, conversation);
        claims.push({ senderKey, conversation, owner, deliveries: dueRows.map(toTask) });
      }
      return claims;
    });
  }

  completeClaim(claim: ConversationClaim, outcomes: DeliveryOutcome[]): Promise<void> {
    return this.#writes.run(() => {
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
      const head = sql.waitingDeliveries.get(claim.senderKey, claim.conversation, 1) as TaskRow | undefined;
      sql.release.run(head?.next_attempt_at ?? null, claim.senderKey, claim.conversation, claim.owner);
    });
  }

  async nextDueAt(): Promise<number | null> {
    const row = this.#sql.nextDue.get() as { due_at: number | null };
    return row.due_at;
  }

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    // Let queued writes commit before closing.
    await this.#writes.run(() => undefined);
    this.db.close();
  }
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
         line_timestamp, received_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    insertDelivery: prepare(
      `INSERT INTO deliveries (event_id, sender_key, conversation, line_timestamp, partner_id, state,
         next_attempt_at, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)`,
    ),
    // A leased conversation keeps its due_at (the lease's end): the worker holding it looks at the
    // new head when it releases the lease, and an earlier due_at would only make idle workers spin.
    wakeConversation: prepare(
      `INSERT INTO conversations (sender_key, conversation, due_at) VALUES (?, ?, ?)
       ON CONFLICT DO UPDATE SET due_at = min(coalesce(due_at, excluded.due_at), excluded.due_at)
       WHERE lease_owner IS NULL`,
    ),
    dueConversations: prepare(
      `SELECT sender_key, conversation FROM conversations
       WHERE due_at IS NOT NULL AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
       ORDER BY due_at LIMIT ?`,
    ),
    waitingDeliveries: prepare(
      `SELECT d.event_id, e.serial_number, d.sender_key, d.partner_id, d.conversation, d.attempts,
         d.next_attempt_at, e.received_at, e.body, u.e164, u.agree_type
       FROM deliveries d
       JOIN events e ON e.id = d.event_id
       LEFT JOIN user_directory u ON u.sender_key = d.sender_key AND u.user_id = e.user_id
       WHERE d.sender_key = ? AND d.conversation = ? AND d.${WAITING}
       ORDER BY d.line_timestamp, d.event_id LIMIT ?`,
    ),
    setDue: prepare("UPDATE conversations SET due_at = ? WHERE sender_key = ? AND conversation = ?"),
    // While leased, due_at is the lease's end: should the worker die, the conversation is due again then.
    lease: prepare(
      `UPDATE conversations SET lease_owner = ?, lease_until = ?, due_at = ?
       WHERE sender_key = ? AND conversation = ?`,
    ),
    recordOutcome: prepare(
      `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, updated_at = ?,
         last_status = ?, last_error = ?
       WHERE event_id = ?`,
    ),
    release: prepare(
      `UPDATE conversations SET due_at = ?, lease_owner = NULL, lease_until = NULL
       WHERE sender_key = ? AND conversation = ? AND lease_owner = ?`,
    ),
    nextDue: prepare("SELECT min(due_at) AS due_at FROM conversations WHERE due_at IS NOT NULL"),
  };
}
