// What operators see of a stored event unless they ask (and are audited) for more: the message's text masked.
import { asObject, type JsonObject } from "./line-event.ts";

/** The event with its message's text replaced by how long it was; everything else as stored. */
export function maskEvent(event: JsonObject): JsonObject {
  const message = asObject(event.message);
  if (!message || typeof message.text !== "string") return event;
  return { ...event, message: { ...message, text: `[masked: ${message.text.length} characters]` } };
}
