// The small interfaces the use cases talk to, besides the store's (store.ts): the clock, metrics, LINE, media
// files, the partner transport; adapters (LINE client, disk, HTTP) implement them.
import type { Readable, Writable } from "node:stream";
import type { ManagedCredential, RevocableTokenType } from "../core/access-token.ts";
import type { ChatRef } from "../core/line-event.ts";

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
      /** LINE was not called: the channel has no usable access token (`reason` says why). */
      noToken?: true;
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
  /** Whether the channel has an access token, or a credential to issue one (without, every call fails). */
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
  /** Has LINE send a test webhook to `endpoint` (the channel's own when omitted) and say how it went. */
  testWebhookEndpoint(senderKey: string, endpoint?: string): Promise<LineResult<WebhookTest>>;
}

/** How LINE's test webhook went. */
export interface WebhookTest {
  success: boolean;
  timestamp: string;
  statusCode: number;
  reason: string;
  detail: string;
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

/** The token a channel's LINE calls carry (SPEC §11): a static one, or one talkgate issues and renews. */
export interface ChannelTokenSource {
  /** Whether the channel has a token or a credential to issue one. */
  has(senderKey: string): boolean;
  /** The token to call LINE with now (waiting for its first issue if need be), or why there is none. */
  token(senderKey: string): Promise<{ ok: true; token: string } | { ok: false; reason: string }>;
  /** LINE refused `token` (401): a renewed token to try once more with, or null when there is none. */
  refused(senderKey: string, token: string): Promise<string | null>;
}

/** A channel access token LINE issued. */
export interface IssuedToken {
  token: string;
  expiresInSeconds: number;
  /** LINE's key id of a v2.1 token. */
  keyId: string | null;
}

/** The channel whose token is issued or revoked: its ID (the sender key) and secret. */
export interface TokenChannel {
  senderKey: string;
  channelSecret: string;
}

/** LINE's channel access token API (SPEC §11). */
export interface LineTokenApi {
  issue(channel: TokenChannel, credential: ManagedCredential, now: number): Promise<LineResult<IssuedToken>>;
  revoke(channel: TokenChannel, type: RevocableTokenType, token: string): Promise<LineResult<null>>;
}
