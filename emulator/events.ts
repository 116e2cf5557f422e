// Builds LINE webhook events and bodies shaped exactly like the LINE Platform sends them (pure, no I/O).
import { randomBytes } from "node:crypto";
import type { webhook } from "@line/bot-sdk";

/** Where an event came from: a 1:1 chat, a group or a multi-person chat (room). */
export type Source = webhook.UserSource | webhook.GroupSource | webhook.RoomSource;

/** An SDK event type whose reply token may be absent (standby events carry none). */
export type MaybeReply<E> = Omit<E, "replyToken"> & { replyToken?: string };

/** Any event object, typed or not: what webhook bodies carry (new types appear without notice). */
export type LineEvent = { type: string } & Record<string, unknown>;

/** A webhook request body as LINE posts it. */
export interface WebhookBody {
  destination: string;
  /** Usually events; anything is allowed so tests can send malformed entries. */
  events: unknown[];
}

/** Overrides for the fields every event has. */
export interface CommonFields {
  /** "active" (default) or "standby"; standby events get no reply token. */
  mode?: webhook.EventMode;
  /** Event time in ms; defaults to now. */
  timestamp?: number;
  webhookEventId?: string;
  /** Force a reply token (ignored for standby events and for types LINE sends none with). */
  replyToken?: string;
  isRedelivery?: boolean;
}

/** The destination used when none is given: a bot user id of zeros. */
export const DEFAULT_DESTINATION = `U${"0".repeat(32)}`;

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_MASK = (1n << 80n) - 1n;
let lastUlidTime = -1;
let lastUlidRandom = 0n;

function base32(value: bigint, length: number): string {
  let out = "";
  let rest = value;
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[Number(rest & 31n)] + out;
    rest >>= 5n;
  }
  return out;
}

/** A ULID (26 Crockford base32 characters, time first), unique per call within the process. */
export function ulid(time: number = Date.now()): string {
  // Same millisecond as the previous id: bump the random part so ids stay distinct and sortable.
  if (time === lastUlidTime) {
    lastUlidRandom = (lastUlidRandom + 1n) & RANDOM_MASK;
  } else {
    lastUlidTime = time;
    lastUlidRandom = BigInt(`0x${randomBytes(10).toString("hex")}`);
  }
  return base32(BigInt(Math.max(0, Math.floor(time))), 10) + base32(lastUlidRandom, 16);
}

// LINE message ids are 18-digit decimal strings; start near that size and count up.
let messageCounter = BigInt(Date.now()) * 100_000n;

/** The next message id: an increasing numeric string, unique within the process. */
export function nextMessageId(): string {
  messageCounter += 1n;
  return messageCounter.toString();
}

function hex32(): string {
  return randomBytes(16).toString("hex");
}

/** A fresh reply token (32 hex characters). */
export function randomReplyToken(): string {
  return hex32();
}

/** A fresh opaque token such as a quoteToken or markAsReadToken. */
export function randomOpaqueToken(): string {
  return randomBytes(48).toString("base64url");
}

/** A random LINE user id: "U" + 32 hex. */
export function randomUserId(): string {
  return `U${hex32()}`;
}

/** A random LINE group id: "C" + 32 hex. */
export function randomGroupId(): string {
  return `C${hex32()}`;
}

/** A random LINE room id: "R" + 32 hex. */
export function randomRoomId(): string {
  return `R${hex32()}`;
}

/** A 1:1 chat source. */
export function userSource(userId: string): webhook.UserSource {
  return { type: "user", userId };
}

/** A group chat source; userId is absent when LINE does not know or may not tell the sender. */
export function groupSource(groupId: string, userId?: string): webhook.GroupSource {
  return userId === undefined ? { type: "group", groupId } : { type: "group", groupId, userId };
}

/** A multi-person chat (room) source. */
export function roomSource(roomId: string, userId?: string): webhook.RoomSource {
  return userId === undefined ? { type: "room", roomId } : { type: "room", roomId, userId };
}

