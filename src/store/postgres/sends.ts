// Sends on PostgreSQL: a send's serial_number is decided by one instance at a time (an advisory lock on it), the
// conversation's reply token claimed atomically; the core decides (core/send-decision.ts).
import type {
  BeginSend,
  Directory,
  NewSend,
  SendListing,
  SendOutcome,
  Sends,
  Uploads,
} from "../../app/store.ts";
import { decideSend, type SendTiming } from "../../core/send-decision.ts";
import {
  type ConversationRow,
  type SendListingRow,
  type SendRow,
  toConversationState,
  toSendListing,
  toSendRecord,
} from "../rows.ts";
import type { Pool } from "./connection.ts";
import { json } from "./tx.ts";

/** {@link Sends} over a pool. */
export function postgresSends(pool: Pool): Sends {
  return {
    async listSends(senderKey: string, conversation: string, limit: number): Promise<SendListing[]> {
      const rows = await pool<SendListingRow[]>`
        SELECT serial_number, partner_id, state, method, attempts, error_code, line_request_id, messages, created_at,
          updated_at
        FROM sends WHERE sender_key = ${senderKey} AND conversation = ${conversation}
        ORDER BY created_at DESC, serial_number DESC LIMIT ${limit}`;
      return rows.map(toSendListing);
    },

    beginSend(send: NewSend, now: number, timing: SendTiming): Promise<BeginSend> {
      return pool.begin(async (tx) => {
        // Two instances given the same serial_number at the same moment decide one after the other.
        await tx`SELECT pg_advisory_xact_lock(hashtext(${`${send.senderKey}\n${send.serialNumber}`}))`;
        const [row] = await tx<SendRow[]>`
          SELECT state, request_hash, answer, updated_at, attempt_method, attempt_token, attempt_token_at
          FROM sends WHERE sender_key = ${send.senderKey} AND serial_number = ${send.serialNumber}`;
        const previous = toSendRecord(row);
        const [chat] = await tx<ConversationRow[]>`
          SELECT last_event_at, last_mode, reply_token, reply_token_at, reply_token_used_by FROM conversations
          WHERE sender_key = ${send.senderKey} AND conversation = ${send.conversation}`;
        const conversation = toConversationState(chat);
        const { begin, write } = decideSend(previous, conversation, send.requestHash, now, timing);
        if (write) {
          await tx`INSERT INTO sends (sender_key, serial_number, partner_id, conversation, recipient, messages,
              notification_disabled, request_hash, state, error_code, created_at, updated_at)
            VALUES (${send.senderKey}, ${send.serialNumber}, ${send.partnerId}, ${send.conversation}, ${send.to},
              ${send.messages}, ${send.notificationDisabled}, ${send.requestHash}, ${write.state}, ${write.errorCode},
              ${now}, ${now})
            ON CONFLICT (sender_key, serial_number) DO UPDATE SET state = EXCLUDED.state,
              error_code = EXCLUDED.error_code, attempts = sends.attempts + 1, updated_at = EXCLUDED.updated_at`;
        }
        return begin;
      });
    },

    claimReplyToken(senderKey, conversation, token, serialNumber): Promise<boolean> {
      return pool.begin(async (tx) => {
        // Used at most once in the cluster: the first update to find it unused takes it.
        const [claimed] = await tx<Array<{ reply_token_at: number | null }>>`
          UPDATE conversations SET reply_token_used_by = ${serialNumber}
          WHERE sender_key = ${senderKey} AND conversation = ${conversation} AND reply_token = ${token}
            AND reply_token_used_by IS NULL
          RETURNING reply_token_at`;
        if (!claimed) return false;
        await tx`UPDATE sends SET attempt_method = 'reply', attempt_token = ${token},
            attempt_token_at = ${claimed.reply_token_at}
          WHERE sender_key = ${senderKey} AND serial_number = ${serialNumber}`;
        return true;
      });
    },

    async notePush(senderKey, serialNumber): Promise<void> {
      await pool`UPDATE sends SET attempt_method = 'push', attempt_token = NULL, attempt_token_at = NULL
        WHERE sender_key = ${senderKey} AND serial_number = ${serialNumber}`;
    },

    async finishSend(senderKey, serialNumber, outcome: SendOutcome, now): Promise<void> {
      const [state, method, requestId, answer, code] =
        "answer" in outcome
          ? (["sent", outcome.answer.method, outcome.answer.requestId, outcome.answer, null] as const)
          : "unknown" in outcome
            ? (["unknown", null, null, outcome.unknown, outcome.unknown.code] as const)
            : (["failed", null, null, outcome.error, outcome.error.code] as const);
      // An attempt whose answer is known is over; one that may have reached LINE stays for the repeat.
      const attemptOver = !("error" in outcome && outcome.interrupted);
      await pool`UPDATE sends SET state = ${state}, method = ${method}, line_request_id = ${requestId},
          answer = ${JSON.stringify(answer)}, error_code = ${code}, updated_at = ${now},
          attempt_method = CASE WHEN ${attemptOver} THEN NULL ELSE attempt_method END,
          attempt_token = CASE WHEN ${attemptOver} THEN NULL ELSE attempt_token END,
          attempt_token_at = CASE WHEN ${attemptOver} THEN NULL ELSE attempt_token_at END
        WHERE sender_key = ${senderKey} AND serial_number = ${serialNumber}`;
    },
  };
}

/** {@link Directory} over a pool. */
export function postgresDirectory(pool: Pool): Directory {
  return {
    async getDirectoryEntry(senderKey, userId) {
      const [row] = await pool<Array<{ e164: string | null; agree_type: number | null }>>`
        SELECT e164, agree_type FROM user_directory WHERE sender_key = ${senderKey} AND user_id = ${userId}`;
      return row ? { e164: row.e164, agreeType: row.agree_type } : null;
    },

    async setDirectoryEntry(senderKey, userId, fields, now) {
      // A field left undefined keeps its value.
      const e164 = fields.e164 !== undefined;
      const agree = fields.agreeType !== undefined;
      await pool`INSERT INTO user_directory (sender_key, user_id, e164, agree_type, updated_at)
        VALUES (${senderKey}, ${userId}, ${fields.e164 ?? null}, ${fields.agreeType ?? null}, ${now})
        ON CONFLICT (sender_key, user_id) DO UPDATE SET
          e164 = CASE WHEN ${e164} THEN EXCLUDED.e164 ELSE user_directory.e164 END,
          agree_type = CASE WHEN ${agree} THEN EXCLUDED.agree_type ELSE user_directory.agree_type END,
          updated_at = EXCLUDED.updated_at`;
    },
  };
}

/** {@link Uploads} over a pool. */
export function postgresUploads(pool: Pool): Uploads {
  return {
    async recordUploads(partnerId, files, now) {
      if (files.length === 0) return;
      await pool`INSERT INTO uploads (name, partner_id, size, created_at)
        SELECT t.name, ${partnerId}, t.size, ${now}
        FROM jsonb_to_recordset(${json(
          pool,
          files.map((file) => ({ name: file.name, size: file.size })),
        )}) AS t(name text, size bigint)`;
    },

    async uploadUsage(partnerId, since) {
      const [row] = await pool<Array<{ files: number; bytes: number | null }>>`
        SELECT count(*)::integer AS files, sum(size)::bigint AS bytes FROM uploads
        WHERE partner_id = ${partnerId} AND created_at >= ${since}`;
      return { files: row?.files ?? 0, bytes: row?.bytes ?? 0 };
    },

    async forgetUploads(before) {
      await pool`DELETE FROM uploads WHERE created_at < ${before}`;
    },
  };
}
