// Use case: a LINE webhook body arrives for a channel; verify it, store every event durably, then wake the workers.
import { attachmentKind } from "../core/attachment.ts";
import { TalkgateError } from "../core/errors.ts";
import { asObject, readEventFacts } from "../core/line-event.ts";
import { verifyLineSignature } from "../core/signature.ts";
import type { Clock, IngestResult, NewEvent, Store } from "./ports.ts";

/** What intake needs to know of a channel. */
export interface IntakeChannel {
  senderKey: string;
  channelSecret: string;
  partnerId: string;
  forwardEventTypes: ReadonlySet<string>;
}

export interface IngestDeps {
  store: Store;
  clock: Clock;
  /** Longest time a message with an attachment waits for its content before it is relayed anyway. */
  mediaWaitMs: number;
  findChannel(senderKey: string): IntakeChannel | undefined;
}

/**
 * Verifies, parses and stores one webhook body. Resolves only once every new event is committed;
 * throws a {@link TalkgateError} for a refused body and lets storage failures through (answered 5xx).
 */
export async function ingestWebhook(
  deps: IngestDeps,
  request: { senderKey: string; body: Buffer; signature: string | undefined },
): Promise<IngestResult> {
  const channel = deps.findChannel(request.senderKey);
  if (!channel) throw new TalkgateError("-406", `unknown sender_key ${JSON.stringify(request.senderKey)}`);
  if (!verifyLineSignature(channel.channelSecret, request.body, request.signature)) {
    throw new TalkgateError("-412", "x-line-signature is missing or does not match the body");
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body.toString("utf8"));
  } catch {
    throw new TalkgateError("-405", "body: not valid JSON");
  }
  // LINE's URL check sends {"events": []}; a body without an events array carries nothing to store.
  const events = asObject(parsed)?.events;
  if (!Array.isArray(events) || events.length === 0) return { stored: [], duplicates: 0, unsentFiles: [] };

  const receivedAt = deps.clock.now();
  const newEvents: NewEvent[] = events.map((event, i) => {
    const facts = guard(() => readEventFacts(event, receivedAt), i);
    return {
      facts,
      body: guard(() => JSON.stringify(event), i),
      forward: channel.forwardEventTypes.has(facts.type),
      media: attachmentKind(asObject(event) ?? {}),
    };
  });
  // The store sets the rest going: delivery, attachment fetches, profile lookups.
  return deps.store.ingest({
    senderKey: channel.senderKey,
    partnerId: channel.partnerId,
    receivedAt,
    events: newEvents,
    mediaWaitMs: deps.mediaWaitMs,
  });
}

// An event parsed from JSON serializes (and hashes) again, unless it is nested deeper than the
// serializer's stack: that is bad input, not a storage failure.
function guard<T>(work: () => T, index: number): T {
  try {
    return work();
  } catch {
    throw new TalkgateError("-405", `events[${index}]: nested too deeply to be stored`);
  }
}