type Base = {
  type: string;
  mode: webhook.EventMode;
  timestamp: number;
  source?: Source;
  webhookEventId: string;
  deliveryContext: webhook.DeliveryContext;
  replyToken?: string;
};

// Builds the common fields; `replyable` says whether LINE sends a reply token with this type.
function base(type: string, source: Source | undefined, common: CommonFields, replyable: boolean): Base {
  const mode = common.mode ?? "active";
  const timestamp = common.timestamp ?? Date.now();
  const event: Base = {
    type,
    mode,
    timestamp,
    ...(source === undefined ? {} : { source }),
    webhookEventId: common.webhookEventId ?? ulid(timestamp),
    deliveryContext: { isRedelivery: common.isRedelivery ?? false },
  };
  if (replyable && mode === "active") event.replyToken = common.replyToken ?? randomReplyToken();
  return event;
}

/** Message-level fields every builder accepts. */
export interface MessageFields {
  /** Message id; defaults to the next id of this process. */
  id?: string;
  markAsReadToken?: string;
}

/** Fields of a message that can be quoted. */
export interface QuotableFields extends MessageFields {
  quoteToken?: string;
}

function messageEvent<M>(source: Source, message: M, common: CommonFields): MaybeReply<webhook.MessageEvent> {
  return { ...base("message", source, common, true), message } as MaybeReply<webhook.MessageEvent>;
}

/** Text fields: the text plus LINE's optional emoji, mention and quote details. */
export interface TextFields extends QuotableFields {
  text: string;
  emojis?: webhook.Emoji[];
  mention?: webhook.Mention;
  quotedMessageId?: string;
}

function textContent(fields: TextFields): webhook.TextMessageContent {
  const content: webhook.TextMessageContent = {
    id: fields.id ?? nextMessageId(),
    type: "text",
    quoteToken: fields.quoteToken ?? randomOpaqueToken(),
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    text: fields.text,
  };
  if (fields.emojis !== undefined) content.emojis = fields.emojis;
  if (fields.mention !== undefined) content.mention = fields.mention;
  if (fields.quotedMessageId !== undefined) content.quotedMessageId = fields.quotedMessageId;
  return content;
}

/** A text message event; `fields` may be just the text. */
export function textEvent(
  source: Source,
  fields: string | TextFields,
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.TextMessageContent } {
  const content = textContent(typeof fields === "string" ? { text: fields } : fields);
  return { ...messageEvent(source, content, common), message: content };
}

/** Image fields; contentProvider defaults to `{type:"line"}` (content downloadable from LINE). */
export interface ImageFields extends QuotableFields {
  contentProvider?: webhook.ContentProvider;
  imageSet?: webhook.ImageSet;
}

/** An image message event. */
export function imageEvent(
  source: Source,
  fields: ImageFields = {},
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.ImageMessageContent } {
  const content: webhook.ImageMessageContent = {
    id: fields.id ?? nextMessageId(),
    type: "image",
    quoteToken: fields.quoteToken ?? randomOpaqueToken(),
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    contentProvider: fields.contentProvider ?? { type: "line" },
  };
  if (fields.imageSet !== undefined) content.imageSet = fields.imageSet;
  return { ...messageEvent(source, content, common), message: content };
}

/** Video or audio fields; duration in ms (default 60 000), contentProvider defaults to LINE. */
export interface MediaFields extends QuotableFields {
  duration?: number;
  contentProvider?: webhook.ContentProvider;
}

/** A video message event. */
export function videoEvent(
  source: Source,
  fields: MediaFields = {},
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.VideoMessageContent } {
  const content: webhook.VideoMessageContent = {
    id: fields.id ?? nextMessageId(),
    type: "video",
    quoteToken: fields.quoteToken ?? randomOpaqueToken(),
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    duration: fields.duration ?? 60_000,
    contentProvider: fields.contentProvider ?? { type: "line" },
  };
  return { ...messageEvent(source, content, common), message: content };
}

