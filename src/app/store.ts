// The store's ports, one per concern: the event log, the outbox, attachment jobs, sends, the user directory,
// uploads, and the signals of new work. A database adapter implements them all (Store); a use case or route asks
// only for the ones it uses. Every write has committed (durably) when its promise resolves.
import type { RevocableTokenType } from "../core/access-token.ts";
import type { MediaKind } from "../core/attachment.ts";
import type { EventFacts, JsonObject } from "../core/line-event.ts";
import type { PurgeBatch, PurgeRequest } from "../core/retention.ts";
import type { BeginSend, SendAnswer, SendTiming } from "../core/send-decision.ts";

export type { PurgeBatch, PurgeRequest } from "../core/retention.ts";
export type { BeginSend, InterruptedAttempt, SendAnswer } from "../core/send-decision.ts";

/** One event of a webhook body, ready to be stored. */
export interface NewEvent {
  facts: EventFacts;
  /** The event's JSON text. */
  body: string;
  /** Whether the channel forwards this event type to its partner (a delivery is queued). */
  forward: boolean;
  /** The content to fetch from LINE, when the event is a message with an attachment there. */
  media: MediaKind | null;
}

/** The events of one webhook body of one channel. */
export interface IngestRequest {
  senderKey: string;
  partnerId: string;
  receivedAt: number;
  events: NewEvent[];
  /** Longest time a message with an attachment waits for its content before it is relayed anyway. */
  mediaWaitMs: number;
}

/** An event that was new and is now stored. */
export interface StoredEvent {
  serialNumber: string;
  facts: EventFacts;
  forward: boolean;
  /** Its content is to be fetched from LINE (a media job was queued). */
  fetchesMedia: boolean;
}

export interface IngestResult {
  stored: StoredEvent[];
  duplicates: number;
  /** Stored content of messages the user has just unsent, to be deleted from disk. */
  unsentFiles: string[];
}

/** One delivery of one event to its partner, with what the payload is built from. */
export interface DeliveryTask {
  eventId: number;
  serialNumber: string;
  senderKey: string;
  partnerId: string;
  conversation: string;
  /** Failed attempts so far. */
  attempts: number;
  /** When the event was received (ms): the payload's `time`. */
  receivedAt: number;
  /** Start of the retry window (when the event was received, or when it was last replayed). */
  retryFrom: number;
  /** When it became due (its first attempt's time, or its retry's). */
  dueAt: number;
  /** The stored event JSON. */
  body: string;
  e164: string | null;
  agreeType: number | null;
}

/** Which lease of which conversation: what completing a claim needs to know of it. */
export interface ClaimRef {
  senderKey: string;
  conversation: string;
  owner: string;
}

/** A conversation leased to one worker, with its due deliveries in LINE timestamp order. */
export interface ConversationClaim extends ClaimRef {
  /** When the lease runs out: every attempt must have ended by then. */
  until: number;
  deliveries: DeliveryTask[];
}

export type DeliveryOutcome = {
  eventId: number;
  at: number;
  status: number | null;
  error: string | null;
} & ({ state: "delivered" } | { state: "retrying"; nextAttemptAt: number } | { state: "dead" });

/** How many conversations of a partner may be held (leased) at once now, by every worker together. */
export type PartnerSlots = (partnerId: string) => number;

/** What a worker asks of the outbox: due conversations, shared fairly among the partners. */
export interface ClaimRequest {
  owner: string;
  /** Conversations claimed at most. */
  limit: number;
  /** Deliveries taken from one conversation at most. */
  batchSize: number;
  now: number;
  leaseMs: number;
  /** Each partner's cap; free slots go first to the partners holding the fewest. */
  slots: PartnerSlots;
}

/** An attachment to fetch from LINE. */
export interface MediaJob {
  eventId: number;
  /** The worker holding the job's lease: only its outcome counts. */
  owner: string;
  senderKey: string;
  messageId: string;
  kind: MediaKind;
  /** Failed attempts so far. */
  attempts: number;
  receivedAt: number;
}

/** How fetching an attachment ended, for now or for good. */
export type MediaOutcome =
  | { state: "stored"; contentType: string; size: number; sha256: string; path: string }
  | { state: "gone"; reason: string }
  | { state: "pending"; nextAttemptAt: number; error: string };

