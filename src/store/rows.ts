// Rows both databases answer with the same columns, and what they mean to the ports: one mapping, whatever
// the database (its SQL stays in its own folder).
import type {
  AuditEntry,
  ChannelTokenRow,
  Credential,
  DeliveryState,
  EventRecord,
  SendListing,
  StoredMessage,
} from "../app/store.ts";
import type { MediaKind } from "../core/attachment.ts";
import type { ConversationState } from "../core/event-record.ts";
import { asObject } from "../core/line-event.ts";
import type { SendRecord } from "../core/send-decision.ts";

/** An event with its attachment, if it has one (`events` LEFT JOIN `media`). */
export interface MessageRow {
  id: number;
  serial_number: string;
  body: string;
  unsent_at: number | null;
  erased_at: number | null;
  kind: MediaKind | null;
  state: "pending" | "stored" | "gone" | null;
  content_type: string | null;
  size: number | null;
  sha256: string | null;
  path: string | null;
  gone_reason: string | null;
}

export function toStoredMessage(row: MessageRow): StoredMessage {
  return {
    eventId: row.id,
    serialNumber: row.serial_number,
    event: asObject(JSON.parse(row.body)) ?? {},
    unsent: row.unsent_at !== null,
    erased: row.erased_at !== null,
    media:
      row.kind && row.state
        ? {
            kind: row.kind,
            state: row.state,
            contentType: row.content_type,
            size: row.size,
            sha256: row.sha256,
            path: row.path,
            goneReason: row.gone_reason,
          }
        : null,
  };
}

/** A `sends` row, as the send decision reads it. */
export interface SendRow {
  state: string;
  request_hash: string;
  answer: string | null;
  updated_at: number;
  attempt_method: "reply" | "push" | null;
  attempt_token: string | null;
  attempt_token_at: number | null;
}

export function toSendRecord(row: SendRow | undefined): SendRecord | null {
  if (!row) return null;
  return {
    state: row.state,
    requestHash: row.request_hash,
    answer: row.answer,
    updatedAt: row.updated_at,
    attemptMethod: row.attempt_method,
    attemptToken: row.attempt_token,
    attemptTokenAt: row.attempt_token_at,
  };
}

/** A send's row as operators list it. */
export interface SendListingRow {
  serial_number: string;
  partner_id: string;
  state: string;
  method: "reply" | "push" | null;
  attempts: number;
  error_code: string | null;
  line_request_id: string | null;
  messages: string;
  created_at: number;
  updated_at: number;
}

export const SEND_LISTING_COLUMNS =
  "serial_number, partner_id, state, method, attempts, error_code, line_request_id, messages, created_at, updated_at";

export function toSendListing(row: SendListingRow): SendListing {
  return {
    serialNumber: row.serial_number,
    partnerId: row.partner_id,
    state: row.state,
    method: row.method,
    attempts: Number(row.attempts),
    errorCode: row.error_code,
    lineRequestId: row.line_request_id,
    messages: row.messages,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** What a conversation's row keeps of its latest event. */
export interface ConversationRow {
  last_event_at: number | null;
  last_mode: string | null;
  reply_token: string | null;
  reply_token_at: number | null;
  reply_token_used_by: string | null;
}

/** The conversation's state, or null when no event of it was recorded yet. */
export function toConversationState(row: ConversationRow | undefined): ConversationState | null {
  if (!row || row.last_event_at === null) return null;
  return {
    lastEventAt: row.last_event_at,
    lastMode: row.last_mode ?? "active",
    replyToken: row.reply_token,
    replyTokenAt: row.reply_token_at,
    replyTokenUsedBy: row.reply_token_used_by,
  };
}

/** A row of `credentials`. */
export interface CredentialRow {
  id: string;
  kind: Credential["kind"];
  owner: string;
  name: string;
  digest: string;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
  last_used_at: number | null;
}

export function toCredential(row: CredentialRow): Credential {
  return {
    id: row.id,
    kind: row.kind,
    owner: row.owner,
    name: row.name,
    digest: row.digest,
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
  };
}

/** A row of `audit_log`. */
export interface AuditRow {
  id: number;
  at: number;
  actor_kind: AuditEntry["actorKind"];
  actor: string;
  credential_id: string | null;
  action: string;
  target: string | null;
  outcome: string;
  request_id: string | null;
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    id: Number(row.id),
    at: Number(row.at),
    actorKind: row.actor_kind,
    actor: row.actor,
    credentialId: row.credential_id,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    requestId: row.request_id,
  };
}

/** An event with its delivery's columns (null when it is not relayed). */
export interface EventLookupRow {
  id: number;
  sender_key: string;
  serial_number: string;
  type: string;
  conversation: string;
  user_id: string | null;
  message_id: string | null;
  received_at: number;
  unsent_at: number | null;
  body: string;
  state: DeliveryState | null;
  attempts: number | null;
  last_status: number | null;
  last_error: string | null;
  updated_at: number | null;
}

export function toEventRecord(row: EventLookupRow): EventRecord {
  return {
    eventId: Number(row.id),
    senderKey: row.sender_key,
    serialNumber: row.serial_number,
    type: row.type,
    conversation: row.conversation,
    userId: row.user_id,
    messageId: row.message_id,
    receivedAt: Number(row.received_at),
    unsent: row.unsent_at !== null,
    body: row.body,
    delivery:
      row.state === null
        ? null
        : {
            state: row.state,
            attempts: Number(row.attempts ?? 0),
            lastStatus: row.last_status,
            lastError: row.last_error,
            updatedAt: Number(row.updated_at ?? 0),
          },
  };
}

/** A `channel_tokens` row, as both databases answer it. */
export interface ChannelTokenDbRow {
  sender_key: string;
  credential_id: string | null;
  token: string | null;
  key_id: string | null;
  issued_at: number | string | null;
  expires_at: number | string | null;
  retired: string;
  last_renewal_at: number | string | null;
  last_failure_at: number | string | null;
  last_failure: string | null;
  failures: number;
  version: number | string;
}

const timeOrNull = (value: number | string | null): number | null => (value === null ? null : Number(value));

export function toChannelTokenRow(row: ChannelTokenDbRow): ChannelTokenRow {
  return {
    senderKey: row.sender_key,
    credentialId: row.credential_id,
    token: row.token,
    keyId: row.key_id,
    issuedAt: timeOrNull(row.issued_at),
    expiresAt: timeOrNull(row.expires_at),
    retired: row.retired,
    lastRenewalAt: timeOrNull(row.last_renewal_at),
    lastFailureAt: timeOrNull(row.last_failure_at),
    lastFailure: row.last_failure,
    failures: Number(row.failures),
    version: Number(row.version),
  };
}

/** The columns of a `channel_tokens` row, in the order the save statements take them. */
export const CHANNEL_TOKEN_COLUMNS =
  "sender_key, credential_id, token, key_id, issued_at, expires_at, retired, last_renewal_at, last_failure_at, last_failure, failures, version";