/** An audio message event (LINE gives audio no quoteToken). */
export function audioEvent(
  source: Source,
  fields: Omit<MediaFields, "quoteToken"> = {},
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.AudioMessageContent } {
  const content: webhook.AudioMessageContent = {
    id: fields.id ?? nextMessageId(),
    type: "audio",
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    duration: fields.duration ?? 60_000,
    contentProvider: fields.contentProvider ?? { type: "line" },
  };
  return { ...messageEvent(source, content, common), message: content };
}

/** File fields (files are always stored on LINE). */
export interface FileFields extends MessageFields {
  fileName?: string;
  fileSize?: number;
}

/** A file message event. */
export function fileEvent(
  source: Source,
  fields: FileFields = {},
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.FileMessageContent } {
  const content: webhook.FileMessageContent = {
    id: fields.id ?? nextMessageId(),
    type: "file",
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    fileName: fields.fileName ?? "document.pdf",
    fileSize: fields.fileSize ?? 2048,
  };
  return { ...messageEvent(source, content, common), message: content };
}

/** Location fields. */
export interface LocationFields extends MessageFields {
  title?: string;
  address?: string;
  latitude: number;
  longitude: number;
}

/** A location message event. */
export function locationEvent(
  source: Source,
  fields: LocationFields,
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.LocationMessageContent } {
  const content: webhook.LocationMessageContent = {
    id: fields.id ?? nextMessageId(),
    type: "location",
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    latitude: fields.latitude,
    longitude: fields.longitude,
  };
  if (fields.title !== undefined) content.title = fields.title;
  if (fields.address !== undefined) content.address = fields.address;
  return { ...messageEvent(source, content, common), message: content };
}

/** Sticker fields; stickerResourceType is any string because LINE adds values without notice. */
export interface StickerFields extends QuotableFields {
  packageId?: string;
  stickerId?: string;
  stickerResourceType?: webhook.StickerMessageContent.StickerResourceTypeEnum | (string & {});
  keywords?: string[];
  text?: string;
  quotedMessageId?: string;
}

/** A sticker message event (defaults to a basic static sticker). */
export function stickerEvent(
  source: Source,
  fields: StickerFields = {},
  common: CommonFields = {},
): MaybeReply<webhook.MessageEvent> & { message: webhook.StickerMessageContent } {
  const content = {
    id: fields.id ?? nextMessageId(),
    type: "sticker",
    quoteToken: fields.quoteToken ?? randomOpaqueToken(),
    markAsReadToken: fields.markAsReadToken ?? randomOpaqueToken(),
    packageId: fields.packageId ?? "446",
    stickerId: fields.stickerId ?? "1988",
    stickerResourceType: fields.stickerResourceType ?? "STATIC",
  } as webhook.StickerMessageContent;
  if (fields.keywords !== undefined) content.keywords = fields.keywords;
  if (fields.text !== undefined) content.text = fields.text;
  if (fields.quotedMessageId !== undefined) content.quotedMessageId = fields.quotedMessageId;
  return { ...messageEvent(source, content, common), message: content };
}

/** Postback fields: data plus params (`date`/`time`/`datetime`, or `newRichMenuAliasId` + `status`). */
export interface PostbackFields {
  data: string;
  params?: Record<string, string>;
}

/** A postback event. */
export function postbackEvent(
  source: Source,
  fields: PostbackFields,
  common: CommonFields = {},
): MaybeReply<webhook.PostbackEvent> {
  const postback: webhook.PostbackContent = { data: fields.data };
  if (fields.params !== undefined) postback.params = fields.params;
  return { ...base("postback", source, common, true), postback } as MaybeReply<webhook.PostbackEvent>;
}

/** A follow event: a user added the account as a friend, or unblocked it (`isUnblocked`). */
export function followEvent(
  source: Source,
  fields: { isUnblocked?: boolean } = {},
  common: CommonFields = {},
): MaybeReply<webhook.FollowEvent> {
  const follow = { isUnblocked: fields.isUnblocked ?? false };
  return { ...base("follow", source, common, true), follow } as MaybeReply<webhook.FollowEvent>;
}

/** An unfollow event: the user blocked the account. */
export function unfollowEvent(source: Source, common: CommonFields = {}): webhook.UnfollowEvent {
  return base("unfollow", source, common, false) as webhook.UnfollowEvent;
}