/** A stored attachment as the partner API sees it. */
export interface MediaRecord {
  kind: MediaKind;
  state: "pending" | "stored" | "gone";
  contentType: string | null;
  size: number | null;
  sha256: string | null;
  path: string | null;
  goneReason: string | null;
}

/** A stored event as the partner API reads it. */
export interface StoredMessage {
  eventId: number;
  serialNumber: string;
  event: JsonObject;
  unsent: boolean;
  /** Its user's stored data was erased (POST /line/user/erase): text and content are gone. */
  erased: boolean;
  media: MediaRecord | null;
}

/** A send about to be made. */
export interface NewSend {
  senderKey: string;
  serialNumber: string;
  partnerId: string;
  conversation: string;
  /** The user, group or room id messages go to. */
  to: string;
  /** The messages' JSON text. */
  messages: string;
  notificationDisabled: boolean;
  /** Identifies the request's content: a repeat must be the same request. */
  requestHash: string;
}

/** How a send ended, as recorded. */
export type SendOutcome =
  | { answer: SendAnswer }
  /** `interrupted`: an attempt may have reached LINE; a repeat finishes it the same way. */
  | { error: { code: string; message: string }; interrupted: boolean }
  /** It cannot be known whether LINE delivered it; it is not sent again. */
  | { unknown: { code: string; message: string } };

export type DeliveryState = "pending" | "retrying" | "delivered" | "dead";

/** One delivery as operators list it. */
export interface DeliveryRecord {
  eventId: number;
  serialNumber: string;
  senderKey: string;
  conversation: string;
  eventType: string;
  state: DeliveryState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  receivedAt: number;
  updatedAt: number;
  nextAttemptAt: number;
}

/** Which deliveries to list or replay: all conditions given must hold. */
export interface DeliveryFilter {
  senderKeys: readonly string[];
  state?: DeliveryState | undefined;
  conversation?: string | undefined;
  serialNumbers?: readonly string[] | undefined;
  /** Received at or after (ms). */
  from?: number | undefined;
  /** Received before (ms). */
  to?: number | undefined;
}

/** Counts of waiting and dead deliveries, and when the oldest waiting one was received. */
export interface DeliveryStats {
  pending: number;
  retrying: number;
  dead: number;
  oldestWaitingAt: number | null;
}

/** A channel's traffic over a recent window and its backlog now, for the console's overview. */
export interface ChannelActivity {
  senderKey: string;
  /** Events received since the window's start. */
  received: number;
  /** Deliveries that reached the partner since the window's start. */
  delivered: number;
  lastReceivedAt: number | null;
  pending: number;
  retrying: number;
  dead: number;
  /** When the oldest waiting delivery was received (or replayed). */
  oldestWaitingAt: number | null;
}

/** Which stored events an operator looks for (newest first): all conditions given must hold. */
export interface EventQuery {
  senderKeys: readonly string[];
  serialNumber?: string | undefined;
  /** LINE's message id. */
  messageId?: string | undefined;
  /** The LINE user who sent them. */
  userId?: string | undefined;
  /** Their conversation (`user:U…`, `group:C…`, `room:R…`). */
  conversation?: string | undefined;
  /** Received at or after (ms). */
  from?: number | undefined;
  /** Received before (ms). */
  to?: number | undefined;
  /** Events with an id below this one (paging). */
  before?: number | undefined;
  limit: number;
}

/** A stored event as operators look it up: what came in, and what became of its delivery. */
export interface EventRecord {
  eventId: number;
  senderKey: string;
  serialNumber: string;
  type: string;
  conversation: string;
  userId: string | null;
  messageId: string | null;
  receivedAt: number;
  unsent: boolean;
  /** The stored event JSON (message text included: mask it before showing). */
  body: string;
  delivery: {
    state: DeliveryState;
    attempts: number;
    lastStatus: number | null;
    lastError: string | null;
    updatedAt: number;
  } | null;
}

