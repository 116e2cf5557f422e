// How a new event is recorded, whatever the database: its stored form, its attachment, its delivery, and what it
// changes of its conversation (mode and reply token). Stores load rows and apply these decisions in one transaction.
import { type MediaKind, withoutContent } from "./attachment.ts";
import { asObject, type EventFacts } from "./line-event.ts";

/** What a store knows, before recording an event, that decides how it is recorded. */
export interface RecordContext {
  receivedAt: number;
  /** Longest time a message with an attachment waits for its content before it is relayed anyway. */
  mediaWaitMs: number;
  /** An unsend of this event's message was stored earlier (it can arrive first): the message is taken back. */
  unsentBefore: boolean;
}

/** How one new event is written. */
export interface EventRecord {
  /** The event's JSON as stored: without its message's content when the user took it back. */
  body: string;
  unsentAt: number | null;
  /** The attachment job: to fetch, or gone at once (unsent before it arrived). */
  media: { kind: MediaKind; state: "pending" | "gone"; goneReason: string | null } | null;
  /** The delivery to the partner (forwarded types only): due at `relayAt`. */
  delivery: { relayAt: number } | null;
  /** The message whose text and content this event takes back (an unsend), or null. */
  takesBack: string | null;
}

/**
 * Decides how to record an event: an unsend that came first takes the message's content back at once; a
 * message with an attachment on LINE waits for it (`mediaWaitMs` at most) before it is relayed.
 */
export function recordEvent(
  facts: EventFacts,
  event: { body: string; forward: boolean; media: MediaKind | null },
  context: RecordContext,
): EventRecord {
  const { receivedAt } = context;
  const unsent = context.unsentBefore && facts.messageId !== null && facts.type !== "unsend";
  const media = event.media && facts.messageId !== null ? event.media : null;
  return {
    body: unsent ? scrubbed(event.body) : event.body,
    unsentAt: unsent ? receivedAt : null,
    media: media
      ? { kind: media, state: unsent ? "gone" : "pending", goneReason: unsent ? "unsent" : null }
      : null,
    delivery: event.forward
      ? { relayAt: media && !unsent ? receivedAt + context.mediaWaitMs : receivedAt }
      : null,
    takesBack: facts.type === "unsend" ? facts.messageId : null,
  };
}

/** A stored event's JSON once its message was taken back: only the message's id and type stay. */
export function scrubbed(body: string): string {
  return JSON.stringify(withoutContent(asObject(JSON.parse(body)) ?? {}));
}

/** What sending needs of a conversation: the mode and reply token of its latest event (by LINE timestamp). */
export interface ConversationState {
  /** LINE timestamp of the latest event seen. */
  lastEventAt: number;
  lastMode: string;
  replyToken: string | null;
  /** When the event carrying the reply token was received (talkgate's clock). */
  replyTokenAt: number | null;
  /** The send (serial_number) that used the reply token; null while unused. */
  replyTokenUsedBy: string | null;
}

/**
 * The conversation after an event: the latest event by LINE timestamp wins its mode and, when it carries
 * one, its reply token (unused again); an older event arriving late changes neither. Null for events of
 * the channel itself (no conversation).
 */
export function conversationAfter(
  current: ConversationState | null,
  facts: Pick<EventFacts, "conversation" | "timestamp" | "mode" | "replyToken">,
  receivedAt: number,
): ConversationState | null {
  if (facts.conversation === "channel") return null;
  if (current && facts.timestamp < current.lastEventAt) return current;
  const carries = facts.replyToken !== null;
  return {
    lastEventAt: facts.timestamp,
    lastMode: facts.mode,
    replyToken: carries ? facts.replyToken : (current?.replyToken ?? null),
    replyTokenAt: carries ? receivedAt : (current?.replyTokenAt ?? null),
    replyTokenUsedBy: carries ? null : (current?.replyTokenUsedBy ?? null),
  };
}
