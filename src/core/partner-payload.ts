// The partner payload ("LINE biz 수신 API", SPEC §3) built from a stored LINE event.
import { asObject, type JsonObject } from "./line-event.ts";
import { type LongTextPolicy, previewTextMessage } from "./long-text.ts";

/** The JSON body POSTed to `{receiveUrl}/message`. */
export interface PartnerPayload {
  chat_type: "LINE";
  serial_number: string;
  sender_key: string;
  user_key: string;
  event_type: string;
  time: number;
  mode: string;
  source: JsonObject | null;
  content: JsonObject;
  is_message_attachment: boolean;
  e164: string;
  user_name: string;
  agree_type: number;
  /** LINE's own event fields, for partners that opt in (partners[].lineEventFields). */
  line_timestamp?: number | null;
  webhook_event_id?: string | null;
  is_redelivery?: boolean;
}

/** Event types a channel may forward; `message` and `postback` are the default (the seed contract). */
export const FORWARDABLE_EVENT_TYPES = [
  "message",
  "postback",
  "follow",
  "unfollow",
  "unsend",
  "join",
  "leave",
  "memberJoined",
  "memberLeft",
  "videoPlayComplete",
  "messageEdited",
] as const;

export const DEFAULT_FORWARD_EVENT_TYPES: readonly string[] = ["message", "postback"];

// Where each event type keeps its event-specific object (LINE Messaging API reference); types
// listed with null have none.
const CONTENT_FIELD: Record<string, string | null> = {
  message: "message",
  messageEdited: "message",
  postback: "postback",
  follow: "follow",
  unsend: "unsend",
  memberJoined: "joined",
  memberLeft: "left",
  videoPlayComplete: "videoPlayComplete",
  beacon: "beacon",
  accountLink: "link",
  membership: "membership",
  module: "module",
  delivery: "delivery",
  unfollow: null,
  join: null,
  leave: null,
  activated: null,
  deactivated: null,
  botSuspended: null,
  botResumed: null,
};

// Fields every event has; for a type talkgate does not know, whatever else it carries is its content.
const COMMON_FIELDS = new Set([
  "type",
  "mode",
  "timestamp",
  "source",
  "webhookEventId",
  "deliveryContext",
  "replyToken",
]);

/**
 * LINE's event-specific object: `message` for message events, `postback` ({data, params?}) for
 * postbacks, `follow`, `unsend`, `joined`, `left`, `videoPlayComplete`…; `{}` when there is none.
 */
export function eventContent(event: JsonObject): JsonObject {
  const type = typeof event.type === "string" ? event.type : "";
  if (Object.hasOwn(CONTENT_FIELD, type)) {
    const field = CONTENT_FIELD[type];
    return (field && asObject(event[field])) || {};
  }
  const specific = Object.keys(event).filter((key) => !COMMON_FIELDS.has(key));
  if (specific.length === 1) {
    const value = asObject(event[specific[0] as string]);
    if (value) return value;
  }
  return Object.fromEntries(specific.map((key) => [key, event[key]]));
}

/**
 * The Standard Webhooks `webhook-id` of a delivery: the same on every attempt of one event, unique across
 * every channel of a partner (a serial_number alone is unique only within its channel; SPEC §4).
 */
export function webhookIdOf(senderKey: string, serialNumber: string): string {
  return `${senderKey}:${serialNumber}`;
}

/** What the payload needs beyond the event itself. */
export interface PayloadInput {
  senderKey: string;
  serialNumber: string;
  receivedAt: number;
  event: JsonObject;
  userName: string;
  e164: string | null;
  agreeType: number | null;
  longText: LongTextPolicy;
  /** Add LINE's `timestamp`, `webhookEventId` and `deliveryContext.isRedelivery` (the partner opted in). */
  lineEventFields?: boolean;
}

/** Builds the partner payload of one event. */
export function buildPartnerPayload(input: PayloadInput): PartnerPayload {
  const { event } = input;
  const source = asObject(event.source);
  let content = eventContent(event);
  let cut = false;
  if ((event.type === "message" || event.type === "messageEdited") && content.type === "text") {
    ({ content, cut } = previewTextMessage(content, input.longText));
  }
  return {
    chat_type: "LINE",
    serial_number: input.serialNumber,
    sender_key: input.senderKey,
    user_key: typeof source?.userId === "string" ? source.userId : "",
    event_type: typeof event.type === "string" ? event.type : "unknown",
    time: input.receivedAt,
    mode: typeof event.mode === "string" ? event.mode : "active",
    source,
    content,
    is_message_attachment: cut,
    e164: input.e164 ?? "",
    user_name: input.userName,
    agree_type: input.agreeType ?? 0,
    ...(input.lineEventFields ? lineEventFields(event) : {}),
  };
}

// The event as LINE sent it to talkgate the first time (a redelivery of a stored event is a duplicate).
function lineEventFields(event: JsonObject) {
  return {
    line_timestamp: typeof event.timestamp === "number" ? event.timestamp : null,
    webhook_event_id: typeof event.webhookEventId === "string" ? event.webhookEventId : null,
    is_redelivery: asObject(event.deliveryContext)?.isRedelivery === true,
  };
}