/** The events as received: stored once each, with their serial numbers; read back by the partner API. */
export interface EventLog {
  /**
   * Stores new events (deduped per channel on their key), assigns serial numbers, queues their deliveries
   * and attachment jobs, and applies what they change (a conversation's mode and reply token, an unsend).
   */
  ingest(request: IngestRequest): Promise<IngestResult>;
  /** The event with this serial number in this channel, with its attachment. */
  findMessage(senderKey: string, serialNumber: string): Promise<StoredMessage | null>;
  /** Events matching the query, newest first. */
  findEvents(query: EventQuery): Promise<EventRecord[]>;
}

/** The deliveries to partners: conversations claimed under a lease, outcomes recorded, listed and replayed. */
export interface Outbox {
  /**
   * Leases up to `limit` conversations whose head delivery is due, within each partner's slots, and
   * returns up to `batchSize` due deliveries of each, head first.
   */
  claimConversations(request: ClaimRequest): Promise<ConversationClaim[]>;
  /** Records the outcomes of a claim's attempts and releases its lease. */
  completeClaim(claim: ClaimRef, outcomes: DeliveryOutcome[]): Promise<void>;
  /** The earliest time a conversation may be claimed under `slots`, or null when none can. */
  nextDueAt(now: number, slots: PartnerSlots): Promise<number | null>;
  /** Deliveries matching the filter, oldest first, after the event id `after` (for paging). */
  listDeliveries(filter: DeliveryFilter, page: { after: number; limit: number }): Promise<DeliveryRecord[]>;
  /** How many deliveries match the filter. */
  countDeliveries(filter: DeliveryFilter): Promise<number>;
  /**
   * Queues the matching deliveries again, due now, with a fresh retry window; they keep their
   * serial_number. Answers the serial numbers replayed (at most `limit`).
   */
  replayDeliveries(filter: DeliveryFilter, now: number, limit: number): Promise<string[]>;
  /** Counts of waiting and dead deliveries, and when the oldest waiting one was received. */
  deliveryStats(): Promise<DeliveryStats>;
  /** Each channel's traffic since `since` and its backlog, in the order given (zeros for a quiet one). */
  channelActivity(senderKeys: readonly string[], since: number): Promise<ChannelActivity[]>;
}

/** Attachments to fetch from LINE, leased to one worker at a time. */
export interface MediaJobs {
  /** Leases up to `limit` attachments due to be fetched. */
  claimMedia(request: { owner: string; limit: number; now: number; leaseMs: number }): Promise<MediaJob[]>;
  /**
   * Records how fetching an attachment went; once it is stored or gone, its message may be relayed.
   * Resolves false when the outcome does not count: the user unsent the message meanwhile, or the job's
   * lease ran out and another worker took the attachment over (a stored file is then the caller's to remove).
   */
  finishMedia(job: MediaJob, outcome: MediaOutcome, now: number): Promise<boolean>;
  /** The earliest time an attachment is due to be fetched, or null when none waits. */
  nextMediaDueAt(): Promise<number | null>;
}

/** The partner's sends through LINE: each serial_number once, each attempt recorded before it goes out. */
export interface Sends {
  /**
   * Records a send as in progress, or answers why not (core/send-decision.ts): sent already (its answer),
   * in progress (busy), other messages under the same serial_number (conflict), the conversation in
   * standby. Resumes a send cut off by a crash or a timeout.
   */
  beginSend(send: NewSend, now: number, timing: SendTiming): Promise<BeginSend>;
  /**
   * Claims the conversation's reply token for one send (false when another send has it) and records,
   * before the reply goes out, that a reply with it is under way.
   */
  claimReplyToken(
    senderKey: string,
    conversation: string,
    token: string,
    serialNumber: string,
  ): Promise<boolean>;
  /** Records, before the push goes out, that a push of this send is under way. */
  notePush(senderKey: string, serialNumber: string): Promise<void>;
  /** Records how a send ended (kept for repeats and for audit). */
  finishSend(senderKey: string, serialNumber: string, outcome: SendOutcome, now: number): Promise<void>;
  /** A conversation's sends, newest first, as operators look them up (the messages as sent: mask their text). */
  listSends(senderKey: string, conversation: string, limit: number): Promise<SendListing[]>;
}

/** A send as operators see it in a conversation's timeline. */
export interface SendListing {
  serialNumber: string;
  partnerId: string;
  /** sending | sent | failed | unknown */
  state: string;
  method: "reply" | "push" | null;
  attempts: number;
  errorCode: string | null;
  lineRequestId: string | null;
  /** The messages' JSON ("[]" once the user's data was erased). */
  messages: string;
  createdAt: number;
  updatedAt: number;
}

