// A LINE Platform double for development and tests: serves /v2/bot/* at its origin and sends signed webhooks.
import { createHash, createHmac, type JsonWebKey, randomBytes } from "node:crypto";
import type { OutgoingHttpHeaders } from "node:http";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import { Agent, request } from "undici";
import {
  type BodySource,
  bufferSource,
  generatedSource,
  type PumpOptions,
  pumpBody,
} from "./content-stream.ts";
import {
  buildEvent,
  type CommonFields,
  groupSource,
  isSourceless,
  nextMessageId,
  randomOpaqueToken,
  randomUserId,
  roomSource,
  type Source,
  textEvent,
  userSource,
  webhookBody,
} from "./events.ts";
import { type IssuedToken, registerOAuthRoutes, TokenRegistry } from "./oauth.ts";
import { canBeQuoted, mediaOrigins, validateMessages } from "./validate-messages.ts";

export { generatedContent, generatedSha256 } from "./content-stream.ts";
export type { IssuedToken } from "./oauth.ts";

/**
 * One LINE channel the emulator knows: its secret signs webhooks, its token (or any token the OAuth
 * endpoints issued it) authenticates API calls.
 */
export interface EmulatorChannel {
  channelId: string;
  channelSecret: string;
  /** A long-lived token; without one, only issued tokens authenticate the channel. */
  accessToken?: string;
  /** Public RSA JWKs (each with its `kid`) that verify the channel's JWT assertions. */
  assertionKeys?: JsonWebKey[];
  webhookUrl?: string;
  /** The bot's user id, sent as `destination`; derived from the channel id when absent. */
  botUserId?: string;
}

/** Options of {@link startLineEmulator}. */
export interface EmulatorOptions {
  channels: EmulatorChannel[];
  host?: string;
  port?: number;
  logger?: boolean;
  /** Clock in ms, for reply-token expiry, retry-key memory and record times; defaults to Date.now. */
  now?: () => number;
  /** How long a reply token stays usable after its webhook was sent (LINE: about one minute). */
  replyTokenTtlMs?: number;
  /**
   * Origins (e.g. `http://127.0.0.1:8080`) whose http:// URLs are accepted where LINE demands HTTPS
   * (originalContentUrl, previewImageUrl, baseUrl, thumbnailImageUrl…), so that `talkgate dev` can send
   * its own local uploads. A development allowance only: LINE never accepts http:// media URLs.
   * Default none.
   */
  httpMediaOrigins?: string[];
}

/** A user's LINE profile as the profile APIs return it. */
export interface Profile {
  displayName: string;
  pictureUrl?: string;
  statusMessage?: string;
  language?: string;
}

/** A canned answer for fault injection. */
export interface FaultResponse {
  status: number;
  /** Response body; defaults to LINE's `{"message": …}` for the status. */
  body?: unknown;
  delayMs?: number;
  headers?: Record<string, string>;
  /** Do the real work first (send, consume the token, remember the retry key), then answer with the fault. */
  afterProcessing?: boolean;
}

/**
 * Stored message content for the content API (`GET /v2/bot/message/{id}/content`, `/content/transcoding`,
 * `/content/preview`). A content GET goes through, in order: fault injection (`failNext`, which consumes
 * none of the counters below), 404/410, `transcoding`, the `notReadyTimes` 202s, the `cutTimes` cut
 * answers, then full answers. Bodies are always streamed, never copied or buffered by the emulator.
 */
export interface ContentEntry {
  /** The bytes (a string is UTF-8); ignored when `generated` is given; empty when neither is. */
  body?: Buffer | string;
  /** `size` deterministic pseudo-random bytes made on the fly (see `generatedContent`), for big bodies. */
  generated?: { size: number; seed?: number };
  /** Content-Type of the content answer; default `application/octet-stream`. */
  contentType?: string;
  /**
   * Video/audio preparation state: "processing" → content answers 202 and transcoding says processing,
   * for ever; "failed" → transcoding says failed and content answers 404 (LINE documents no answer for
   * this case; the content never becomes available, like a message without content).
   */
  transcoding?: "processing" | "succeeded" | "failed";
  /** The content GET answers 202 (empty body) this many times before answering 200; meanwhile the
   * transcoding endpoint says "processing", then "succeeded". */
  notReadyTimes?: number;
  /**
   * Also count each "processing" answer of the transcoding endpoint towards `notReadyTimes`, so a
   * fetcher that polls transcoding (rather than the content) sees it finish. Default false.
   */
  countTranscodingPolls?: boolean;
  /** Pace the body to about this many bytes a second. */
  bytesPerSecond?: number;
  /**
   * Cut the connection mid-body: 200 with the full Content-Length, then the socket is destroyed after
   * this many body bytes; for the first `cutTimes` answers that would send the body (default 1).
   */
  cutAfterBytes?: number;
  cutTimes?: number;
  /** false: send the body chunked, without Content-Length. Default true. */
  contentLength?: boolean;
  /** The user unsent the message: content endpoints answer 410. */
  gone?: boolean;
  /** Bytes served by the preview endpoint (image/video); 404 there when absent. */
  preview?: Buffer | string;
}

/** One API call the emulator answered. */
export interface RecordedCall {
  method: string;
  path: string;
  /** The channel whose access token authenticated the call; null when none did. */
  channelId: string | null;
  /** Request headers, lower-case, without authorization. */
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  status: number;
  requestId: string;
  at: number;
}