/** A join event: the account joined a group or room. */
export function joinEvent(source: Source, common: CommonFields = {}): MaybeReply<webhook.JoinEvent> {
  return base("join", source, common, true) as MaybeReply<webhook.JoinEvent>;
}

/** A leave event: the account left, or was removed from, a group or room. */
export function leaveEvent(source: Source, common: CommonFields = {}): webhook.LeaveEvent {
  return base("leave", source, common, false) as webhook.LeaveEvent;
}

function members(userIds: readonly string[]): webhook.UserSource[] {
  return userIds.map((userId) => userSource(userId));
}

/** A memberJoined event: users joined a group or room the account is in. */
export function memberJoinedEvent(
  source: Source,
  fields: { userIds: readonly string[] },
  common: CommonFields = {},
): MaybeReply<webhook.MemberJoinedEvent> {
  const joined = { members: members(fields.userIds) };
  return { ...base("memberJoined", source, common, true), joined } as MaybeReply<webhook.MemberJoinedEvent>;
}

/** A memberLeft event: users left a group or room the account is in. */
export function memberLeftEvent(
  source: Source,
  fields: { userIds: readonly string[] },
  common: CommonFields = {},
): webhook.MemberLeftEvent {
  const left = { members: members(fields.userIds) };
  return { ...base("memberLeft", source, common, false), left } as webhook.MemberLeftEvent;
}

/** An unsend event: the user unsent the message `messageId`. */
export function unsendEvent(
  source: Source,
  fields: { messageId: string },
  common: CommonFields = {},
): webhook.UnsendEvent {
  const unsend = { messageId: fields.messageId };
  return { ...base("unsend", source, common, false), unsend } as webhook.UnsendEvent;
}

/** A videoPlayComplete event: the user watched a video sent with `trackingId` to the end. */
export function videoPlayCompleteEvent(
  source: Source,
  fields: { trackingId: string },
  common: CommonFields = {},
): MaybeReply<webhook.VideoPlayCompleteEvent> {
  const videoPlayComplete = { trackingId: fields.trackingId };
  return {
    ...base("videoPlayComplete", source, common, true),
    videoPlayComplete,
  } as MaybeReply<webhook.VideoPlayCompleteEvent>;
}

/** A messageEdited event: the text of message `id` (required: the edited message) was changed. */
export function messageEditedEvent(
  source: Source,
  fields: TextFields & { id: string },
  common: CommonFields = {},
): webhook.MessageEditedEvent & { message: webhook.TextMessageContent } {
  const message = textContent(fields);
  return { ...base("messageEdited", source, common, false), message } as webhook.MessageEditedEvent & {
    message: webhook.TextMessageContent;
  };
}

/** A beacon event; hwid defaults to "d41d8cd98f", type to "enter". */
export function beaconEvent(
  source: Source,
  fields: Partial<webhook.BeaconContent> = {},
  common: CommonFields = {},
): MaybeReply<webhook.BeaconEvent> {
  const beacon: webhook.BeaconContent = { hwid: fields.hwid ?? "d41d8cd98f", type: fields.type ?? "enter" };
  if (fields.dm !== undefined) beacon.dm = fields.dm;
  return { ...base("beacon", source, common, true), beacon } as MaybeReply<webhook.BeaconEvent>;
}

/** An accountLink event; result defaults to "ok", nonce to a random string. */
export function accountLinkEvent(
  source: Source,
  fields: Partial<webhook.LinkContent> = {},
  common: CommonFields = {},
): webhook.AccountLinkEvent {
  const link: webhook.LinkContent = {
    result: fields.result ?? "ok",
    nonce: fields.nonce ?? randomOpaqueToken(),
  };
  return { ...base("accountLink", source, common, true), link } as webhook.AccountLinkEvent;
}

/** A membership event; defaults to `{type:"joined", membershipId: 3189}`. */
export function membershipEvent(
  source: Source,
  fields: Partial<{ type: "joined" | "left" | "renewed"; membershipId: number }> = {},
  common: CommonFields = {},
): MaybeReply<webhook.MembershipEvent> {
  const membership = { type: fields.type ?? "joined", membershipId: fields.membershipId ?? 3189 };
  return { ...base("membership", source, common, true), membership } as MaybeReply<webhook.MembershipEvent>;
}