/** The user directory (POST /line/user): e164 and agree_type, carried in payloads. */
export interface Directory {
  /** The user directory entry (e164, agree_type) of a user, or null. */
  getDirectoryEntry(
    senderKey: string,
    userId: string,
  ): Promise<{ e164: string | null; agreeType: number | null } | null>;
  /** Sets the given fields of a user's directory entry; fields left undefined keep their value. */
  setDirectoryEntry(
    senderKey: string,
    userId: string,
    fields: { e164?: string | undefined; agreeType?: number | undefined },
    now: number,
  ): Promise<void>;
}

/** Files partners uploaded (POST /line/media), for their quotas. */
export interface Uploads {
  /** Records files a partner uploaded. */
  recordUploads(
    partnerId: string,
    files: ReadonlyArray<{ name: string; size: number }>,
    now: number,
  ): Promise<void>;
  /** What a partner's uploads made since `since` take up. */
  uploadUsage(partnerId: string, since: number): Promise<{ files: number; bytes: number }>;
  /** Forgets uploads made before `before` (their files are pruned). */
  forgetUploads(before: number): Promise<void>;
}

/** Work a store's writes make: deliveries due, attachments to fetch. */
export type Work = "delivery" | "media";

/**
 * Tells the workers that there may be work, once a write that made it is durable: in one process an
 * event, across a cluster the database's notifications. A wake-up may be spurious; none is ever needed
 * for work that a worker's own poll would find.
 */
export interface WorkSignals {
  onWork(work: Work, wake: () => void): void;
}

/** A partner or a channel made through the admin API: its settings as JSON, every secret in it encrypted. */
export interface ConfigEntry {
  kind: "partner" | "channel";
  id: string;
  /** The entry's JSON text (core/runtime-entries.ts). */
  body: string;
  createdAt: number;
  updatedAt: number;
}

