// The small interfaces the use cases talk to; adapters (SQLite, LINE client, HTTP partner transport) implement them.
import type { ChatRef, EventFacts } from "../core/line-event.ts";

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** One event of a webhook body, ready to be stored. */
export interface NewEvent {
  facts: EventFacts;
  /** The event's JSON text. */
  body: string;
  /** Whether the channel forwards this event type to its partner (a delivery is queued). */
  forward: boolean;
}

/** The events of one webhook body of one channel. */
export interface IngestRequest {
  senderKey: string;
  partnerId: string;
  receivedAt: number;
  events: NewEvent[];
}

/** An event that was new and is now stored. */
export interface StoredEvent {
  serialNumber: string;
  facts: EventFacts;
  forward: boolean;
}

export interface IngestResult {
  stored: StoredEvent[];
  duplicates: number;
}

/** One delivery of one event to its partner, with what the payload is built from. */
export interface DeliveryTask {
  eventId: number;
  serialNumber: string;
  senderKey: string;
  partnerId: string;
  conversation: string;
  /** Failed attempts so far. */
  attempts: number;
  /** When the event was received (ms): the payload's `time`, and the start of its retry window. */
  receivedAt: number;
  /** The stored event JSON. */
  body: string;
  e164: string | null;
  agreeType: number | null;
}

/** A conversation leased to one worker, with its due deliveries in LINE timestamp order. */
export interface ConversationClaim {
  senderKey: string;
  conversation: string;
  owner: string;
  deliveries: DeliveryTask[];
}

export type DeliveryOutcome = {
  eventId: number;
  at: number;
  status: number | null;
  error: string | null;
} & ({ state: "delivered" } | { state: "retrying"; nextAttemptAt: number } | { state: "dead" });

/** Durable storage of events and the delivery outbox. Every write has committed when its promise resolves. */
export interface Store {
  /** Stores new events (deduped per channel on their key), assigns serial numbers, queues deliveries. */
  ingest(request: IngestRequest): Promise<IngestResult>;
  /**
   * Leases up to `limit` conversations whose head delivery is due and returns up to `batchSize` due
   * deliveries of each, head first.
   */
  claimConversations(request: {
    owner: string;
    limit: number;
    batchSize: number;
    now: number;
    leaseMs: number;
  }): Promise<ConversationClaim[]>;
  /** Records the outcomes of a claim's attempts and releases its lease. */
  completeClaim(claim: ConversationClaim, outcomes: DeliveryOutcome[]): Promise<void>;
  /** The earliest time a conversation becomes due, or null when nothing waits. */
  nextDueAt(): Promise<number | null>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** How a LINE API lookup ended: a value, never an exception. */
export type LineResult<T> = { ok: true; value: T } | { ok: false; status: number | null; reason: string };

export interface LineProfile {
  displayName: string;
  pictureUrl?: string;
  statusMessage?: string;
  language?: string;
}

/** The parts of the LINE Messaging API talkgate calls. */
export interface LineApi {
  getProfile(senderKey: string, chat: ChatRef, userId: string): Promise<LineResult<LineProfile>>;
}

/** How one attempt to deliver to a partner ended. */
export type AttemptResult =
  | { ok: true; status: number }
  | { ok: false; status: number | null; reason: string };

/** Sends payloads to partners. */
export interface PartnerTransport {
  send(partnerId: string, idempotencyKey: string, body: string): Promise<AttemptResult>;
  close(): Promise<void>;
}
