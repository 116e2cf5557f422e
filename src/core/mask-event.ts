// What operators see of a stored event unless they ask (and are audited) for more: the message's text masked.
import { asObject, type JsonObject } from "./line-event.ts";

/** The event with its message's text replaced by how long it was; everything else as stored. */
export function maskEvent(event: JsonObject): JsonObject {
  const message = asObject(event.message);
  if (!message || typeof message.text !== "string") return event;
  return { ...event, message: { ...message, text: `[masked: ${message.text.length} characters]` } };
}

const MASKED_FIELDS = new Set(["text", "altText"]);

/** A message sent to a user with every text in it (flex and template contents too) replaced by how long it was. */
export function maskMessage(message: unknown): unknown {
  if (Array.isArray(message)) return message.map(maskMessage);
  const object = asObject(message);
  if (!object) return message;
  return Object.fromEntries(
    Object.entries(object).map(([key, value]) => [
      key,
      MASKED_FIELDS.has(key) && typeof value === "string"
        ? `[masked: ${value.length} characters]`
        : maskMessage(value),
    ]),
  );
}