/** A module event (module channels: attached/detached); LINE sends these without a source. */
export function moduleEvent(
  fields: webhook.ModuleContent,
  common: CommonFields & { source?: Source } = {},
): webhook.ModuleEvent {
  return { ...base("module", common.source, common, false), module: fields } as webhook.ModuleEvent;
}

/** An activated event: the chat's control was handed to this module channel until `expireAt`. */
export function activatedEvent(
  source: Source,
  fields: { expireAt?: number } = {},
  common: CommonFields = {},
): webhook.ActivatedEvent {
  const chatControl = { expireAt: fields.expireAt ?? (common.timestamp ?? Date.now()) + 3_600_000 };
  return { ...base("activated", source, common, false), chatControl } as webhook.ActivatedEvent;
}

/** A deactivated event: this module channel lost control of the chat. */
export function deactivatedEvent(source: Source, common: CommonFields = {}): webhook.DeactivatedEvent {
  return base("deactivated", source, common, false) as webhook.DeactivatedEvent;
}

/** A botSuspended event (module channels; sent without a source). */
export function botSuspendedEvent(
  common: CommonFields & { source?: Source } = {},
): webhook.BotSuspendedEvent {
  return base("botSuspended", common.source, common, false) as webhook.BotSuspendedEvent;
}

/** A botResumed event (module channels; sent without a source). */
export function botResumedEvent(common: CommonFields & { source?: Source } = {}): webhook.BotResumedEvent {
  return base("botResumed", common.source, common, false) as webhook.BotResumedEvent;
}

/** A delivery event: a LINE notification message (PNP) was delivered; `data` is the sender's hash. */
export function deliveryEvent(
  fields: { data: string },
  common: CommonFields & { source?: Source } = {},
): webhook.PnpDeliveryCompletionEvent {
  const delivery = { data: fields.data };
  return {
    ...base("delivery", common.source, common, false),
    delivery,
  } as webhook.PnpDeliveryCompletionEvent;
}

/** Passes any object through as an event: for unknown or future event types and hand-written fixtures. */
export function rawEvent<E extends LineEvent>(event: E): E {
  return event;
}

/** A webhook body `{destination, events}` as LINE posts it. */
export function webhookBody(
  events: readonly unknown[],
  destination: string = DEFAULT_DESTINATION,
): WebhookBody {
  return { destination, events: [...events] };
}

/** A copy of `event` as LINE redelivers it: identical except `deliveryContext.isRedelivery: true`. */
export function redelivered<E extends object>(event: E): E {
  const copy = structuredClone(event) as E & { deliveryContext?: webhook.DeliveryContext };
  copy.deliveryContext = { isRedelivery: true };
  return copy;
}

type Fields = Record<string, unknown>;
type Builder = (source: Source | undefined, fields: Fields, common: CommonFields) => LineEvent;
type FieldType = "string" | "number" | "array";

