// Use case: a LINE webhook body arrives for a channel; verify it, store every event durably, then start what
// follows (profile lookups, removing what the user unsent).

import type { Logger } from "pino";
import { attachmentKind } from "../core/attachment.ts";
import type { DeliveryPace } from "../core/delivery-pace.ts";
import { TalkgateError } from "../core/errors.ts";
import { asObject, readEventFacts } from "../core/line-event.ts";
import { verifyLineSignature } from "../core/signature.ts";
import type { Clock, MediaFiles, Metrics } from "./ports.ts";
import type { EventLog, IngestResult, NewEvent } from "./store.ts";
import type { UserNames } from "./user-names.ts";

/** What intake needs to know of a channel. */
export interface IntakeChannel {
  senderKey: string;
  channelSecret: string;
  partnerId: string;
  forwardEventTypes: ReadonlySet<string>;
}

export interface IngestDeps {
  events: EventLog;
  clock: Clock;
  /** Longest wait for the commit before the webhook is answered 5xx (LINE gives up after 2 s). */
  commitDeadlineMs: number;
  /** Longest time a message with an attachment waits for its content before it is relayed anyway. */
  mediaWaitMs: number;
  findChannel(senderKey: string): IntakeChannel | undefined;
  /** Looked up as soon as their events are stored, so the names are ready when the payloads are built. */
  names: Pick<UserNames, "prefetch">;
  /** Where the content of messages the user unsent is removed from. */
  files: Pick<MediaFiles, "remove">;
  /** Told how long each commit took: deliveries make way when intake slows down. */
  pace: Pick<DeliveryPace, "observeCommit">;
  metrics: Pick<Metrics, "stage">;
  logger: Logger;
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
  const started = performance.now();
  const committing = deps.events
    .ingest({
      senderKey: channel.senderKey,
      partnerId: channel.partnerId,
      receivedAt,
      events: newEvents,
      mediaWaitMs: deps.mediaWaitMs,
    })
    .then((result) => {
      afterCommit(deps, channel, result, performance.now() - started);
      return result;
    });
  return withDeadline(committing, deps.commitDeadlineMs);
}

// Runs once the events are committed, even when that came after the webhook's deadline.
function afterCommit(deps: IngestDeps, channel: IntakeChannel, result: IngestResult, took: number): void {
  deps.pace.observeCommit(took);
  deps.metrics.stage("commit", took / 1000);
  // The store's signals set the workers going (delivery, attachments); this starts the rest.
  for (const event of result.stored) {
    const { sender } = event.facts;
    if (event.forward && sender) deps.names.prefetch(channel.senderKey, sender.chat, sender.userId);
  }
  for (const path of result.unsentFiles) {
    deps.files
      .remove(path)
      .catch((error: unknown) => deps.logger.error({ err: error }, "media:remove:failed"));
  }
}

/**
 * `commit`, or a rejection once `ms` have passed: LINE counts a webhook unanswered after 2 s as failed, so a
 * database that does not answer gets a 5xx in time. A commit that completes after its deadline is kept; LINE's
 * redelivery of that webhook is then recognized as a duplicate.
 */
function withDeadline<T>(commit: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the commit took longer than ${ms} ms`)), ms);
  });
  commit.catch(() => {}); // a rejection after the deadline has nobody to tell
  return Promise.race([commit, deadline]).finally(() => clearTimeout(timer));
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