/** A message batch a user would see: sent by reply or push. */
export interface SentRecord {
  channelId: string;
  method: "reply" | "push";
  /** The user, group or room id the messages went to. */
  to: string;
  messages: unknown[];
  notificationDisabled: boolean;
  requestId: string;
  replyToken?: string;
  retryKey?: string;
  at: number;
}

/** One webhook the emulator sent. */
export interface WebhookRecord {
  channelId: string;
  url: string;
  body: string;
  signature: string | null;
  status: number | null;
  responseBody: string;
  error?: string;
  at: number;
}

/** Options of {@link LineEmulator.sendWebhook}. */
export interface SendWebhookOptions {
  /** Post here instead of the channel's webhook URL. */
  url?: string;
  /** Send exactly these bytes instead of serialising the events; still signed unless `signature` is given. */
  rawBody?: string | Buffer;
  /** Signature header value to send instead of the correct one; null omits the header. */
  signature?: string | null;
  /** Spelling of the signature header, to exercise header-case handling. */
  headerName?: string;
  /** `destination` of the body; defaults to the channel's bot user id. */
  destination?: string;
  /** Give up after this long (LINE itself waits about 2 s); default 10 s. */
  timeoutMs?: number;
}

/** The answer talkgate gave to a webhook. */
export interface WebhookResult {
  status: number;
  body: string;
}

/** A running LINE Platform emulator. */
export interface LineEmulator {
  /** Origin to use as the LINE API and data API base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  readonly calls: RecordedCall[];
  readonly sent: SentRecord[];
  readonly webhooks: WebhookRecord[];
  /** The user id `/_emulator/channels/:id/say` speaks as when none is given. */
  readonly defaultUserId: string;
  sendWebhook(
    channelId: string,
    events: readonly unknown[],
    options?: SendWebhookOptions,
  ): Promise<WebhookResult>;
  failNext(pathPattern: string | RegExp, response: FaultResponse, times?: number): void;
  setDelay(pathPattern: string | RegExp, ms: number): void;
  clearFaults(): void;
  setProfile(userId: string, profile: Profile): void;
  setGroupMemberProfile(groupId: string, userId: string, profile: Profile): void;
  setRoomMemberProfile(roomId: string, userId: string, profile: Profile): void;
  /** Registers (or replaces) a message's content; its not-ready and cut counters start over. */
  setContent(messageId: string, content: ContentEntry): void;
  /** How many `GET …/{messageId}/content` requests the emulator answered, whatever the answer
   * (faults, 401, 404, 202, cut and full answers alike); reset by `clearRecords`. */
  contentRequests(messageId: string): number;
  setWebhookUrl(channelId: string, url: string): void;
  channel(channelId: string): EmulatorChannel | undefined;
  /** Registers (or replaces, by `kid`) a public RSA JWK that verifies the channel's JWT assertions. */
  registerAssertionKey(channelId: string, publicJwk: JsonWebKey): void;
  /** Every token the OAuth endpoints issued (of one channel, when given), oldest first; copies. */
  issuedTokens(channelId?: string): IssuedToken[];
  /** Revokes an issued token as if someone else had; true when it was live. */
  revokeToken(token: string): boolean;
  waitForSent(predicate: (sent: readonly SentRecord[]) => boolean, timeoutMs?: number): Promise<SentRecord[]>;
  /** Forget recorded calls, sent messages, webhooks and content request counts (profiles, content,
   * reply tokens and issued access tokens stay). */
  clearRecords(): void;
  close(): Promise<void>;
}

type ApiResult = {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Streamed as the body instead of `body` (never buffered, never recorded). */
  pump?: { source: BodySource; options: PumpOptions };
};
type ApiContext = { channel: EmulatorChannel; req: FastifyRequest; requestId: string };
type ApiHandler = (ctx: ApiContext) => ApiResult | Promise<ApiResult>;
type Fault = { pattern: string | RegExp; response: FaultResponse; remaining: number };
type ContentState = { entry: ContentEntry; notReadyAnswers: number; cutAnswers: number };
type ReplyTokenState = { channelId: string; to: string; expiresAt: number; used: boolean };
// What `calls` records about a call besides the request: its channel and, for credentials, a masked body.
type CallNote = { channelId: string | null; redact?: (body: unknown) => unknown };

const RETRY_KEY_MEMORY_MS = 24 * 60 * 60 * 1000;
// A redelivered event's token is good for a minute after redelivery but never past 20 min from the event.
const REPLY_TOKEN_MAX_AGE_MS = 20 * 60 * 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_WEBHOOK_URL = 500;
const EMPTY = Buffer.alloc(0);
const CONTENT_PATH = /^\/v2\/bot\/message\/([^/]+)\/content$/;
// Body keys of `/_emulator/channels/:id/events/:kind` that pick the source or set common event fields.
const CONTROL_KEYS = ["userId", "groupId", "roomId"] as const;
const COMMON_KEYS = ["mode", "timestamp", "webhookEventId", "replyToken", "isRedelivery"] as const;

const STATUS_MESSAGES: Record<number, string> = {
  400: "Bad request",
  401: "Authentication failed. Confirm that the access token in the authorization header is valid.",
  403: "Access to this API is not available for your account",
  404: "Not found",
  409: "Conflict",
  410: "Gone",
  413: "Request entity too large",
  415: "Unsupported media type",
  429: "Too many requests",
  500: "Internal server error",
  502: "Bad gateway",
  503: "Service unavailable",
};

