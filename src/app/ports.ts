// The small interfaces the use cases talk to; adapters (SQLite, LINE client, HTTP partner transport) implement them.
import type { Readable, Writable } from "node:stream";
import type { MediaKind } from "../core/attachment.ts";
import type { ChatRef, EventFacts, JsonObject } from "../core/line-event.ts";

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** What talkgate counts for operators (Prometheus at /metrics); every method is cheap and never throws. */
export interface Metrics {
  webhookReceived(senderKey: string): void;
  webhookRefused(senderKey: string, code: string): void;
  eventsStored(senderKey: string, count: number): void;
  /** One delivery attempt's outcome; `lagMs` (receive → partner ack) when delivered. */
  deliveryAttempt(partnerId: string, outcome: "delivered" | "retrying" | "dead", lagMs?: number): void;
  mediaDownload(outcome: "stored" | "gone" | "retry"): void;
  lineCall(endpoint: string, status: number | null): void;
  send(method: "reply" | "push" | "failed"): void;
  /**
   * How long one stage of relaying took: `commit` (storing a webhook's events, durably), `queue` (a
   * delivery due → its attempt), `claim` (taking due conversations), `post` (the partner's answer).
   */
  stage(stage: Stage, seconds: number): void;
}

/** The stages of relaying an event, timed for /metrics. */
export type Stage = "commit" | "queue" | "claim" | "post";

/** Metrics that count nothing (tests, tools). */
export const noMetrics: Metrics = {
  webhookReceived() {},
  webhookRefused() {},
  eventsStored() {},
  deliveryAttempt() {},
  mediaDownload() {},
  lineCall() {},
  send() {},
  stage() {},
};

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
  media: MediaRecord | null;
}