/** A partner API key or an operator API token. Only its digest is kept; the token was shown once. */
export interface Credential {
  /** Names it without revealing it: the start of the token's SHA-256. */
  id: string;
  kind: "partner-key" | "operator-token";
  /** The partner id or the operator name it acts for. */
  owner: string;
  name: string;
  /** SHA-256 of the token, hex. */
  digest: string;
  createdAt: number;
  /** Who made it (an operator's name). */
  createdBy: string;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** An operator's signed-in session (POST /admin/sign-in); only digests of its cookie and CSRF token are kept. */
export interface OperatorSession {
  digest: string;
  operator: string;
  csrfDigest: string;
  createdAt: number;
  expiresAt: number;
}

/** One line of the audit log: who did what to what, and how it ended. Never message text or a secret. */
export interface AuditEntry {
  /** Assigned by the store, increasing. */
  id: number;
  at: number;
  actorKind: "operator" | "partner" | "system";
  /** The operator's name, or the partner's id. */
  actor: string;
  /** The operator token or partner API key used (its id), or null (a session, the system). */
  credentialId: string | null;
  action: string;
  target: string | null;
  /** `ok`, or the error code answered. */
  outcome: string;
  requestId: string | null;
}

/** Which audit entries to list, newest first: all conditions given must hold. */
export interface AuditFilter {
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  outcome?: string | undefined;
  /** At or after (ms). */
  from?: number | undefined;
  /** Before (ms). */
  to?: number | undefined;
  /** Entries with an id below this one (paging, newest first). */
  before?: number | undefined;
  limit: number;
}

/**
 * What operators change at runtime (SPEC §10): partners and channels, keys and tokens, sessions, and the
 * audit log. Every change of entries or credentials moves {@link configVersion}, which every instance polls.
 */
export interface OperatorData {
  /** A number that changes whenever an entry or a credential does. */
  configVersion(): Promise<number>;
  listConfigEntries(): Promise<ConfigEntry[]>;
  /** Creates an entry: false when one of that kind and id exists. */
  createConfigEntry(entry: ConfigEntry): Promise<boolean>;
  /** Replaces an entry's body: false when there is none. */
  updateConfigEntry(kind: ConfigEntry["kind"], id: string, body: string, now: number): Promise<boolean>;
  /** False when there was none. */
  deleteConfigEntry(kind: ConfigEntry["kind"], id: string): Promise<boolean>;
  listCredentials(kind: Credential["kind"]): Promise<Credential[]>;
  addCredential(credential: Credential): Promise<void>;
  /** False when there is no such credential, or it was revoked already. */
  revokeCredential(kind: Credential["kind"], id: string, now: number): Promise<boolean>;
  /** Notes when credentials were last used (does not move the config version). */
  touchCredentials(ids: readonly string[], at: number): Promise<void>;
  createSession(session: OperatorSession): Promise<void>;
  /** The session with this digest, unless it has expired by `now`. */
  findSession(digest: string, now: number): Promise<OperatorSession | null>;
  /** Ends a session; with `operator`, every session of that operator. Expired ones go too. */
  endSessions(which: { digest: string } | { operator: string }, now: number): Promise<void>;
  appendAudit(entry: Omit<AuditEntry, "id">): Promise<void>;
  listAudit(filter: AuditFilter): Promise<AuditEntry[]>;
}

/** A channel's issued LINE token as every instance shares it (SPEC §11); the token itself sealed. */
export interface ChannelTokenRow {
  senderKey: string;
  /** The credential the token was issued under (`credentialId`): another one means it is not used. */
  credentialId: string | null;
  /** The token, sealed; null before the first issue. */
  token: string | null;
  /** LINE's key id of a v2.1 token. */
  keyId: string | null;
  issuedAt: number | null;
  expiresAt: number | null;
  /** Replaced tokens still to be revoked: JSON of {@link RetiredToken}[]. */
  retired: string;
  lastRenewalAt: number | null;
  lastFailureAt: number | null;
  /** Why the last issue failed (LINE's words, never a token). */
  lastFailure: string | null;
  /** Failed issues since the last one that worked. */
  failures: number;
  /** Moves with every save: a cache holds a row until its version changes. */
  version: number;
}

/** A replaced token, kept (sealed) until it is revoked at LINE or has expired. */
export interface RetiredToken {
  type: RevocableTokenType;
  sealed: string;
  expiresAt: number;
  /** Not before this: other instances switch to the new token first. */
  revokeAt: number;
}

/**
 * Issued channel tokens (SPEC §11): one row per channel, renewed by the one instance that holds its lease
 * (owner + expiry, as the outbox's), read by all.
 */
export interface ChannelTokens {
  listChannelTokens(): Promise<ChannelTokenRow[]>;
  /**
   * Takes the channel's renewal lease until `now + leaseMs` if nobody else holds it, making the row if it is
   * missing: the row, or null when another owner's lease is still running.
   */
  leaseChannelToken(
    senderKey: string,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<ChannelTokenRow | null>;
  /** Writes what a renewal did and releases the lease; false (nothing written) when `owner` no longer held it. */
  saveChannelToken(row: Omit<ChannelTokenRow, "version">, owner: string): Promise<boolean>;
}

/** A database: every port above, and its life. */
/** What erasing a user deleted in one channel. */
export interface ErasedUser {
  /** Their events whose text and content were deleted (the events stay, in order, with their serial numbers). */
  events: number;
  attachments: number;
  /** Partner sends to their 1:1 chat whose messages were deleted. */
  sends: number;
  /** Their directory entry (e164, agree_type) was deleted. */
  directory: boolean;
  /** The stored files of their attachments: the caller removes them. */
  files: string[];
}

/** Retention and erasure of personal data (SPEC §12). */
export interface Retention {
  /** Deletes what is old enough, a small batch at a time. */
  purgeBatch(request: PurgeRequest): Promise<PurgeBatch>;
  /** When the newest event retention deleted was received (null: none yet): an older one not found was deleted. */
  purgedThrough(): Promise<number | null>;
  /**
   * Deletes what is stored of one user in one channel: their events' text and content, their attachments,
   * the messages partners sent them, their directory entry.
   */
  eraseUser(senderKey: string, userId: string, now: number): Promise<ErasedUser>;
}

export interface Store
  extends EventLog,
    Outbox,
    MediaJobs,
    Sends,
    Directory,
    Uploads,
    OperatorData,
    ChannelTokens,
    Retention,
    WorkSignals {
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