function lineError(
  status: number,
  message?: string,
  details?: { message: string; property: string }[],
): ApiResult {
  const body: { message: string; details?: typeof details } = {
    message: message ?? STATUS_MESSAGES[status] ?? "Error",
  };
  if (details !== undefined) body.details = details;
  return { status, body };
}

function matches(pattern: string | RegExp, path: string): boolean {
  if (typeof pattern === "string") return path.includes(pattern);
  pattern.lastIndex = 0;
  return pattern.test(path);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** base64 HMAC-SHA256 of `body` keyed with the channel secret: LINE's `x-line-signature`. */
export function signWebhookBody(channelSecret: string, body: string | Buffer): string {
  return createHmac("sha256", Buffer.from(channelSecret, "utf8")).update(body).digest("base64");
}

function chatIdOf(source: unknown): string | undefined {
  if (typeof source !== "object" || source === null) return undefined;
  const s = source as Record<string, unknown>;
  const id = s.type === "group" ? s.groupId : s.type === "room" ? s.roomId : s.userId;
  return typeof id === "string" ? id : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

// LINE's 400 for what it would refuse in a reply or push body, or undefined when it would accept it.
function invalidSend(
  body: Record<string, unknown>,
  httpMediaOrigins: ReadonlySet<string>,
): ApiResult | undefined {
  // A wrong JSON type fails LINE's parsing before any field is validated.
  if (body.notificationDisabled !== undefined && typeof body.notificationDisabled !== "boolean") {
    return lineError(
      400,
      "The property, 'notificationDisabled', in the request body is invalid (line: -, column: -)",
    );
  }
  const details = validateMessages(body.messages, httpMediaOrigins);
  if (details.length === 0) return undefined;
  return lineError(400, `The request body has ${details.length} error(s)`, details);
}

const NUMBER_FIELDS = ["notReadyTimes", "bytesPerSecond", "cutAfterBytes", "cutTimes"] as const;
const BOOLEAN_FIELDS = ["countTranscodingPolls", "contentLength", "gone"] as const;

// A ContentEntry from the control API's JSON, or what is wrong with it.
function contentEntryFromJson(json: unknown): ContentEntry | string {
  if (!isRecord(json)) return "body must be a JSON object (a ContentEntry)";
  const entry: ContentEntry = {};
  if (json.text !== undefined) {
    if (typeof json.text !== "string") return "text must be a string";
    entry.body = json.text;
  }
  if (json.base64 !== undefined) {
    if (typeof json.base64 !== "string") return "base64 must be a string";
    entry.body = Buffer.from(json.base64, "base64");
  }
  if (json.generated !== undefined) {
    const g = json.generated;
    if (!isRecord(g) || !Number.isSafeInteger(g.size) || (g.size as number) < 0) {
      return "generated must be {size: non-negative integer, seed?: integer}";
    }
    if (g.seed !== undefined && !Number.isInteger(g.seed)) return "generated.seed must be an integer";
    entry.generated = { size: g.size as number };
    if (g.seed !== undefined) entry.generated.seed = g.seed as number;
  }
  if (json.contentType !== undefined) {
    if (typeof json.contentType !== "string") return "contentType must be a string";
    entry.contentType = json.contentType;
  }
  if (json.transcoding !== undefined) {
    if (
      json.transcoding !== "processing" &&
      json.transcoding !== "succeeded" &&
      json.transcoding !== "failed"
    ) {
      return 'transcoding must be "processing", "succeeded" or "failed"';
    }
    entry.transcoding = json.transcoding;
  }
  for (const key of NUMBER_FIELDS) {
    const value = json[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      return `${key} must be a non-negative number`;
    }
    entry[key] = value;
  }
  for (const key of BOOLEAN_FIELDS) {
    const value = json[key];
    if (value === undefined) continue;
    if (typeof value !== "boolean") return `${key} must be a boolean`;
    entry[key] = value;
  }
  if (json.previewBase64 !== undefined) {
    if (typeof json.previewBase64 !== "string") return "previewBase64 must be a string";
    entry.preview = Buffer.from(json.previewBase64, "base64");
  }
  return entry;
}

// LINE answers an id for every sent message, and a quoteToken only for those that can be quoted.
function sentMessagesFor(messages: unknown[]): { id: string; quoteToken?: string }[] {
  return messages.map((message) =>
    canBeQuoted(message) ? { id: nextMessageId(), quoteToken: randomOpaqueToken() } : { id: nextMessageId() },
  );
}

/**
 * Starts the LINE Platform emulator: LINE's Messaging API and content API at the root of its origin,
 * a control API under `/_emulator`, and `sendWebhook` to play users towards talkgate.
 */
export async function startLineEmulator(options: EmulatorOptions): Promise<LineEmulator> {
  const now = options.now ?? Date.now;
  const replyTokenTtlMs = options.replyTokenTtlMs ?? 60_000;
  const httpMediaOrigins = mediaOrigins(options.httpMediaOrigins);
  const channels = new Map<string, EmulatorChannel>();
  const byToken = new Map<string, EmulatorChannel>();
  const tokens = new TokenRegistry(now);
  for (const c of options.channels) {
    const channel = {
      ...c,
      botUserId: c.botUserId ?? `U${createHash("sha256").update(c.channelId).digest("hex").slice(0, 32)}`,
      assertionKeys: [...(c.assertionKeys ?? [])],
    };
    channels.set(channel.channelId, channel);
    if (channel.accessToken !== undefined) byToken.set(channel.accessToken, channel);
    for (const key of channel.assertionKeys) tokens.addKey(channel.channelId, key);
  }

  const calls: RecordedCall[] = [];
  const sent: SentRecord[] = [];
  const webhooks: WebhookRecord[] = [];
  const faults: Fault[] = [];
  const delays: { pattern: string | RegExp; ms: number }[] = [];
  const profiles = new Map<string, Profile>();
  const memberProfiles = new Map<string, Profile>();
  const contents = new Map<string, ContentState>();
  const contentRequestCounts = new Map<string, number>();
  const replyTokens = new Map<string, ReplyTokenState>();
  // markAsReadToken → channel whose webhook carried it; LINE's read tokens never expire.
  const readTokens = new Map<string, string>();
  const retryKeys = new Map<string, { requestId: string; sentMessages: unknown[]; at: number }>();
  const sentListeners = new Set<() => void>();
  const requestMeta = new WeakMap<FastifyRequest, { at: number } & CallNote>();
  const defaultUserId = randomUserId();
  const agent = new Agent({ keepAliveTimeout: 1_000 });
  let closing: Promise<void> | undefined;

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 2 * 1024 * 1024,
    forceCloseConnections: true,
  });

  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-line-request-id", randomBytes(16).toString("hex"));
    requestMeta.set(req, { at: now(), channelId: null });
    if (req.method === "GET") {
      const match = CONTENT_PATH.exec(req.url.split("?")[0] ?? req.url);
      if (match?.[1] !== undefined) {
        let messageId = match[1];
        try {
          messageId = decodeURIComponent(messageId);
        } catch {
          // A malformed escape is counted under the raw segment.
        }
        contentRequestCounts.set(messageId, (contentRequestCounts.get(messageId) ?? 0) + 1);
      }
    }
  });

  // Record every LINE API call just before its answer goes out, so a caller that awaited it sees the record.
  function recordCall(req: FastifyRequest, reply: FastifyReply): void {
    const path = req.url.split("?")[0] ?? req.url;
    if (path.startsWith("/_emulator")) return;
    const meta = requestMeta.get(req);
    const headers = { ...req.headers };
    delete headers.authorization;
    calls.push({
      method: req.method,
      path,
      channelId: meta?.channelId ?? null,
      headers,
      body: meta?.redact === undefined ? req.body : meta.redact(req.body),
      status: reply.statusCode,
      requestId: String(reply.getHeader("x-line-request-id")),
      at: meta?.at ?? now(),
    });
  }
  app.addHook("onSend", async (req, reply, payload) => {
    recordCall(req, reply);
    return payload;
  });

  app.setErrorHandler((error: { statusCode?: number; message: string }, _req, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    const result = lineError(status, status === 500 ? undefined : error.message);
    return reply.code(result.status).send(result.body);
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ message: "Not found" }));

  function authenticate(req: FastifyRequest): EmulatorChannel | ApiResult {
    const header = req.headers.authorization;
    if (header === undefined) {
      return lineError(
        401,
        "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'",
      );
    }
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (token === undefined) return lineError(401);
    const issuedTo = tokens.channelOf(token);
    const channel = byToken.get(token) ?? (issuedTo === undefined ? undefined : channels.get(issuedTo));
    return channel ?? lineError(401);
  }

  function takeFault(path: string): FaultResponse | undefined {
    const index = faults.findIndex((f) => matches(f.pattern, path));
    const fault = faults[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.splice(index, 1);
    return fault.response;
  }

  async function send(req: FastifyRequest, reply: FastifyReply, result: ApiResult): Promise<FastifyReply> {
    reply.code(result.status);
    if (result.headers !== undefined) reply.headers(result.headers);
    if (result.pump === undefined) return reply.send(result.body ?? "");
    // Streamed bodies bypass Fastify's send, so pieces can be recycled once the socket took them.
    reply.hijack();
    recordCall(req, reply);
    const res = reply.raw;
    res.writeHead(result.status, reply.getHeaders() as OutgoingHttpHeaders);
    if (req.method === "HEAD") res.end();
    else await pumpBody(res, result.pump.source, result.pump.options);
    return reply;
  }

  // Answers an accepted LINE API call: notes it for `calls`, applies fault injection and delays, runs it.
  async function serve(
    req: FastifyRequest,
    reply: FastifyReply,
    note: CallNote,
    run: (requestId: string) => ApiResult | Promise<ApiResult>,
  ): Promise<FastifyReply> {
    const meta = requestMeta.get(req);
    if (meta !== undefined) Object.assign(meta, note);
    const path = req.url.split("?")[0] ?? req.url;
    const fault = takeFault(path);
    const requestId = String(reply.getHeader("x-line-request-id"));
    let result: ApiResult;
    if (fault === undefined) {
      result = await run(requestId);
    } else {
      if (fault.afterProcessing === true) await run(requestId);
      const body = fault.body === undefined ? lineError(fault.status).body : fault.body;
      result = { status: fault.status, body, headers: fault.headers ?? {} };
    }
    const delay = fault?.delayMs ?? delays.find((d) => matches(d.pattern, path))?.ms ?? 0;
    if (delay > 0) await sleep(delay);
    return send(req, reply, result);
  }

  // Registers a LINE API route: authentication, fault injection and delays, then the handler.
  function api(method: "GET" | "POST" | "PUT", url: string, handler: ApiHandler): void {
    app.route({
      method,
      url,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const auth = authenticate(req);
        if (!("channelId" in auth)) return send(req, reply, auth);
        return serve(req, reply, { channelId: auth.channelId }, (requestId) =>
          handler({ channel: auth, req, requestId }),
        );
      },
    });
  }

  // The token endpoints need no bearer token: they are how a channel gets one.
  registerOAuthRoutes({ app, tokens, now, channel: (id) => channels.get(id), serve });

  function recordSent(record: SentRecord): void {
    sent.push(record);
    for (const listener of sentListeners) listener();
  }

  api("GET", "/v2/bot/profile/:userId", ({ req }) => {
    const { userId } = req.params as { userId: string };
    const profile = profiles.get(userId);
    return profile === undefined ? lineError(404) : { status: 200, body: { ...profile, userId } };
  });

  function memberProfile(kind: "group" | "room"): ApiHandler {
    return ({ req }) => {
      const params = req.params as { chatId: string; userId: string };
      const profile = memberProfiles.get(`${kind}:${params.chatId}:${params.userId}`);
      if (profile === undefined) return lineError(404);
      const body: Record<string, string> = { displayName: profile.displayName, userId: params.userId };
      if (profile.pictureUrl !== undefined) body.pictureUrl = profile.pictureUrl;
      return { status: 200, body };
    };
  }
  api("GET", "/v2/bot/group/:chatId/member/:userId", memberProfile("group"));
  api("GET", "/v2/bot/room/:chatId/member/:userId", memberProfile("room"));

  api("POST", "/v2/bot/message/reply", ({ channel, req, requestId }) => {
    const body = isRecord(req.body) ? req.body : {};
    const invalid = invalidSend(body, httpMediaOrigins);
    if (invalid !== undefined) return invalid;
    const token = body.replyToken;
    if (typeof token !== "string" || token === "") {
      return lineError(400, "The request body has 1 error(s)", [
        { message: "must be specified", property: "replyToken" },
      ]);
    }
    const state = replyTokens.get(token);
    if (
      state === undefined ||
      state.used ||
      state.channelId !== channel.channelId ||
      now() >= state.expiresAt
    ) {
      return lineError(400, "Invalid reply token");
    }
    state.used = true;
    const messages = body.messages as unknown[];
    recordSent({
      channelId: channel.channelId,
      method: "reply",
      to: state.to,
      messages,
      notificationDisabled: body.notificationDisabled === true,
      requestId,
      replyToken: token,
      at: now(),
    });
    return { status: 200, body: { sentMessages: sentMessagesFor(messages) } };
  });

  api("POST", "/v2/bot/message/push", ({ channel, req, requestId }) => {
    const retryKey = req.headers["x-line-retry-key"];
    if (retryKey !== undefined && (typeof retryKey !== "string" || !UUID.test(retryKey))) {
      return lineError(400, "The retry key must be a UUID");
    }
    const memoryKey = `${channel.channelId}:${String(retryKey).toLowerCase()}`;
    if (retryKey !== undefined) {
      const first = retryKeys.get(memoryKey);
      if (first !== undefined && now() - first.at < RETRY_KEY_MEMORY_MS) {
        return {
          status: 409,
          headers: { "x-line-accepted-request-id": first.requestId },
          body: { message: "The retry key is already accepted", sentMessages: first.sentMessages },
        };
      }
    }
    const body = isRecord(req.body) ? req.body : {};
    const to = body.to;
    if (typeof to !== "string" || !/^[UCR]\S+$/.test(to)) {
      return lineError(400, "The property, 'to', in the request body is invalid (line: -, column: -)");
    }
    const invalid = invalidSend(body, httpMediaOrigins);
    if (invalid !== undefined) return invalid;
    const messages = body.messages as unknown[];
    const sentMessages = sentMessagesFor(messages);
    if (retryKey !== undefined) retryKeys.set(memoryKey, { requestId, sentMessages, at: now() });
    const record: SentRecord = {
      channelId: channel.channelId,
      method: "push",
      to,
      messages,
      notificationDisabled: body.notificationDisabled === true,
      requestId,
      at: now(),
    };
    if (retryKey !== undefined) record.retryKey = retryKey;
    recordSent(record);
    return { status: 200, body: { sentMessages } };
  });

  api("POST", "/v2/bot/chat/loading/start", ({ req }) => {
    const body = isRecord(req.body) ? req.body : {};
    if (typeof body.chatId !== "string" || !body.chatId.startsWith("U")) {
      return lineError(400, "The request body has 1 error(s)", [
        { message: "Invalid chatId", property: "chatId" },
      ]);
    }
    const seconds = body.loadingSeconds ?? 20;
    if (typeof seconds !== "number" || seconds < 5 || seconds > 60 || seconds % 5 !== 0) {
      return lineError(400, "The request body has 1 error(s)", [
        { message: "Must be one of 5, 10, ..., 60", property: "loadingSeconds" },
      ]);
    }
    return { status: 202, body: {} };
  });

  api("POST", "/v2/bot/chat/markAsRead", ({ channel, req }) => {
    const body = isRecord(req.body) ? req.body : {};
    if (typeof body.markAsReadToken !== "string" || body.markAsReadToken === "") {
      return lineError(400, "The request body has 1 error(s)", [
        { message: "must be specified", property: "markAsReadToken" },
      ]);
    }
    // Only tokens this channel's own webhooks carried; the wording is LINE's reference example.
    if (readTokens.get(body.markAsReadToken) !== channel.channelId) {
      return lineError(
        400,
        "Invalid markAsReadToken. Tokens must be used by the bot that received them via Webhook.",
      );
    }
    return { status: 200, body: {} };
  });

  // LINE's rules: "a valid HTTPS URL", "500 characters or less"; its answer carries no details.
  api("PUT", "/v2/bot/channel/webhook/endpoint", ({ channel, req }) => {
    const body = isRecord(req.body) ? req.body : {};
    const endpoint = body.endpoint;
    if (
      typeof endpoint !== "string" ||
      endpoint.length > MAX_WEBHOOK_URL ||
      !URL.canParse(endpoint) ||
      new URL(endpoint).protocol !== "https:"
    ) {
      return lineError(400, "Invalid webhook endpoint URL");
    }
    channel.webhookUrl = endpoint;
    return { status: 200, body: {} };
  });

  api("GET", "/v2/bot/channel/webhook/endpoint", ({ channel }) => ({
    status: 200,
    body:
      channel.webhookUrl === undefined
        ? { endpoint: "", active: false }
        : { endpoint: channel.webhookUrl, active: true },
  }));

  api("POST", "/v2/bot/channel/webhook/test", async ({ channel, req }) => {
    const body = isRecord(req.body) ? req.body : {};
    const url = typeof body.endpoint === "string" ? body.endpoint : channel.webhookUrl;
    if (url === undefined) return lineError(400, "The webhook endpoint is not set");
    const timestamp = new Date(now()).toISOString();
    try {
      const result = await sendWebhook(channel.channelId, [], { url });
      const success = result.status >= 200 && result.status < 300;
      return {
        status: 200,
        body: { success, timestamp, statusCode: result.status, reason: success ? "OK" : "ERROR", detail: "" },
      };
    } catch (error) {
      return {
        status: 200,
        body: {
          success: false,
          timestamp,
          statusCode: 0,
          reason: "COULD_NOT_CONNECT",
          detail: String(error),
        },
      };
    }
  });

  function contentOr(messageId: string): ContentState | ApiResult {
    const state = contents.get(messageId);
    if (state === undefined) return lineError(404);
    if (state.entry.gone === true) return lineError(410);
    return state;
  }

  function notReady(state: ContentState): boolean {
    return state.notReadyAnswers < (state.entry.notReadyTimes ?? 0);
  }

  function contentSource(entry: ContentEntry): BodySource {
    if (entry.generated !== undefined) return generatedSource(entry.generated.size, entry.generated.seed);
    return bufferSource(
      typeof entry.body === "string" ? Buffer.from(entry.body, "utf8") : (entry.body ?? EMPTY),
    );
  }

  api("GET", "/v2/bot/message/:messageId/content", ({ req }) => {
    const state = contentOr((req.params as { messageId: string }).messageId);
    if ("status" in state) return state;
    const { entry } = state;
    // LINE answers 202 while a large video/audio is still being prepared.
    if (entry.transcoding === "processing") return { status: 202, body: "" };
    if (entry.transcoding === "failed") return lineError(404);
    if (notReady(state)) {
      state.notReadyAnswers += 1;
      return { status: 202, body: "" };
    }
    const source = contentSource(entry);
    const headers: Record<string, string> = {
      "content-type": entry.contentType ?? "application/octet-stream",
    };
    if (entry.contentLength !== false) headers["content-length"] = String(source.size);
    const options: PumpOptions = {};
    if (entry.bytesPerSecond !== undefined) options.bytesPerSecond = entry.bytesPerSecond;
    if (entry.cutAfterBytes !== undefined && state.cutAnswers < (entry.cutTimes ?? 1)) {
      state.cutAnswers += 1;
      options.cutAfterBytes = entry.cutAfterBytes;
    }
    return { status: 200, headers, pump: { source, options } };
  });

  api("GET", "/v2/bot/message/:messageId/content/transcoding", ({ req }) => {
    const state = contentOr((req.params as { messageId: string }).messageId);
    if ("status" in state) return state;
    if ((state.entry.transcoding ?? "succeeded") === "succeeded" && notReady(state)) {
      if (state.entry.countTranscodingPolls === true) state.notReadyAnswers += 1;
      return { status: 200, body: { status: "processing" } };
    }
    return { status: 200, body: { status: state.entry.transcoding ?? "succeeded" } };
  });

  api("GET", "/v2/bot/message/:messageId/content/preview", ({ req }) => {
    const state = contentOr((req.params as { messageId: string }).messageId);
    if ("status" in state) return state;
    const preview = state.entry.preview;
    if (preview === undefined) return lineError(404);
    return { status: 200, body: Buffer.from(preview), headers: { "content-type": "image/jpeg" } };
  });

  // Reply and read tokens become usable once the webhook carrying them is sent.
  function registerTokens(channelId: string, events: unknown): void {
    if (!Array.isArray(events)) return;
    const sentAt = now();
    for (const event of events) {
      if (!isRecord(event)) continue;
      const readToken = isRecord(event.message) ? event.message.markAsReadToken : undefined;
      if (typeof readToken === "string") readTokens.set(readToken, channelId);
      if (typeof event.replyToken !== "string") continue;
      const to = chatIdOf(event.source) ?? "";
      let expiresAt = sentAt + replyTokenTtlMs;
      const context = event.deliveryContext;
      if (isRecord(context) && context.isRedelivery === true && typeof event.timestamp === "number") {
        expiresAt = Math.min(expiresAt, event.timestamp + REPLY_TOKEN_MAX_AGE_MS);
      }
      const known = replyTokens.get(event.replyToken);
      if (known === undefined) {
        replyTokens.set(event.replyToken, { channelId, to, expiresAt, used: false });
      } else {
        known.expiresAt = Math.max(known.expiresAt, expiresAt);
      }
    }
  }

  async function sendWebhook(
    channelId: string,
    events: readonly unknown[],
    opts: SendWebhookOptions = {},
  ): Promise<WebhookResult> {
    const channel = channels.get(channelId);
    if (channel === undefined) throw new Error(`line emulator: unknown channel ${channelId}`);
    const url = opts.url ?? channel.webhookUrl;
    if (url === undefined) throw new Error(`line emulator: channel ${channelId} has no webhook URL`);
    let bytes: Buffer;
    if (opts.rawBody === undefined) {
      bytes = Buffer.from(JSON.stringify(webhookBody(events, opts.destination ?? channel.botUserId)), "utf8");
      registerTokens(channelId, events);
    } else {
      bytes = Buffer.from(opts.rawBody);
      try {
        const parsed: unknown = JSON.parse(bytes.toString("utf8"));
        if (isRecord(parsed)) registerTokens(channelId, parsed.events);
      } catch {
        // Deliberately malformed bodies carry no tokens.
      }
    }
    const signature =
      opts.signature === undefined ? signWebhookBody(channel.channelSecret, bytes) : opts.signature;
    const headers: Record<string, string> = {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "LineBotWebhook/2.0",
    };
    if (signature !== null) headers[opts.headerName ?? "x-line-signature"] = signature;
    const record: WebhookRecord = {
      channelId,
      url,
      body: bytes.toString("utf8"),
      signature,
      status: null,
      responseBody: "",
      at: now(),
    };
    webhooks.push(record);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    try {
      const response = await request(url, {
        method: "POST",
        headers,
        body: bytes,
        dispatcher: agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await response.body.text();
      record.status = response.statusCode;
      record.responseBody = text;
      return { status: response.statusCode, body: text };
    } catch (error) {
      record.error = error instanceof Error ? error.message : String(error);
      throw new Error(`line emulator: webhook to ${url} failed: ${record.error}`, { cause: error });
    }
  }

  // Control API for the CLI and demos: no authentication, not recorded.
  app.get("/_emulator/channels", async () =>
    [...channels.values()].map((c) => ({
      channelId: c.channelId,
      botUserId: c.botUserId,
      webhookUrl: c.webhookUrl ?? null,
    })),
  );
  app.get("/_emulator/sent", async () => sent);
  app.get("/_emulator/calls", async () => calls);
  app.get("/_emulator/webhooks", async () => webhooks);

  async function controlSend(
    reply: FastifyReply,
    channelId: string,
    events: readonly unknown[],
    extra: object = {},
  ): Promise<FastifyReply> {
    if (!channels.has(channelId)) return reply.code(404).send({ message: `unknown channel ${channelId}` });
    try {
      const result = await sendWebhook(channelId, events);
      return reply.send({ ...result, ...extra });
    } catch (error) {
      return reply.code(502).send({ message: error instanceof Error ? error.message : String(error) });
    }
  }

  app.post("/_emulator/channels/:channelId/webhook", async (req, reply) => {
    const { channelId } = req.params as { channelId: string };
    const body = isRecord(req.body) ? req.body : {};
    if (!Array.isArray(body.events)) return reply.code(400).send({ message: "body must be {events: [...]}" });
    return controlSend(reply, channelId, body.events);
  });

  // The chat a control request speaks in: groupId or roomId (with an optional userId), else a 1:1 chat
  // with userId; `fallback` (the default user) when none is given, or no source when it is undefined.
  function sourceOf(body: Record<string, unknown>, fallback: string | undefined): Source | undefined {
    const userId = nonEmpty(body.userId);
    const groupId = nonEmpty(body.groupId);
    const roomId = nonEmpty(body.roomId);
    if (groupId !== undefined) return groupSource(groupId, userId);
    if (roomId !== undefined) return roomSource(roomId, userId);
    const id = userId ?? fallback;
    return id === undefined ? undefined : userSource(id);
  }

  app.post("/_emulator/channels/:channelId/say", async (req, reply) => {
    const { channelId } = req.params as { channelId: string };
    const body = isRecord(req.body) ? req.body : {};
    const text = nonEmpty(body.text);
    if (text === undefined) return reply.code(400).send({ message: "text is required" });
    const event = textEvent(sourceOf(body, defaultUserId) as Source, text);
    return controlSend(reply, channelId, [event], { event });
  });

  // Any event a user (or LINE) can cause, built by events.ts: body = source ids, common fields, the
  // builder's own fields.
  app.post("/_emulator/channels/:channelId/events/:kind", async (req, reply) => {
    const { channelId, kind } = req.params as { channelId: string; kind: string };
    const body = isRecord(req.body) ? { ...req.body } : {};
    const source = sourceOf(body, isSourceless(kind) ? undefined : defaultUserId);
    const common: CommonFields = {};
    if (body.mode === "active" || body.mode === "standby") common.mode = body.mode;
    if (typeof body.timestamp === "number") common.timestamp = body.timestamp;
    if (typeof body.webhookEventId === "string") common.webhookEventId = body.webhookEventId;
    if (typeof body.replyToken === "string") common.replyToken = body.replyToken;
    if (typeof body.isRedelivery === "boolean") common.isRedelivery = body.isRedelivery;
    for (const key of [...CONTROL_KEYS, ...COMMON_KEYS]) delete body[key];
    const event = buildEvent(kind, source, body, common);
    if (typeof event === "string") return reply.code(400).send({ message: event });
    return controlSend(reply, channelId, [event], { event });
  });

  app.post("/_emulator/profiles", async (req, reply) => {
    const body = isRecord(req.body) ? req.body : {};
    if (typeof body.userId !== "string" || typeof body.displayName !== "string") {
      return reply.code(400).send({ message: "userId and displayName are required" });
    }
    const profile: Profile = { displayName: body.displayName };
    for (const key of ["pictureUrl", "statusMessage", "language"] as const) {
      const value = body[key];
      if (typeof value === "string") profile[key] = value;
    }
    if (typeof body.groupId === "string") emulator.setGroupMemberProfile(body.groupId, body.userId, profile);
    else if (typeof body.roomId === "string")
      emulator.setRoomMemberProfile(body.roomId, body.userId, profile);
    else emulator.setProfile(body.userId, profile);
    return reply.send({ ...profile, userId: body.userId });
  });

  // Registers content for a message: a ContentEntry as JSON, with `text` (UTF-8) or `base64` as the body
  // and `previewBase64` as the preview.
  app.post("/_emulator/content/:messageId", async (req, reply) => {
    const { messageId } = req.params as { messageId: string };
    const parsed = contentEntryFromJson(req.body);
    if (typeof parsed === "string") return reply.code(400).send({ message: parsed });
    emulator.setContent(messageId, parsed);
    const size = parsed.generated?.size ?? Buffer.byteLength(parsed.body ?? "");
    return reply.send({ messageId, size, contentRequests: emulator.contentRequests(messageId) });
  });

  app.get("/_emulator/content/:messageId", async (req, reply) => {
    const { messageId } = req.params as { messageId: string };
    const state = contents.get(messageId);
    return reply.send({
      messageId,
      known: state !== undefined,
      contentRequests: emulator.contentRequests(messageId),
      notReadyAnswers: state?.notReadyAnswers ?? 0,
      cutAnswers: state?.cutAnswers ?? 0,
    });
  });

  await app.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("line emulator: no TCP address");
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  const emulator: LineEmulator = {
    url: `http://${host}:${address.port}`,
    port: address.port,
    calls,
    sent,
    webhooks,
    defaultUserId,
    sendWebhook,
    failNext(pathPattern, response, times = 1) {
      faults.push({ pattern: pathPattern, response, remaining: times });
    },
    setDelay(pathPattern, ms) {
      const index = delays.findIndex((d) => String(d.pattern) === String(pathPattern));
      if (index >= 0) delays.splice(index, 1);
      if (ms > 0) delays.push({ pattern: pathPattern, ms });
    },
    clearFaults() {
      faults.length = 0;
      delays.length = 0;
    },
    setProfile(userId, profile) {
      profiles.set(userId, { ...profile });
    },
    setGroupMemberProfile(groupId, userId, profile) {
      memberProfiles.set(`group:${groupId}:${userId}`, { ...profile });
    },
    setRoomMemberProfile(roomId, userId, profile) {
      memberProfiles.set(`room:${roomId}:${userId}`, { ...profile });
    },
    setContent(messageId, content) {
      contents.set(messageId, { entry: content, notReadyAnswers: 0, cutAnswers: 0 });
    },
    contentRequests(messageId) {
      return contentRequestCounts.get(messageId) ?? 0;
    },
    setWebhookUrl(channelId, url) {
      const channel = channels.get(channelId);
      if (channel === undefined) throw new Error(`line emulator: unknown channel ${channelId}`);
      channel.webhookUrl = url;
    },
    channel(channelId) {
      return channels.get(channelId);
    },
    registerAssertionKey(channelId, publicJwk) {
      const channel = channels.get(channelId);
      if (channel === undefined) throw new Error(`line emulator: unknown channel ${channelId}`);
      tokens.addKey(channelId, publicJwk);
      const others = (channel.assertionKeys ?? []).filter((k) => k.kid !== publicJwk.kid);
      channel.assertionKeys = [...others, publicJwk];
    },
    issuedTokens(channelId) {
      return tokens.list(channelId);
    },
    revokeToken(token) {
      return tokens.revoke(token);
    },
    waitForSent(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (!predicate(sent)) return false;
          clearTimeout(timer);
          sentListeners.delete(listener);
          resolve([...sent]);
          return true;
        };
        const listener = (): void => {
          check();
        };
        const timer = setTimeout(() => {
          sentListeners.delete(listener);
          const summary = sent
            .map((s) => `${s.method} to ${s.to}: ${JSON.stringify(s.messages)}`)
            .join("\n  ");
          reject(
            new Error(
              `line emulator: waitForSent timed out after ${timeoutMs} ms; sent so far:\n  ${summary}`,
            ),
          );
        }, timeoutMs);
        sentListeners.add(listener);
        check();
      });
    },
    clearRecords() {
      calls.length = 0;
      sent.length = 0;
      webhooks.length = 0;
      contentRequestCounts.clear();
    },
    close() {
      closing ??= app.close().then(() => agent.close());
      return closing;
    },
  };
  return emulator;
}