/** What a send answers, the first time and on every repeat of its serial_number. */
export interface SendAnswer {
  method: "reply" | "push";
  sentMessages: unknown[];
  requestId: string | null;
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

/**
 * An attempt of a send that went (or was about to go) to LINE without talkgate learning LINE's answer:
 * cut off by a crash, or never answered. A repeat of the send must finish it the same way.
 */
export type InterruptedAttempt =
  | { method: "push" }
  | { method: "reply"; token: string /** when the token's event was received */; tokenAt: number };

/** Whether a send may go ahead, and how. */
export type BeginSend =
  | { kind: "go"; replyToken: string | null; interrupted: InterruptedAttempt | null }
  | { kind: "done"; answer: SendAnswer }
  | { kind: "failed"; error: { code: string; message: string } }
  | { kind: "busy" }
  | { kind: "conflict" }
  | { kind: "standby" };

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

/** Durable storage of events and the delivery outbox. Every write has committed when its promise resolves. */
export interface Store {
  /** Stores new events (deduped per channel on their key), assigns serial numbers, queues deliveries. */
  ingest(request: IngestRequest): Promise<IngestResult>;
  /**
   * Leases up to `limit` conversations whose head delivery is due, within each partner's slots, and
   * returns up to `batchSize` due deliveries of each, head first.
   */
  claimConversations(request: ClaimRequest): Promise<ConversationClaim[]>;
  /** Records the outcomes of a claim's attempts and releases its lease. */
  completeClaim(claim: ClaimRef, outcomes: DeliveryOutcome[]): Promise<void>;
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
  deliveryStats(): Promise<{
    pending: number;
    retrying: number;
    dead: number;
    oldestWaitingAt: number | null;
  }>;
  /** The earliest time a conversation may be claimed under `slots`, or null when none can. */
  nextDueAt(now: number, slots: PartnerSlots): Promise<number | null>;
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
  /** The event with this serial number in this channel, with its attachment. */
  findMessage(senderKey: string, serialNumber: string): Promise<StoredMessage | null>;
  /**
   * Records a send as in progress, unless its serial_number was sent already (answer it again), is in
   * progress (busy), came with other messages (conflict), or the conversation is in standby. Resumes a
   * send cut off by a crash or a timeout. `replyToken` is the conversation's unused token younger than
   * `replyTokenMaxAgeMs`, or the one this send already claimed.
   */
  beginSend(
    send: NewSend,
    now: number,
    options: { staleAfterMs: number; replyTokenMaxAgeMs: number },
  ): Promise<BeginSend>;
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
  /** Records how a send ended (kept for repeats and for audit). */
  finishSend(senderKey: string, serialNumber: string, outcome: SendOutcome, now: number): Promise<void>;
  /** Records files a partner uploaded (POST /line/media), for its quota. */
  recordUploads(
    partnerId: string,
    files: ReadonlyArray<{ name: string; size: number }>,
    now: number,
  ): Promise<void>;
  /** What a partner's uploads made since `since` take up. */
  uploadUsage(partnerId: string, since: number): Promise<{ files: number; bytes: number }>;
  /** Forgets uploads made before `before` (their files are pruned). */
  forgetUploads(before: number): Promise<void>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a LINE API call ended: a value, never an exception. `status` null means LINE was not reached
 * (connection failed or timed out); `reason` is LINE's own message when it sent one.
 */
export type LineResult<T> =
  | { ok: true; value: T; requestId?: string | null }
  | {
      ok: false;
      status: number | null;
      reason: string;
      requestId?: string | null;
      /** A 409 to a push whose retry key LINE already accepted: that request's id and what it sent. */
      accepted?: { requestId: string | null; sentMessages: unknown[] };
    };

/** What LINE answers to a reply or push. */
export interface SentMessages {
  sentMessages: unknown[];
}

export interface LineProfile {
  displayName: string;
  pictureUrl?: string;
  statusMessage?: string;
  language?: string;
}

/** What LINE's content endpoint answered. */
export type ContentResult =
  | {
      kind: "ready";
      contentType: string;
      length: number | null;
      body: Readable;
      /** Frees the memory of a chunk of `body` its reader is done with, rather than at the next GC. */
      release(chunk: Buffer): void;
    }
  | { kind: "not-ready" }
  | { kind: "gone"; status: number }
  | { kind: "failed"; status: number | null; reason: string };

export type TranscodingStatus = "processing" | "succeeded" | "failed";

/** The parts of the LINE Messaging API talkgate calls. */
export interface LineApi {
  /** Whether the channel has an access token (without one, every call fails). */
  hasToken(senderKey: string): boolean;
  getProfile(senderKey: string, chat: ChatRef, userId: string): Promise<LineResult<LineProfile>>;
  /** Opens a message's content as a stream (never buffered). */
  getContent(senderKey: string, messageId: string): Promise<ContentResult>;
  getTranscoding(senderKey: string, messageId: string): Promise<LineResult<TranscodingStatus>>;
  reply(
    senderKey: string,
    replyToken: string,
    messages: unknown[],
    notificationDisabled: boolean,
  ): Promise<LineResult<SentMessages>>;
  /** Push with `X-Line-Retry-Key`: LINE answers a repeat of the key with 409 and what the first sent. */
  push(
    senderKey: string,
    to: string,
    messages: unknown[],
    notificationDisabled: boolean,
    retryKey: string,
  ): Promise<LineResult<SentMessages>>;
  showLoading(senderKey: string, chatId: string, seconds: number): Promise<LineResult<null>>;
  markAsRead(senderKey: string, markAsReadToken: string): Promise<LineResult<null>>;
  getWebhookEndpoint(senderKey: string): Promise<LineResult<{ endpoint: string; active: boolean }>>;
  setWebhookEndpoint(senderKey: string, endpoint: string): Promise<LineResult<null>>;
}

/** An inclusive byte range of a file, as in `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A media file opened for sending; see {@link MediaFiles.openSource}. */
export interface MediaSource {
  /** The file's size in bytes when it was opened. */
  readonly size: number;
  /**
   * Writes `range` of the file (all of it without one) to `destination`, ends `destination` and closes
   * the file. The bytes pass through a few buffers reused for the whole transfer, never one per chunk.
   * On failure (the destination closed early, a read failed) `destination` is destroyed and it rejects.
   */
  sendTo(destination: Writable, range?: ByteRange): Promise<void>;
  /** Closes the file without sending it. */
  close(): Promise<void>;
}

/** Attachment files on disk, named by talkgate (never by user input). */
export interface MediaFiles {
  /**
   * Streams `body` into a temporary file, checks that `expectedLength` bytes (when known) arrived,
   * then moves it to `name` in one atomic rename: a reader never sees a partial file. `release`, when
   * given, gets each chunk of `body` once it is written and will not be read again.
   */
  save(
    name: string,
    body: Readable,
    expectedLength: number | null,
    options?: { release?: (chunk: Buffer) => void },
  ): Promise<{ size: number; sha256: string }>;
  /** Reads `name`, or the inclusive byte range of it. */
  open(name: string, range?: ByteRange): Readable;
  /**
   * Opens `name` for sending a response body; rejects (ENOENT…) before anything is sent. The open file
   * stays readable even if `name` is removed meanwhile.
   */
  openSource(name: string): Promise<MediaSource>;
  rename(from: string, to: string): Promise<void>;
  remove(name: string): Promise<void>;
  /** Removes the files in directory `dir` last modified before `before` (ms); answers how many. */
  prune(dir: string, before: number): Promise<number>;
  /** Bytes still free for talkgate on the volume of the files. */
  freeBytes(): Promise<number>;
}

/** How one attempt to deliver to a partner ended. */
export type AttemptResult =
  | { ok: true; status: number }
  | { ok: false; status: number | null; reason: string };

/** Sends payloads to partners. */
export interface PartnerTransport {
  /** POSTs `body` to the partner, as the message `webhookId` (the same on every attempt of one event). */
  send(partnerId: string, webhookId: string, body: string): Promise<AttemptResult>;
  close(): Promise<void>;
}