// What `buildEvent` makes for each kind: required fields (by JSON type) and the builder to call. The
// casts are safe for the required fields; optional ones are passed on as given, as a test double may.
const KINDS: Record<string, { needs?: Record<string, FieldType>; sourceless?: boolean; build: Builder }> = {
  text: {
    needs: { text: "string" },
    build: (s, f, c) => textEvent(s as Source, f as unknown as TextFields, c),
  },
  image: { build: (s, f, c) => imageEvent(s as Source, f as ImageFields, c) },
  video: { build: (s, f, c) => videoEvent(s as Source, f as MediaFields, c) },
  audio: { build: (s, f, c) => audioEvent(s as Source, f as MediaFields, c) },
  file: { build: (s, f, c) => fileEvent(s as Source, f as FileFields, c) },
  location: {
    needs: { latitude: "number", longitude: "number" },
    build: (s, f, c) => locationEvent(s as Source, f as unknown as LocationFields, c),
  },
  sticker: { build: (s, f, c) => stickerEvent(s as Source, f as StickerFields, c) },
  postback: {
    needs: { data: "string" },
    build: (s, f, c) => postbackEvent(s as Source, f as unknown as PostbackFields, c),
  },
  follow: { build: (s, f, c) => followEvent(s as Source, f as { isUnblocked?: boolean }, c) },
  unfollow: { build: (s, _f, c) => unfollowEvent(s as Source, c) },
  join: { build: (s, _f, c) => joinEvent(s as Source, c) },
  leave: { build: (s, _f, c) => leaveEvent(s as Source, c) },
  memberJoined: {
    needs: { userIds: "array" },
    build: (s, f, c) => memberJoinedEvent(s as Source, f as { userIds: string[] }, c),
  },
  memberLeft: {
    needs: { userIds: "array" },
    build: (s, f, c) => memberLeftEvent(s as Source, f as { userIds: string[] }, c),
  },
  unsend: {
    needs: { messageId: "string" },
    build: (s, f, c) => unsendEvent(s as Source, f as { messageId: string }, c),
  },
  videoPlayComplete: {
    needs: { trackingId: "string" },
    build: (s, f, c) => videoPlayCompleteEvent(s as Source, f as { trackingId: string }, c),
  },
  messageEdited: {
    needs: { id: "string", text: "string" },
    build: (s, f, c) => messageEditedEvent(s as Source, f as unknown as TextFields & { id: string }, c),
  },
  beacon: { build: (s, f, c) => beaconEvent(s as Source, f as Partial<webhook.BeaconContent>, c) },
  accountLink: { build: (s, f, c) => accountLinkEvent(s as Source, f as Partial<webhook.LinkContent>, c) },
  membership: {
    build: (s, f, c) => membershipEvent(s as Source, f as { type?: "joined"; membershipId?: number }, c),
  },
  activated: { build: (s, f, c) => activatedEvent(s as Source, f as { expireAt?: number }, c) },
  deactivated: { build: (s, _f, c) => deactivatedEvent(s as Source, c) },
  module: {
    needs: { type: "string" },
    sourceless: true,
    build: (s, f, c) => moduleEvent(f as unknown as webhook.ModuleContent, { ...c, ...(s && { source: s }) }),
  },
  botSuspended: {
    sourceless: true,
    build: (s, _f, c) => botSuspendedEvent({ ...c, ...(s && { source: s }) }),
  },
  botResumed: { sourceless: true, build: (s, _f, c) => botResumedEvent({ ...c, ...(s && { source: s }) }) },
  delivery: {
    needs: { data: "string" },
    sourceless: true,
    build: (s, f, c) => deliveryEvent(f as { data: string }, { ...c, ...(s && { source: s }) }),
  },
};

/** The kinds {@link buildEvent} knows: message types (each makes a message event) and other event types. */
export const EVENT_KINDS: readonly string[] = Object.keys(KINDS);

/** Whether LINE sends events of this kind without a source (module channels, PNP deliveries). */
export function isSourceless(kind: string): boolean {
  return KINDS[kind]?.sourceless === true;
}

/**
 * Builds an event from loose JSON, for the control API: `kind` is a message type ("text", "image"…),
 * which makes a message event, or an event type ("follow", "postback"…); `fields` are that builder's
 * fields. Answers what is wrong instead when the kind is unknown or a required field is missing.
 */
export function buildEvent(
  kind: string,
  source: Source | undefined,
  fields: Fields,
  common: CommonFields = {},
): LineEvent | string {
  const entry = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (entry === undefined)
    return `unknown event kind ${JSON.stringify(kind)}; one of ${EVENT_KINDS.join(", ")}`;
  for (const [key, type] of Object.entries(entry.needs ?? {})) {
    const value = fields[key];
    const ok = type === "array" ? Array.isArray(value) : typeof value === type;
    if (!ok) return `${kind} needs ${key} (${type})`;
  }
  if (source === undefined && entry.sourceless !== true) return `${kind} needs a source`;
  return entry.build(source, fields, common);
}
