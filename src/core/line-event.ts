// What talkgate reads from a LINE webhook event: tolerant of every shape, including ones LINE adds later.
import { createHash } from "node:crypto";
import { storableText } from "./storable-text.ts";

/** The facts about one received event that storage, ordering and dedupe need. */
export interface EventFacts {
  /** Dedupe key: the `webhookEventId`, or `sha256:<hex>` of the event without its delivery context. */
  key: string;
  type: string;
  mode: string;
  /** LINE's event time (ms); the receive time when the event has none. */
  timestamp: number;
  /** `user:<userId>`, `group:<groupId>`, `room:<roomId>`, or `channel` when the event has no chat. */
  conversation: string;
  userId: string | null;
  /** The id of the message the event is about (message, messageEdited and unsend events). */
  messageId: string | null;
  /** First 12 characters of the user id, else of the group/room id; null when the event has neither. */
  serialPrefix: string | null;
  /** Who sent it and in which chat, when LINE names the user. */
  sender: Sender | null;
  /** The token to answer this event with (LINE: single use, about a minute). */
  replyToken: string | null;
}

/** The chat a user is seen in: their 1:1 chat, or a group or room they are a member of. */
export type ChatRef = { type: "user" } | { type: "group" | "room"; id: string };

/** A user in a chat: whose profile (1:1, or group/room member) names them. */
export interface Sender {
  chat: ChatRef;
  userId: string;
}

/** The sender named by a LINE source object, or null when it names no user. */
export function senderOf(source: JsonObject | null): Sender | null {
  const userId = asString(source?.userId);
  if (!source || !userId) return null;
  const groupId = asString(source.groupId);
  const roomId = asString(source.roomId);
  if (source.type === "group" && groupId) return { chat: { type: "group", id: groupId }, userId };
  if (source.type === "room" && roomId) return { chat: { type: "room", id: roomId }, userId };
  return { chat: { type: "user" }, userId };
}

/** A JSON object as parsed from a webhook body. */
export type JsonObject = Record<string, unknown>;

/** Returns `value` as a JSON object, or null when it is anything else. */
export function asObject(value: unknown): JsonObject | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as JsonObject) : null;
}

// A field that is no usable string (empty, or text no store can hold: see storable-text.ts) counts as absent.
function asString(value: unknown): string | null {
  return typeof value === "string" && value.length > 0 && storableText(value) ? value : null;
}

/** Reads the facts of one event. Never throws: an unknown or malformed event still gets a key. */
export function readEventFacts(raw: unknown, receivedAt: number): EventFacts {
  const event = asObject(raw) ?? {};
  const source = asObject(event.source);
  const userId = asString(source?.userId);
  const groupId = asString(source?.groupId);
  const roomId = asString(source?.roomId);
  const chatId = source?.type === "group" ? groupId : source?.type === "room" ? roomId : null;

  let conversation = "channel";
  if (chatId) conversation = `${source?.type}:${chatId}`;
  else if (userId) conversation = `user:${userId}`;

  const prefixSource = userId ?? groupId ?? roomId;
  const message = asObject(event.message);
  const unsend = asObject(event.unsend);
  const timestamp = event.timestamp;

  return {
    key: asString(event.webhookEventId) ?? hashKey(raw),
    type: asString(event.type) ?? "unknown",
    mode: asString(event.mode) ?? "active",
    timestamp: Number.isSafeInteger(timestamp) ? (timestamp as number) : receivedAt,
    conversation,
    userId,
    messageId: asString(message?.id) ?? asString(unsend?.messageId),
    serialPrefix: prefixSource ? prefixSource.slice(0, 12) : null,
    sender: senderOf(source),
    replyToken: asString(event.replyToken),
  };
}

// Old fixtures carry no webhookEventId. Redeliveries differ only in deliveryContext, so it is left out.
function hashKey(raw: unknown): string {
  let identity = raw;
  const event = asObject(raw);
  if (event) {
    const { deliveryContext: _ignored, ...rest } = event;
    identity = rest;
  }
  return `sha256:${createHash("sha256")
    .update(String(JSON.stringify(identity)))
    .digest("hex")}`;
}
