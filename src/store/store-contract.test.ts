// The store contract: every database talkgate runs on passes these same tests (SQLite on real files, PostgreSQL
// on a real server this test starts): serials, dedupe, claims, leases, attachments, unsend, restarts, sends
// (idempotency, resumption, reply tokens, standby), conversation state and replay.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { sharedPostgres } from "../../test/support/postgres.ts";
import type {
  ChannelTokenRow,
  ConversationClaim,
  DeliveryOutcome,
  IngestRequest,
  MediaOutcome,
  NewSend,
  SendAnswer,
  Store,
} from "../app/store.ts";
import type { MediaKind } from "../core/attachment.ts";
import { readEventFacts } from "../core/line-event.ts";
import { ERASED_GONE_REASON, RETENTION_GONE_REASON } from "../core/retention.ts";
import { afterFailure, DEFAULT_RETRY_POLICY } from "../core/retry-policy.ts";
import { openPostgresStore } from "./postgres/postgres-store.ts";
import { openSqliteStore } from "./sqlite/sqlite-store.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-store-contract-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A database the contract runs over. */
interface Database {
  name: string;
  /** A new, empty place for a store: a file path, a database URL. */
  place(): Promise<string>;
  /** Opens (or reopens, as a restarted process) the store at `place`. */
  open(place: string): Promise<Store>;
  /**
   * Whether a reopened store knows the earlier process is gone, so that its leases and sends in progress are
   * free at once (SQLite: one process per file). Otherwise (PostgreSQL: another instance may still be at work)
   * they are free when their lease or staleness ends.
   */
  reopenEndsWork: boolean;
}

let files = 0;
const DATABASES: Database[] = [
  {
    name: "sqlite",
    place: async () => join(dir, `store-${++files}`, "talkgate.db"),
    open: async (path) => openSqliteStore(path),
    reopenEndsWork: true,
  },
  {
    name: "postgres",
    place: async () => (await sharedPostgres()).createDatabase(),
    open: (url) =>
      openPostgresStore(url, { poolSize: 4, connectTimeoutMs: 5_000, statementTimeoutMs: 5_000 }),
    reopenEndsWork: false,
  },
];

const SENDER = "1656168303";
const OTHER_SENDER = "2000000001";
const USER_A = "Uae87c693e2897ccc4c7654acd04f9259";
const USER_B = "U0123456789abcdef0123456789abcdef";
const GROUP = "Ca56f94637cc4347f90a25382909b24b9";
const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const LEASE = 60_000;

const hex = (ms: number) =>
  Math.floor(ms / 1000)
    .toString(16)
    .toUpperCase();

interface EventOptions {
  id?: string | null;
  user?: string | null;
  group?: string;
  timestamp?: number;
  type?: string;
  mode?: "active" | "standby";
  /** null: the event carries none (as unsend, unfollow and leave events do). */
  replyToken?: string | null;
}

/** A LINE event; `id` is its webhookEventId (null: none, so it is deduped on its hash). */
function lineEvent(options: EventOptions = {}): Record<string, unknown> {
  const {
    id = `evt-${Math.random()}`,
    user = USER_A,
    group,
    timestamp = T0 - 1000,
    type = "message",
    mode = "active",
    replyToken = "r",
  } = options;
  const source: Record<string, unknown> = group ? { type: "group", groupId: group } : { type: "user" };
  if (user) source.userId = user;
  const event: Record<string, unknown> = {
    type,
    mode,
    timestamp,
    source,
    deliveryContext: { isRedelivery: false },
    message: { id: `m-${id}`, type: "text", text: "hello" },
  };
  if (replyToken !== null) event.replyToken = replyToken;
  if (id !== null) event.webhookEventId = id;
  return event;
}

function request(
  events: unknown[],
  receivedAt: number,
  options: { senderKey?: string; forward?: boolean } = {},
): IngestRequest {
  return {
    senderKey: options.senderKey ?? SENDER,
    partnerId: "jedai",
    receivedAt,
    events: events.map((raw) => ({
      facts: readEventFacts(raw, receivedAt),
      body: JSON.stringify(raw),
      forward: options.forward ?? true,
      media: null,
    })),
    mediaWaitMs: 30_000,
  };
}

async function serials(store: Store, events: unknown[], receivedAt: number, senderKey = SENDER) {
  const result = await store.ingest(request(events, receivedAt, { senderKey }));
  return result.stored.map((s) => s.serialNumber);
}

/** No partner limited: as many conversations as are due. */
const ANY_SLOTS = () => Number.POSITIVE_INFINITY;

function claim(store: Store, now: number, owner = "w1", extra: { limit?: number; batchSize?: number } = {}) {
  return store.claimConversations({
    owner,
    limit: extra.limit ?? 10,
    batchSize: extra.batchSize ?? 10,
    now,
    leaseMs: LEASE,
    slots: ANY_SLOTS,
  });
}

function outcome(eventId: number, at: number, result: "delivered" | "dead" | number): DeliveryOutcome {
  if (result === "delivered") return { eventId, at, status: 200, error: null, state: "delivered" };
  if (result === "dead") return { eventId, at, status: 500, error: "HTTP 500", state: "dead" };
  return { eventId, at, status: 503, error: "HTTP 503", state: "retrying", nextAttemptAt: result };
}

const messageIds = (claimed: ConversationClaim | undefined) =>
  (claimed?.deliveries ?? []).map((d) => (JSON.parse(d.body) as { message: { id: string } }).message.id);

for (const db of DATABASES) describe(db.name, () => contract(db));

function contract(db: Database): void {
  /** Runs `body` with a fresh store in a new place and closes it afterwards. */
  async function withStore(body: (store: Store) => Promise<void>): Promise<void> {
    const store = await db.open(await db.place());
    try {
      await body(store);
    } finally {
      await store.close();
    }
  }

  test("ingest numbers serials per (sender_key, prefix): P-0001, P-0002…", async () => {
    await withStore(async (store) => {
      const h = hex(T0);
      assert.deepEqual(await serials(store, [lineEvent(), lineEvent(), lineEvent({ user: USER_B })], T0), [
        `Uae87c693e28-0001-${h}`,
        `Uae87c693e28-0002-${h}`,
        `U0123456789a-0001-${h}`,
      ]);
      assert.deepEqual(await serials(store, [lineEvent()], T0 + 5_000), [
        `Uae87c693e28-0003-${hex(T0 + 5_000)}`,
      ]);
      // Another channel has its own counters.
      assert.deepEqual(await serials(store, [lineEvent()], T0, OTHER_SENDER), [`Uae87c693e28-0001-${h}`]);
      // A group event without a user: the group id; an event without a source: the sender_key.
      assert.deepEqual(await serials(store, [lineEvent({ user: null, group: GROUP })], T0), [
        `Ca56f94637cc-0001-${h}`,
      ]);
      assert.deepEqual(
        await serials(store, [{ type: "activated", timestamp: T0, webhookEventId: "act-1" }], T0),
        [`1656168303-0001-${h}`],
      );
    });
  });

  test("ingest returns the stored events with their facts and forward flags", async () => {
    await withStore(async (store) => {
      const raw = lineEvent({ id: "e1" });
      const result = await store.ingest(request([raw], T0, { forward: false }));
      assert.equal(result.duplicates, 0);
      assert.deepEqual(result.stored, [
        {
          serialNumber: `Uae87c693e28-0001-${hex(T0)}`,
          facts: readEventFacts(raw, T0),
          forward: false,
          fetchesMedia: false,
        },
      ]);
      // Not forwarded: stored, but nothing to deliver.
      assert.deepEqual(await claim(store, T0 + 1), []);
      assert.equal(await store.nextDueAt(0, ANY_SLOTS), null);
    });
  });

  test("ingest dedupes on the event key per channel and spends no serial on a duplicate", async () => {
    await withStore(async (store) => {
      const first = lineEvent({ id: "01HDUP" });
      await store.ingest(request([first], T0));
      const redelivery = { ...first, deliveryContext: { isRedelivery: true } };
      assert.deepEqual(await store.ingest(request([redelivery], T0 + 3_000)), {
        stored: [],
        duplicates: 1,
        unsentFiles: [],
      });

      // Without webhookEventId the hash (which ignores deliveryContext) is the key.
      const old = lineEvent({ id: null, timestamp: T0 - 50 });
      assert.equal((await store.ingest(request([old], T0))).stored.length, 1);
      const oldAgain = { ...old, deliveryContext: { isRedelivery: true } };
      assert.deepEqual(await store.ingest(request([oldAgain], T0 + 1)), {
        stored: [],
        duplicates: 1,
        unsentFiles: [],
      });

      // A duplicate inside one body is stored once.
      const twice = lineEvent({ id: "01HTWICE" });
      const both = await store.ingest(request([twice, twice], T0 + 2));
      assert.equal(both.stored.length, 1);
      assert.equal(both.duplicates, 1);

      // The counter moved only for stored events: 0001 first, 0002 old, 0003 twice, so 0004 next.
      assert.deepEqual(await serials(store, [lineEvent()], T0 + 3), [`Uae87c693e28-0004-${hex(T0 + 3)}`]);
      // The same key in another channel is a different event.
      assert.equal((await store.ingest(request([first], T0, { senderKey: OTHER_SENDER }))).stored.length, 1);

      // Only one delivery per stored event.
      const [claimed] = await claim(store, T0 + 10);
      assert.equal(claimed?.deliveries.length, 4);
    });
  });

  test("the serial counter restarts at 0001 on a new UTC day", async () => {
    await withStore(async (store) => {
      const lastMs = Date.UTC(2024, 0, 15, 23, 59, 59, 999);
      const nextDay = Date.UTC(2024, 0, 16, 0, 0, 0, 0);
      assert.deepEqual(await serials(store, [lineEvent(), lineEvent()], lastMs), [
        `Uae87c693e28-0001-${hex(lastMs)}`,
        `Uae87c693e28-0002-${hex(lastMs)}`,
      ]);
      assert.deepEqual(await serials(store, [lineEvent()], nextDay), [`Uae87c693e28-0001-${hex(nextDay)}`]);
      assert.deepEqual(await serials(store, [lineEvent()], lastMs), [`Uae87c693e28-0003-${hex(lastMs)}`]);
    });
  });

  test("concurrent ingests in one tick get distinct consecutive serials and are all stored", async () => {
    await withStore(async (store) => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.ingest(request([lineEvent({ id: `c${i}` })], T0))),
      );
      const numbers = results.map((r) => r.stored[0]?.serialNumber);
      assert.deepEqual(
        numbers,
        Array.from({ length: 50 }, (_, i) => `Uae87c693e28-${String(i + 1).padStart(4, "0")}-${hex(T0)}`),
      );
      const [claimed] = await claim(store, T0, "w1", { batchSize: 100 });
      assert.equal(claimed?.deliveries.length, 50);
    });
  });

  test("claimConversations returns a conversation's deliveries in (LINE timestamp, id) order with their task fields", async () => {
    await withStore(async (store) => {
      await store.ingest(request([lineEvent({ id: "t3", timestamp: 3_000 })], T0));
      await store.ingest(request([lineEvent({ id: "t1", timestamp: 1_000 })], T0 + 1));
      await store.ingest(
        request(
          [lineEvent({ id: "t2a", timestamp: 2_000 }), lineEvent({ id: "t2b", timestamp: 2_000 })],
          T0 + 2,
        ),
      );
      const claims = await claim(store, T0 + 10);
      assert.equal(claims.length, 1);
      const [claimed] = claims;
      assert.equal(claimed?.senderKey, SENDER);
      assert.equal(claimed?.conversation, `user:${USER_A}`);
      assert.equal(claimed?.owner, "w1");
      assert.equal(claimed?.until, T0 + 10 + LEASE);
      assert.deepEqual(messageIds(claimed), ["m-t1", "m-t2a", "m-t2b", "m-t3"]);
      const head = claimed?.deliveries[0];
      assert.deepEqual(
        { ...head, eventId: typeof head?.eventId },
        {
          eventId: "number",
          serialNumber: `Uae87c693e28-0002-${hex(T0 + 1)}`,
          senderKey: SENDER,
          partnerId: "jedai",
          conversation: `user:${USER_A}`,
          attempts: 0,
          receivedAt: T0 + 1,
          retryFrom: T0 + 1,
          dueAt: T0 + 1,
          body: JSON.stringify(lineEvent({ id: "t1", timestamp: 1_000 })),
          e164: null,
          agreeType: null,
        },
      );
    });
  });

  test("claimConversations carries the user directory's e164 and agree_type", async () => {
    await withStore(async (store) => {
      await store.setDirectoryEntry(SENDER, USER_A, { e164: "01012349876", agreeType: 1 }, T0);
      await store.ingest(request([lineEvent()], T0));
      const [claimed] = await claim(store, T0);
      assert.equal(claimed?.deliveries[0]?.e164, "01012349876");
      assert.equal(claimed?.deliveries[0]?.agreeType, 1);
    });
  });

  test("claimConversations respects limit, batchSize and the time an event was received", async () => {
    await withStore(async (store) => {
      await store.ingest(
        request(
          [1, 2, 3].map((n) => lineEvent({ id: `a${n}`, timestamp: n })),
          T0,
        ),
      );
      await store.ingest(request([lineEvent({ id: "b1", user: USER_B })], T0 + 1));
      await store.ingest(request([lineEvent({ id: "g1", user: null, group: GROUP })], T0 + 2));
      assert.deepEqual(await claim(store, T0 - 1), [], "nothing is due before it was received");
      assert.equal(await store.nextDueAt(0, ANY_SLOTS), T0);

      const first = await claim(store, T0 + 5, "w1", { limit: 2, batchSize: 2 });
      assert.deepEqual(
        first.map((c) => c.conversation),
        [`user:${USER_A}`, `user:${USER_B}`],
      );
      assert.deepEqual(messageIds(first[0]), ["m-a1", "m-a2"]);
      const second = await claim(store, T0 + 5, "w2", { limit: 2, batchSize: 2 });
      assert.deepEqual(
        second.map((c) => c.conversation),
        [`group:${GROUP}`],
      );
    });
  });

  test("a leased conversation is not claimed again until its lease ends", async () => {
    await withStore(async (store) => {
      await store.ingest(request([lineEvent({ id: "x" })], T0));
      const [mine] = await claim(store, T0, "w1");
      assert.ok(mine);
      assert.deepEqual(await claim(store, T0, "w2"), []);
      assert.deepEqual(await claim(store, T0 + LEASE - 1, "w2"), []);
      const [taken] = await claim(store, T0 + LEASE, "w2");
      assert.equal(taken?.owner, "w2");
      assert.deepEqual(messageIds(taken), ["m-x"]);
      assert.equal(taken?.deliveries[0]?.attempts, 0, "an expired lease is not a failed attempt");

      // The first owner finishing late records its outcome but does not release the second owner's lease.
      await store.completeClaim(mine, [outcome(mine.deliveries[0]?.eventId ?? -1, T0 + LEASE + 1, 503)]);
      assert.deepEqual(await claim(store, T0 + LEASE + 2, "w3"), []);
    });
  });

  test("completeClaim with every delivery delivered leaves nothing to claim", async () => {
    await withStore(async (store) => {
      await store.ingest(
        request([lineEvent({ id: "a", timestamp: 1 }), lineEvent({ id: "b", timestamp: 2 })], T0),
      );
      const [claimed] = await claim(store, T0);
      assert.ok(claimed);
      await store.completeClaim(
        claimed,
        claimed.deliveries.map((d) => outcome(d.eventId, T0 + 10, "delivered")),
      );
      assert.deepEqual(await claim(store, T0 + 10 * LEASE), []);
      assert.equal(await store.nextDueAt(0, ANY_SLOTS), null);
    });
  });

  test("a retrying head blocks its conversation until nextAttemptAt, then comes first again", async () => {
    await withStore(async (store) => {
      await store.ingest(
        request([lineEvent({ id: "h", timestamp: 1 }), lineEvent({ id: "n", timestamp: 2 })], T0),
      );
      const [claimed] = await claim(store, T0);
      assert.ok(claimed);
      const retryAt = T0 + 5_000;
      await store.completeClaim(claimed, [outcome(claimed.deliveries[0]?.eventId ?? -1, T0 + 100, retryAt)]);
      assert.equal(await store.nextDueAt(0, ANY_SLOTS), retryAt);
      assert.deepEqual(await claim(store, retryAt - 1, "w2"), [], "the event behind the head waits too");
      const [again] = await claim(store, retryAt, "w2");
      assert.deepEqual(messageIds(again), ["m-h", "m-n"]);
      assert.deepEqual(
        again?.deliveries.map((d) => d.attempts),
        [1, 0],
      );
    });
  });

  test("a retrying conversation does not hold up the others", async () => {
    await withStore(async (store) => {
      await store.ingest(request([lineEvent({ id: "a" })], T0));
      const [a] = await claim(store, T0);
      assert.ok(a);
      await store.completeClaim(a, [outcome(a.deliveries[0]?.eventId ?? -1, T0 + 1, T0 + 60_000)]);
      await store.ingest(request([lineEvent({ id: "b", user: USER_B })], T0 + 2));
      const claims = await claim(store, T0 + 3);
      assert.deepEqual(
        claims.map((c) => c.conversation),
        [`user:${USER_B}`],
      );
    });
  });

  test("when the head succeeds and the next one fails, the next one becomes the retrying head", async () => {
    await withStore(async (store) => {
      await store.ingest(
        request(
          [1, 2, 3].map((n) => lineEvent({ id: `e${n}`, timestamp: n })),
          T0,
        ),
      );
      const [claimed] = await claim(store, T0);
      const [d1, d2] = claimed?.deliveries ?? [];
      assert.ok(claimed && d1 && d2);
      await store.completeClaim(claimed, [
        outcome(d1.eventId, T0 + 1, "delivered"),
        outcome(d2.eventId, T0 + 2, T0 + 1_000),
      ]);
      assert.deepEqual(await claim(store, T0 + 999), []);
      assert.deepEqual(messageIds((await claim(store, T0 + 1_000))[0]), ["m-e2", "m-e3"]);
    });
  });

  test("a dead head stops blocking its conversation", async () => {
    await withStore(async (store) => {
      await store.ingest(
        request([lineEvent({ id: "d", timestamp: 1 }), lineEvent({ id: "next", timestamp: 2 })], T0),
      );
      const [claimed] = await claim(store, T0);
      assert.ok(claimed);
      await store.completeClaim(claimed, [outcome(claimed.deliveries[0]?.eventId ?? -1, T0 + 1, "dead")]);
      const [again] = await claim(store, T0 + 1);
      assert.deepEqual(messageIds(again), ["m-next"]);
    });
  });

  test("an event received while its conversation is leased is claimed after the lease is released", async () => {
    await withStore(async (store) => {
      await store.ingest(request([lineEvent({ id: "first", timestamp: 1 })], T0));
      const [claimed] = await claim(store, T0);
      assert.ok(claimed);
      await store.ingest(request([lineEvent({ id: "second", timestamp: 2 })], T0 + 1));
      assert.deepEqual(await claim(store, T0 + 2, "w2"), [], "still leased");
      await store.completeClaim(claimed, [
        outcome(claimed.deliveries[0]?.eventId ?? -1, T0 + 3, "delivered"),
      ]);
      assert.deepEqual(messageIds((await claim(store, T0 + 3, "w2"))[0]), ["m-second"]);
    });
  });

  test("an event for a leased conversation does not make it look due before the lease ends", async () => {
    await withStore(async (store) => {
      await store.ingest(request([lineEvent({ id: "first", timestamp: 1 })], T0));
      const [claimed] = await claim(store, T0);
      assert.ok(claimed);
      await store.ingest(request([lineEvent({ id: "second", timestamp: 2 })], T0 + 1));
      // Idle workers sleep until nextDueAt; a past time here would make them spin on the leased queue.
      assert.equal(await store.nextDueAt(0, ANY_SLOTS), T0 + LEASE);
    });
  });

  test("an event with an earlier LINE timestamp than a retrying head goes first", async () => {
    await withStore(async (store) => {
      await store.ingest(request([lineEvent({ id: "late", timestamp: 2_000 })], T0));
      const [claimed] = await claim(store, T0);
      assert.ok(claimed);
      await store.completeClaim(claimed, [
        outcome(claimed.deliveries[0]?.eventId ?? -1, T0 + 1, T0 + 60_000),
      ]);
      await store.ingest(request([lineEvent({ id: "early", timestamp: 1_000 })], T0 + 2));
      const [next] = await claim(store, T0 + 3);
      assert.deepEqual(messageIds(next), ["m-early"], "the retrying event stays behind until its time");
    });
  });

  test("reopening the store keeps events, counters, dedupe keys and waiting deliveries", async () => {
    const path = await db.place();
    const first = await db.open(path);
    const raw = lineEvent({ id: "persist" });
    await first.ingest(request([raw], T0));
    await first.close();

    const second = await db.open(path);
    try {
      assert.deepEqual(await second.ingest(request([raw], T0 + 1)), {
        stored: [],
        duplicates: 1,
        unsentFiles: [],
      });
      assert.deepEqual(await serials(second, [lineEvent({ id: "after" })], T0 + 2), [
        `Uae87c693e28-0002-${hex(T0 + 2)}`,
      ]);
      const [claimed] = await claim(second, T0 + 3);
      assert.deepEqual(messageIds(claimed), ["m-persist", "m-after"]);
      assert.equal(claimed?.deliveries[0]?.serialNumber, `Uae87c693e28-0001-${hex(T0)}`);
    } finally {
      await second.close();
    }
  });

  test("the leases of a stopped process: free on reopening (one process), or when they end (a cluster)", async () => {
    const path = await db.place();
    const first = await db.open(path);
    await first.ingest(request([lineEvent({ id: "leased" })], T0));
    const [claimed] = await claim(first, T0, "crashed-worker");
    assert.ok(claimed);
    await first.close(); // the worker never completes its claim

    const second = await db.open(path);
    try {
      if (!db.reopenEndsWork) {
        assert.deepEqual(await claim(second, T0 + LEASE - 1, "new-worker"), [], "held until its lease ends");
        assert.equal(await second.nextDueAt(T0 + 1, ANY_SLOTS), T0 + LEASE);
      }
      const at = db.reopenEndsWork ? T0 + 1 : T0 + LEASE;
      const [again] = await claim(second, at, "new-worker");
      assert.equal(again?.owner, "new-worker");
      assert.deepEqual(messageIds(again), ["m-leased"]);
    } finally {
      await second.close();
    }
  });

  test("ping answers and close lets queued writes commit first", async () => {
    const path = await db.place();
    const store = await db.open(path);
    await store.ping();
    const pending = store.ingest(request([lineEvent({ id: "queued" })], T0));
    await store.close();
    assert.equal((await pending).stored.length, 1);
    const reopened = await db.open(path);
    try {
      assert.equal((await reopened.ingest(request([lineEvent({ id: "queued" })], T0))).duplicates, 1);
    } finally {
      await reopened.close();
    }
  });

  // --- Attachments and unsend (SPEC §5) ---

  const MEDIA_WAIT = 30_000;
  const MEDIA_LEASE = 120_000;

  /** A message event with `message` of the given type (an image on LINE unless told otherwise). */
  function mediaEvent(
    id: string,
    message: Record<string, unknown> = { type: "image", contentProvider: { type: "line" } },
    options: EventOptions = {},
  ): Record<string, unknown> {
    return { ...lineEvent({ id, ...options }), message: { id: `m-${id}`, ...message } };
  }

  /** An unsend event taking back message `messageId`. */
  function unsendEvent(id: string, messageId: string, options: EventOptions = {}): Record<string, unknown> {
    const { message: _none, replyToken: _no, ...event } = lineEvent({ id, ...options, type: "unsend" });
    return { ...event, unsend: { messageId } };
  }

  /** An ingest request whose events carry the given attachment kinds. */
  function mediaRequest(
    events: Array<{ raw: unknown; media?: MediaKind | null }>,
    receivedAt: number,
    options: { senderKey?: string; forward?: boolean } = {},
  ): IngestRequest {
    return {
      ...request([], receivedAt, options),
      events: events.map(({ raw, media = null }) => ({
        facts: readEventFacts(raw, receivedAt),
        body: JSON.stringify(raw),
        forward: options.forward ?? true,
        media,
      })),
      mediaWaitMs: MEDIA_WAIT,
    };
  }

  /** Ingests one image message received at `at`; returns its serial number. */
  async function ingestImage(store: Store, id: string, at = T0, senderKey = SENDER): Promise<string> {
    const result = await store.ingest(
      mediaRequest([{ raw: mediaEvent(id), media: "image" }], at, { senderKey }),
    );
    const serial = result.stored[0]?.serialNumber;
    assert.ok(serial, "stored");
    return serial;
  }

  function claimMedia(store: Store, now: number, owner = "m1", limit = 10) {
    return store.claimMedia({ owner, limit, now, leaseMs: MEDIA_LEASE });
  }

  function storedAs(path: string, body = "bytes"): MediaOutcome {
    return {
      state: "stored",
      contentType: "image/jpeg",
      size: body.length,
      sha256: createHash("sha256").update(body).digest("hex"),
      path,
    };
  }

  for (const kind of ["image", "video", "audio", "file"] as const) {
    test(`ingest of a message with an attachment (${kind}): its media pending and its delivery held until receivedAt + mediaWaitMs`, async () => {
      await withStore(async (store) => {
        const raw = mediaEvent("a1", { type: kind, fileName: "x.bin", fileSize: 3 });
        const { stored } = await store.ingest(mediaRequest([{ raw, media: kind }], T0));
        const serial = stored[0]?.serialNumber ?? "";

        const found = await store.findMessage(SENDER, serial);
        assert.deepEqual(found?.media, {
          kind,
          state: "pending",
          contentType: null,
          size: null,
          sha256: null,
          path: null,
          goneReason: null,
        });
        assert.equal(found?.unsent, false);
        assert.deepEqual(found?.event, raw);

        assert.deepEqual(await claim(store, T0), [], "held at once");
        assert.deepEqual(await claim(store, T0 + MEDIA_WAIT - 1), [], "held until the wait is over");
        assert.equal(
          await store.nextDueAt(0, ANY_SLOTS),
          T0 + MEDIA_WAIT,
          "idle workers sleep until the wait is over",
        );
        const [claimed] = await claim(store, T0 + MEDIA_WAIT);
        assert.deepEqual(messageIds(claimed), ["m-a1"]);
        assert.equal(claimed?.deliveries[0]?.attempts, 0);
      });
    });
  }

  test("claimMedia returns the due attachments as jobs, oldest first, up to limit", async () => {
    await withStore(async (store) => {
      await ingestImage(store, "i1", T0);
      const mixed = await store.ingest(
        mediaRequest(
          [
            { raw: mediaEvent("v1", { type: "video", contentProvider: { type: "line" } }), media: "video" },
            { raw: lineEvent({ id: "t1" }) }, // a text: nothing to fetch
          ],
          T0 + 1,
        ),
      );
      assert.deepEqual(
        mixed.stored.map((event) => event.fetchesMedia),
        [true, false],
        "the intake is told which events queued a download",
      );
      await ingestImage(store, "o1", T0 + 2, OTHER_SENDER);
      assert.deepEqual(await claimMedia(store, T0 - 1), [], "nothing is due before it was received");

      const first = await claimMedia(store, T0 + 5, "m1", 2);
      assert.deepEqual(
        first.map(({ eventId: _id, ...job }) => job),
        [
          { owner: "m1", senderKey: SENDER, messageId: "m-i1", kind: "image", attempts: 0, receivedAt: T0 },
          {
            owner: "m1",
            senderKey: SENDER,
            messageId: "m-v1",
            kind: "video",
            attempts: 0,
            receivedAt: T0 + 1,
          },
        ],
      );
      const rest = await claimMedia(store, T0 + 5, "m2", 10);
      assert.deepEqual(
        rest.map((job) => [job.senderKey, job.messageId]),
        [[OTHER_SENDER, "m-o1"]],
      );
      assert.deepEqual(await claimMedia(store, T0 + 6, "m3"), []);
    });
  });

  test("a leased attachment is not claimed twice; nextMediaDueAt is its lease's end, then it is claimable again", async () => {
    await withStore(async (store) => {
      await ingestImage(store, "l1", T0);
      assert.equal(await store.nextMediaDueAt(), T0);
      const [job] = await claimMedia(store, T0 + 10, "m1");
      assert.ok(job);
      assert.deepEqual(await claimMedia(store, T0 + 10, "m2"), []);
      // Not a past time: a media worker sleeping until then must not spin on a leased attachment.
      assert.equal(await store.nextMediaDueAt(), T0 + 10 + MEDIA_LEASE);
      assert.deepEqual(await claimMedia(store, T0 + 10 + MEDIA_LEASE - 1, "m2"), []);
      const [again] = await claimMedia(store, T0 + 10 + MEDIA_LEASE, "m2");
      assert.equal(again?.eventId, job.eventId);
      assert.equal(again?.attempts, 0, "an expired lease is not a failed attempt");
    });
  });

  const SETTLED: Array<{ name: string; outcome: MediaOutcome; media: Record<string, unknown> }> = [
    {
      name: "stored",
      outcome: storedAs(`${SENDER}/1`, "jpeg bytes"),
      media: {
        state: "stored",
        contentType: "image/jpeg",
        size: 10,
        sha256: createHash("sha256").update("jpeg bytes").digest("hex"),
        path: `${SENDER}/1`,
        goneReason: null,
      },
    },
    {
      name: "gone",
      outcome: { state: "gone", reason: "LINE answered 404: the content no longer exists" },
      media: {
        state: "gone",
        contentType: null,
        size: null,
        sha256: null,
        path: null,
        goneReason: "LINE answered 404: the content no longer exists",
      },
    },
  ];

  for (const c of SETTLED) {
    test(`finishMedia ${c.name}: the held delivery is claimable at once and findMessage shows the attachment`, async () => {
      await withStore(async (store) => {
        const serial = await ingestImage(store, "s1", T0);
        await ingestImage(store, "s2", T0, OTHER_SENDER); // another held message stays held
        assert.deepEqual(await claim(store, T0 + 1), []);
        const [job] = await claimMedia(store, T0 + 2, "m1", 1);
        assert.equal(job?.messageId, "m-s1");
        assert.ok(job);
        assert.equal(await store.finishMedia(job, c.outcome, T0 + 3), true);

        const [claimed, ...others] = await claim(store, T0 + 3);
        assert.deepEqual(messageIds(claimed), ["m-s1"], "relayed before mediaWaitMs is over");
        assert.equal(claimed?.senderKey, SENDER);
        assert.deepEqual(others, []);
        assert.deepEqual((await store.findMessage(SENDER, serial))?.media, { kind: "image", ...c.media });
        assert.equal(await store.nextMediaDueAt(), T0, "only the other channel's attachment waits");
        const later = await claimMedia(store, T0 + 10 * MEDIA_LEASE);
        assert.deepEqual(
          later.map((j) => j.messageId),
          ["m-s2"],
          "settled: never fetched again",
        );
      });
    });
  }

  const LATE: Array<{ first: MediaOutcome; late: MediaOutcome }> = [
    { first: storedAs(`${SENDER}/1`), late: storedAs(`${SENDER}/1`, "other bytes") },
    { first: storedAs(`${SENDER}/1`), late: { state: "pending", nextAttemptAt: T0 + 9, error: "HTTP 500" } },
    { first: storedAs(`${SENDER}/1`), late: { state: "gone", reason: "LINE answered 404" } },
    { first: { state: "gone", reason: "LINE answered 410" }, late: storedAs(`${SENDER}/1`) },
    { first: { state: "gone", reason: "LINE answered 410" }, late: { state: "gone", reason: "again" } },
  ];

  for (const c of LATE) {
    test(`a late finishMedia ${c.late.state} (lapsed lease) leaves an attachment already ${c.first.state} as it was`, async () => {
      await withStore(async (store) => {
        const serial = await ingestImage(store, "late", T0);
        const [slow] = await claimMedia(store, T0, "m-slow");
        const [fast] = await claimMedia(store, T0 + MEDIA_LEASE, "m-fast");
        assert.ok(slow && fast);
        assert.equal(await store.finishMedia(fast, c.first, T0 + MEDIA_LEASE + 1), true);
        const settled = (await store.findMessage(SENDER, serial))?.media;
        await store.finishMedia(slow, c.late, T0 + MEDIA_LEASE + 2);
        assert.deepEqual((await store.findMessage(SENDER, serial))?.media, settled);
        assert.deepEqual(await claimMedia(store, T0 + 10 * MEDIA_LEASE), []);
      });
    });
  }

  test("finishMedia stored wakes a conversation whose head is the held message, ahead of a later text", async () => {
    await withStore(async (store) => {
      await store.ingest(
        mediaRequest(
          [
            { raw: mediaEvent("h1", undefined, { timestamp: 1 }), media: "image" },
            { raw: lineEvent({ id: "h2", timestamp: 2 }) },
          ],
          T0,
        ),
      );
      assert.deepEqual(await claim(store, T0 + 1), [], "the text waits behind the held image");
      const [job] = await claimMedia(store, T0 + 1);
      assert.ok(job);
      await store.finishMedia(job, storedAs(`${SENDER}/${job.eventId}`), T0 + 2);
      assert.equal(await store.nextDueAt(0, ANY_SLOTS), T0 + 2);
      assert.deepEqual(messageIds((await claim(store, T0 + 2))[0]), ["m-h1", "m-h2"]);
    });
  });

  test("finishMedia pending: retried at nextAttemptAt with attempts grown, its delivery still held", async () => {
    await withStore(async (store) => {
      const serial = await ingestImage(store, "p1", T0);
      const [job] = await claimMedia(store, T0);
      assert.ok(job);
      const retryAt = T0 + 4_000;
      assert.equal(
        await store.finishMedia(
          job,
          { state: "pending", nextAttemptAt: retryAt, error: "not ready yet (202)" },
          T0 + 1,
        ),
        true,
      );
      assert.equal(await store.nextMediaDueAt(), retryAt);
      assert.deepEqual(await claimMedia(store, retryAt - 1), []);
      assert.equal((await store.findMessage(SENDER, serial))?.media?.state, "pending");
      assert.deepEqual(await claim(store, T0 + 2), [], "the message is still held");

      const [second] = await claimMedia(store, retryAt, "m2");
      assert.equal(second?.eventId, job.eventId);
      assert.equal(second?.attempts, 1);
      assert.ok(second);
      await store.finishMedia(
        second,
        { state: "pending", nextAttemptAt: retryAt + 8_000, error: "HTTP 500" },
        retryAt,
      );
      const [third] = await claimMedia(store, retryAt + 8_000, "m3");
      assert.equal(third?.attempts, 2);
      // Past mediaWaitMs the message goes without its attachment.
      assert.deepEqual(messageIds((await claim(store, T0 + MEDIA_WAIT))[0]), ["m-p1"]);
    });
  });

  test("an unsend scrubs the message, marks its stored attachment gone and returns the file to delete", async () => {
    await withStore(async (store) => {
      const raw = mediaEvent("u1", {
        type: "file",
        fileName: "비밀.pdf",
        fileSize: 5,
        quoteToken: "q",
      });
      const { stored } = await store.ingest(mediaRequest([{ raw, media: "file" }], T0));
      const serial = stored[0]?.serialNumber ?? "";
      const [job] = await claimMedia(store, T0);
      assert.ok(job);
      const path = `${SENDER}/${job.eventId}`;
      await store.finishMedia(job, storedAs(path), T0 + 1);

      const result = await store.ingest(mediaRequest([{ raw: unsendEvent("un1", "m-u1") }], T0 + 2));
      assert.deepEqual(result.unsentFiles, [path]);
      assert.equal(result.stored[0]?.facts.type, "unsend");

      const found = await store.findMessage(SENDER, serial);
      assert.equal(found?.unsent, true);
      assert.deepEqual(found?.event.message, { id: "m-u1", type: "file" });
      assert.ok(!JSON.stringify(found?.event).includes("비밀"), "the file name is gone too");
      assert.equal(found?.media?.state, "gone");
      assert.equal(found?.media?.goneReason, "unsent");
    });
  });

  test("an unsend scrubs a text message and returns no file", async () => {
    await withStore(async (store) => {
      const raw = mediaEvent("tx", { type: "text", text: "지워 주세요" });
      const [serial] = await serials(store, [raw], T0);
      const result = await store.ingest(mediaRequest([{ raw: unsendEvent("un-tx", "m-tx") }], T0 + 1));
      assert.deepEqual(result.unsentFiles, []);
      const found = await store.findMessage(SENDER, serial ?? "");
      assert.equal(found?.unsent, true);
      assert.deepEqual(found?.event.message, { id: "m-tx", type: "text" });
      assert.equal(found?.media, null);
      // The rest of the event stays, so the unsent message still reads as a message of that user.
      assert.equal(found?.event.type, "message");
      assert.deepEqual(found?.event.source, raw.source);
    });
  });

  test("an unsend releases a message held for its attachment, and its delivery carries no content", async () => {
    await withStore(async (store) => {
      await store.ingest(
        mediaRequest(
          [{ raw: mediaEvent("r1", { type: "image", contentProvider: { type: "line" } }), media: "image" }],
          T0,
        ),
      );
      const [job] = await claimMedia(store, T0);
      assert.ok(job);
      const result = await store.ingest(mediaRequest([{ raw: unsendEvent("un-r1", "m-r1") }], T0 + 5));
      assert.deepEqual(result.unsentFiles, [], "still being fetched: no file yet");

      const [claimed] = await claim(store, T0 + 5);
      const bodies = (claimed?.deliveries ?? []).map((d) => JSON.parse(d.body) as Record<string, unknown>);
      assert.deepEqual(
        bodies.map((b) => b.type),
        ["message", "unsend"],
        "released at once, before mediaWaitMs",
      );
      assert.deepEqual(bodies[0]?.message, { id: "m-r1", type: "image" });

      // The fetch that was under way finishes: the attachment is no longer wanted.
      assert.equal(await store.finishMedia(job, storedAs(`${SENDER}/${job.eventId}`), T0 + 6), false);
      const found = await store.findMessage(SENDER, claimed?.deliveries[0]?.serialNumber ?? "");
      assert.equal(found?.media?.state, "gone");
      assert.equal(found?.media?.goneReason, "unsent");
      assert.equal(found?.media?.path, null);
    });
  });

  test("an unsend only takes back the message of its own channel", async () => {
    await withStore(async (store) => {
      const mine = await ingestImage(store, "same", T0, SENDER);
      const theirs = await ingestImage(store, "same", T0, OTHER_SENDER);
      const result = await store.ingest(
        mediaRequest([{ raw: unsendEvent("un-same", "m-same") }], T0 + 1, { senderKey: OTHER_SENDER }),
      );
      assert.deepEqual(result.unsentFiles, []);
      assert.equal((await store.findMessage(SENDER, mine))?.unsent, false);
      assert.equal((await store.findMessage(SENDER, mine))?.media?.state, "pending");
      assert.equal((await store.findMessage(OTHER_SENDER, theirs))?.unsent, true);
    });
  });

  test("an unsend that arrives before its message: the message is stored already scrubbed, its media gone", async () => {
    await withStore(async (store) => {
      const early = await store.ingest(mediaRequest([{ raw: unsendEvent("un-e1", "m-e1") }], T0));
      assert.deepEqual(early.unsentFiles, []);
      const raw = mediaEvent("e1", { type: "video", duration: 1000, contentProvider: { type: "line" } });
      const { stored } = await store.ingest(mediaRequest([{ raw, media: "video" }], T0 + 1));
      const found = await store.findMessage(SENDER, stored[0]?.serialNumber ?? "");
      assert.equal(found?.unsent, true);
      assert.deepEqual(found?.event.message, { id: "m-e1", type: "video" });
      assert.equal(found?.media?.state, "gone");
      assert.equal(found?.media?.goneReason, "unsent");
      assert.deepEqual(await claimMedia(store, T0 + 1), [], "nothing to fetch");
      // Not held for an attachment that will never come.
      const [claimed] = await claim(store, T0 + 1);
      assert.deepEqual(
        claimed?.deliveries.map((d) => [d.serialNumber, (JSON.parse(d.body) as { type: string }).type]),
        [
          [early.stored[0]?.serialNumber, "unsend"],
          [stored[0]?.serialNumber, "message"],
        ],
      );
    });
  });

  for (const order of [
    ["message", "unsend"],
    ["unsend", "message"],
  ] as const) {
    test(`an unsend in the same webhook body as its message (${order.join(" then ")}) scrubs it`, async () => {
      await withStore(async (store) => {
        const entries = {
          message: { raw: mediaEvent("b1"), media: "image" as const },
          unsend: { raw: unsendEvent("un-b1", "m-b1") },
        };
        const result = await store.ingest(
          mediaRequest(
            order.map((kind) => entries[kind]),
            T0,
          ),
        );
        const serial = result.stored.find((s) => s.facts.type === "message")?.serialNumber ?? "";
        const found = await store.findMessage(SENDER, serial);
        assert.equal(found?.unsent, true);
        assert.deepEqual(found?.event.message, { id: "m-b1", type: "image" });
        assert.equal(found?.media?.state, "gone");
        assert.deepEqual(await claimMedia(store, T0), []);
      });
    });
  }

  test("findMessage: null for an unknown serial, or one of another channel; media null for a text", async () => {
    await withStore(async (store) => {
      const [text] = await serials(store, [lineEvent({ id: "f1" })], T0);
      const image = await ingestImage(store, "f2", T0);
      assert.equal(await store.findMessage(SENDER, "Uae87c693e28-9999-65A51E00"), null);
      assert.equal(await store.findMessage(SENDER, ""), null);
      assert.equal(await store.findMessage(OTHER_SENDER, image), null);
      const found = await store.findMessage(SENDER, text ?? "");
      assert.equal(found?.serialNumber, text);
      assert.equal(typeof found?.eventId, "number");
      assert.equal(found?.media, null);
      assert.equal(found?.unsent, false);
      assert.deepEqual(found?.event.message, { id: "m-f1", type: "text", text: "hello" });
    });
  });

  test("media leases of a stopped process: free on reopening (one process), or when they end (a cluster)", async () => {
    const path = await db.place();
    const first = await db.open(path);
    await ingestImage(first, "crash", T0);
    const [job] = await claimMedia(first, T0, "crashed-fetcher");
    assert.ok(job);
    await first.close();

    const second = await db.open(path);
    try {
      const freeAt = db.reopenEndsWork ? T0 + 1 : T0 + MEDIA_LEASE;
      const due = await second.nextMediaDueAt();
      assert.ok(due !== null && due <= freeAt, `next media due at ${due}, by ${freeAt}`);
      if (!db.reopenEndsWork) assert.deepEqual(await claimMedia(second, freeAt - 1, "new-fetcher"), []);
      const [again] = await claimMedia(second, freeAt, "new-fetcher");
      assert.equal(again?.eventId, job.eventId);
      assert.equal(again?.messageId, "m-crash");
      assert.equal(again?.attempts, 0);
    } finally {
      await second.close();
    }
  });

  test("reopening keeps pending, stored and gone attachments as they were", async () => {
    const path = await db.place();
    const first = await db.open(path);
    const pending = await ingestImage(first, "k1", T0);
    const stored = await ingestImage(first, "k2", T0 + 1);
    const [, job] = await claimMedia(first, T0 + 2);
    assert.equal(job?.messageId, "m-k2");
    await first.finishMedia(job, storedAs(`${SENDER}/k2`), T0 + 3);
    await first.close();

    const second = await db.open(path);
    try {
      assert.equal((await second.findMessage(SENDER, stored))?.media?.path, `${SENDER}/k2`);
      assert.equal((await second.findMessage(SENDER, pending))?.media?.state, "pending");
    } finally {
      await second.close();
    }
  });

  test("a fetch whose lease lapsed does not count once another fetch stored the attachment", async () => {
    // The late fetch is told false and removes its own file (each attempt writes its own path), never
    // the one the other fetch stored.
    await withStore(async (store) => {
      const serial = await ingestImage(store, "dup", T0);
      const [slow] = await claimMedia(store, T0, "m-slow");
      const [fast] = await claimMedia(store, T0 + MEDIA_LEASE, "m-fast");
      assert.ok(slow && fast);
      assert.equal(await store.finishMedia(fast, storedAs(`${SENDER}/fast`), T0 + MEDIA_LEASE + 1), true);
      assert.equal(await store.finishMedia(slow, storedAs(`${SENDER}/slow`), T0 + MEDIA_LEASE + 2), false);
      const media = (await store.findMessage(SENDER, serial))?.media;
      assert.equal(media?.path, `${SENDER}/fast`);
      assert.equal(media?.state, "stored");
    });
  });

  // --- Sends (SPEC §6 POST /line/message/send): idempotency, resumption, reply tokens, standby ---

  const STALE = 60_000;
  const TOKEN_AGE = 50_000;
  const SEND_OPTIONS = { staleAfterMs: STALE, replyTokenMaxAgeMs: TOKEN_AGE };
  const CHAT_A = `user:${USER_A}`;

  /** A send of "hi" to USER_A; `requestHash` stands for its content (another hash: other messages). */
  function newSend(serialNumber: string, requestHash = "hash-hi"): NewSend {
    return {
      senderKey: SENDER,
      serialNumber,
      partnerId: "jedai",
      conversation: CHAT_A,
      to: USER_A,
      messages: JSON.stringify([{ type: "text", text: "hi" }]),
      notificationDisabled: false,
      requestHash,
    };
  }

  const ANSWER: SendAnswer = {
    method: "reply",
    sentMessages: [{ id: "461230966842064897" }],
    requestId: "req-1",
  };

  /** Ingests one event of USER_A's chat, received at `receivedAt`. */
  function speak(store: Store, receivedAt: number, options: EventOptions = {}) {
    return store.ingest(request([lineEvent(options)], receivedAt));
  }

  test("beginSend: a sent serial_number answers its first result again, and never goes again", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "e1", replyToken: "tok-1" });
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 10, SEND_OPTIONS), {
        kind: "go",
        replyToken: "tok-1",
        interrupted: null,
      });
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-1", "s1"), true);
      await store.finishSend(SENDER, "s1", { answer: ANSWER }, T0 + 20);
      for (const at of [T0 + 21, T0 + STALE * 10]) {
        assert.deepEqual(await store.beginSend(newSend("s1"), at, SEND_OPTIONS), {
          kind: "done",
          answer: ANSWER,
        });
      }
      // A send whose delivery cannot be known is not tried again either: its repeat answers the same error.
      const unknown = { code: "-424", message: "not known whether LINE delivered it" };
      assert.equal((await store.beginSend(newSend("s2"), T0 + 30, SEND_OPTIONS)).kind, "go");
      await store.finishSend(SENDER, "s2", { unknown }, T0 + 40);
      assert.deepEqual(await store.beginSend(newSend("s2"), T0 + 50, SEND_OPTIONS), {
        kind: "failed",
        error: unknown,
      });
    });
  });

  test("beginSend: a repeat while the send is in progress is busy until staleAfterMs, then it may resume", async () => {
    await withStore(async (store) => {
      assert.equal((await store.beginSend(newSend("s1"), T0, SEND_OPTIONS)).kind, "go");
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 1, SEND_OPTIONS), { kind: "busy" });
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + STALE - 1, SEND_OPTIONS), { kind: "busy" });
      // Cut off before any attempt was noted: nothing to finish, it simply goes.
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + STALE, SEND_OPTIONS), {
        kind: "go",
        replyToken: null,
        interrupted: null,
      });
      // Resuming is a new start: busy again for its own staleAfterMs.
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + STALE + 1, SEND_OPTIONS), { kind: "busy" });
    });
  });

  test("beginSend: a serial_number already used for other messages is a conflict, in progress or done", async () => {
    await withStore(async (store) => {
      assert.equal((await store.beginSend(newSend("s1", "hash-hi"), T0, SEND_OPTIONS)).kind, "go");
      assert.deepEqual(await store.beginSend(newSend("s1", "hash-other"), T0 + 1, SEND_OPTIONS), {
        kind: "conflict",
      });
      await store.finishSend(SENDER, "s1", { answer: ANSWER }, T0 + 2);
      assert.deepEqual(await store.beginSend(newSend("s1", "hash-other"), T0 + 3, SEND_OPTIONS), {
        kind: "conflict",
      });
      assert.deepEqual(await store.beginSend(newSend("s1", "hash-hi"), T0 + 4, SEND_OPTIONS), {
        kind: "done",
        answer: ANSWER,
      });
      // The same serial_number in another channel is another send.
      const elsewhere = { ...newSend("s1", "hash-other"), senderKey: OTHER_SENDER };
      assert.equal((await store.beginSend(elsewhere, T0 + 5, SEND_OPTIONS)).kind, "go");
    });
  });

  test("beginSend resumes a push that was cut off (stale, or a stopped process) as a push, whatever the token", async () => {
    const path = await db.place();
    const first = await db.open(path);
    assert.equal((await first.beginSend(newSend("s1"), T0 + 1, SEND_OPTIONS)).kind, "go");
    await first.notePush(SENDER, "s1");
    // The user speaks meanwhile: a fresh token is offered, but the push LINE may have taken must be finished.
    await speak(first, T0 + STALE, { id: "e1", replyToken: "tok-1" });
    const resumed = { kind: "go", replyToken: "tok-1", interrupted: { method: "push" } };
    assert.deepEqual(await first.beginSend(newSend("s1"), T0 + 1 + STALE, SEND_OPTIONS), resumed);
    await first.close(); // a crash: the resumed send never finishes either

    const second = await db.open(path);
    try {
      // The process that was sending is gone: resumable at once (one process per store), or once it is
      // stale (a cluster, where the instance that was sending may still be at it).
      let t = T0 + 2 + STALE;
      if (!db.reopenEndsWork) {
        assert.deepEqual(await second.beginSend(newSend("s1"), t, SEND_OPTIONS), { kind: "busy" });
        t = T0 + 1 + 2 * STALE;
      }
      await speak(second, t - 1, { id: "e2", replyToken: "tok-2" });
      const again = { ...resumed, replyToken: "tok-2" };
      assert.deepEqual(await second.beginSend(newSend("s1"), t, SEND_OPTIONS), again);
      // LINE did not answer the push (5xx): it may have taken it, so the next repeat pushes again.
      const lineDown = { code: "500", message: "LINE answered 500" };
      await second.finishSend(SENDER, "s1", { error: lineDown, interrupted: true }, t + 1);
      assert.deepEqual(await second.beginSend(newSend("s1"), t + 2, SEND_OPTIONS), again);
      // LINE refused it (4xx): nothing went out, so the next repeat is a fresh start.
      const refused = { code: "400", message: "LINE answered 400" };
      await second.finishSend(SENDER, "s1", { error: refused, interrupted: false }, t + 3);
      assert.deepEqual(await second.beginSend(newSend("s1"), t + 4, SEND_OPTIONS), {
        kind: "go",
        replyToken: "tok-2",
        interrupted: null,
      });
    } finally {
      await second.close();
    }
  });

  test("beginSend resumes a reply that was cut off with the same token and its event's receive time", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "e1", replyToken: "tok-1" });
      assert.equal((await store.beginSend(newSend("s1"), T0 + 100, SEND_OPTIONS)).kind, "go");
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-1", "s1"), true);
      // The user speaks again meanwhile: a newer token, which the resumed send must not use.
      await speak(store, T0 + 200, { id: "e2", timestamp: T0, replyToken: "tok-2" });
      const resumed = await store.beginSend(newSend("s1"), T0 + 100 + STALE, SEND_OPTIONS);
      assert.equal(resumed.kind, "go");
      assert.deepEqual(resumed.kind === "go" && resumed.interrupted, {
        method: "reply",
        token: "tok-1",
        tokenAt: T0,
      });
      // Once LINE's answer is known the attempt is over: a later repeat answers that, resuming nothing.
      await store.finishSend(SENDER, "s1", { answer: ANSWER }, T0 + 101 + STALE);
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 102 + STALE, SEND_OPTIONS), {
        kind: "done",
        answer: ANSWER,
      });
    });
  });

  test("a reply token is used at most once: one claim wins, later sends are not offered it", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "e1", replyToken: "tok-1" });
      const a = await store.beginSend(newSend("a"), T0 + 1, SEND_OPTIONS);
      const b = await store.beginSend(newSend("b", "hash-b"), T0 + 1, SEND_OPTIONS);
      assert.deepEqual(
        [a, b],
        [
          { kind: "go", replyToken: "tok-1", interrupted: null },
          { kind: "go", replyToken: "tok-1", interrupted: null },
        ],
      );
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-1", "a"), true);
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-1", "b"), false, "already used by a");
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-1", "a"), false, "not twice by a either");
      assert.deepEqual(await store.beginSend(newSend("c", "hash-c"), T0 + 2, SEND_OPTIONS), {
        kind: "go",
        replyToken: null,
        interrupted: null,
      });
      // A token the conversation no longer has cannot be claimed; the user's next message brings a new one.
      await speak(store, T0 + 3, { id: "e2", timestamp: T0, replyToken: "tok-2" });
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-1", "c"), false);
      assert.deepEqual(await store.beginSend(newSend("d", "hash-d"), T0 + 4, SEND_OPTIONS), {
        kind: "go",
        replyToken: "tok-2",
        interrupted: null,
      });
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-2", "d"), true);
      // Another conversation's token is its own.
      assert.equal(await store.claimReplyToken(SENDER, `user:${USER_B}`, "tok-2", "e"), false);
    });
  });

  test("a reply token older than replyTokenMaxAgeMs (from its event's receipt) is not offered", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "e1", replyToken: "tok-1" });
      const young = await store.beginSend(newSend("s1"), T0 + TOKEN_AGE - 1, SEND_OPTIONS);
      assert.deepEqual(young, { kind: "go", replyToken: "tok-1", interrupted: null });
      const old = await store.beginSend(newSend("s2", "hash-2"), T0 + TOKEN_AGE, SEND_OPTIONS);
      assert.deepEqual(old, { kind: "go", replyToken: null, interrupted: null });
      // A conversation whose events carried no token has none to offer.
      const conversation = `user:${USER_B}`;
      await speak(store, T0, { id: "e2", user: USER_B, replyToken: null });
      const b = await store.beginSend({ ...newSend("s3"), conversation, to: USER_B }, T0 + 1, SEND_OPTIONS);
      assert.deepEqual(b, { kind: "go", replyToken: null, interrupted: null });
    });
  });

  test("beginSend refuses a conversation whose latest event is standby, and lets it go once it is active again", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "e1", timestamp: 1_000, mode: "standby" });
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 1, SEND_OPTIONS), { kind: "standby" });
      // Refused, not in progress: its repeat is judged again, not answered busy.
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 2, SEND_OPTIONS), { kind: "standby" });
      // Another conversation of the channel is not held.
      const other = { ...newSend("s2"), conversation: `user:${USER_B}`, to: USER_B };
      assert.equal((await store.beginSend(other, T0 + 3, SEND_OPTIONS)).kind, "go");

      await speak(store, T0 + 4, { id: "e2", timestamp: 2_000, mode: "active", replyToken: "tok-2" });
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 5, SEND_OPTIONS), {
        kind: "go",
        replyToken: "tok-2",
        interrupted: null,
      });
    });
  });

  test("a push cut off before the conversation went to standby is still finished (resumed, not refused)", async () => {
    await withStore(async (store) => {
      assert.equal((await store.beginSend(newSend("s1"), T0, SEND_OPTIONS)).kind, "go");
      await store.notePush(SENDER, "s1");
      await speak(store, T0 + 1, { id: "e1", mode: "standby" });
      const resumed = await store.beginSend(newSend("s1"), T0 + STALE, SEND_OPTIONS);
      assert.equal(resumed.kind, "go");
      assert.deepEqual(resumed.kind === "go" && resumed.interrupted, { method: "push" });
      // A new send to it is refused.
      assert.deepEqual(await store.beginSend(newSend("s2", "hash-2"), T0 + STALE, SEND_OPTIONS), {
        kind: "standby",
      });
    });
  });

  // --- Conversation state: LINE may deliver an older event after a newer one (redeliveries) ---

  test("a late, older active event does not overwrite the conversation's newer standby mode", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "new", timestamp: 2_000, mode: "standby" });
      await speak(store, T0 + 1, { id: "old", timestamp: 1_000, mode: "active", replyToken: "tok-old" });
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 2, SEND_OPTIONS), { kind: "standby" });
      // And the other way round: a late, older standby event does not put an active conversation in standby.
      const conversation = `user:${USER_B}`;
      const toB = { ...newSend("s2"), conversation, to: USER_B };
      await speak(store, T0, { id: "b-new", user: USER_B, timestamp: 2_000, mode: "active" });
      await speak(store, T0 + 1, { id: "b-old", user: USER_B, timestamp: 1_000, mode: "standby" });
      assert.equal((await store.beginSend(toB, T0 + 2, SEND_OPTIONS)).kind, "go");
    });
  });

  test("a late, older event does not replace the newer reply token, its age, nor its use", async () => {
    await withStore(async (store) => {
      await speak(store, T0, { id: "new", timestamp: 2_000, replyToken: "tok-new" });
      await speak(store, T0 + 10_000, { id: "old", timestamp: 1_000, replyToken: "tok-old" });
      assert.deepEqual(await store.beginSend(newSend("s1"), T0 + 10_001, SEND_OPTIONS), {
        kind: "go",
        replyToken: "tok-new",
        interrupted: null,
      });
      assert.equal(await store.claimReplyToken(SENDER, CHAT_A, "tok-old", "s1"), false, "not the old one");
      // Its age still counts from its own event, not from the late one's receipt.
      const aged = await store.beginSend(newSend("s2", "hash-2"), T0 + TOKEN_AGE, SEND_OPTIONS);
      assert.deepEqual(aged, { kind: "go", replyToken: null, interrupted: null });

      // Once the newer token is used, a late older event does not make it (or its own) usable again.
      const conversation = `user:${USER_B}`;
      const toB = (serial: string) => ({ ...newSend(serial, serial), conversation, to: USER_B });
      await speak(store, T0, { id: "b-new", user: USER_B, timestamp: 2_000, replyToken: "b-tok-new" });
      assert.equal(await store.claimReplyToken(SENDER, conversation, "b-tok-new", "b1"), true);
      await speak(store, T0 + 1, { id: "b-old", user: USER_B, timestamp: 1_000, replyToken: "b-tok-old" });
      assert.deepEqual(await store.beginSend(toB("b2"), T0 + 2, SEND_OPTIONS), {
        kind: "go",
        replyToken: null,
        interrupted: null,
      });
      assert.equal(await store.claimReplyToken(SENDER, conversation, "b-tok-new", "b2"), false);
    });
  });

  // --- Replay (SPEC §4: dead deliveries are replayed through the API) ---

  test("a replayed dead delivery gets a fresh retry window: its next failure retries, it is not dead at once", async () => {
    await withStore(async (store) => {
      const { stored } = await store.ingest(request([lineEvent({ id: "old" })], T0));
      const serial = stored[0]?.serialNumber ?? "";
      const [first] = await claim(store, T0);
      const task = first?.deliveries[0];
      assert.ok(first && task);
      assert.equal(task.retryFrom, T0);
      // Failing for a day: dead by the delivery worker's own policy.
      const deadAt = T0 + DEFAULT_RETRY_POLICY.maxAgeMs;
      assert.deepEqual(
        afterFailure({ attempts: 5, createdAt: task.retryFrom }, deadAt, DEFAULT_RETRY_POLICY),
        {
          state: "dead",
        },
      );
      await store.completeClaim(first, [outcome(task.eventId, deadAt, "dead")]);
      assert.deepEqual(await claim(store, deadAt + 1), []);

      const replayAt = T0 + 3 * DEFAULT_RETRY_POLICY.maxAgeMs;
      assert.deepEqual(await store.replayDeliveries({ senderKeys: [SENDER], state: "dead" }, replayAt, 10), [
        serial,
      ]);
      const [again] = await claim(store, replayAt);
      const replayed = again?.deliveries[0];
      assert.ok(replayed);
      assert.equal(replayed.serialNumber, serial, "it keeps its serial_number");
      assert.equal(replayed.receivedAt, T0, "and its receive time (the payload's time)");
      assert.equal(replayed.retryFrom, replayAt, "its retry window starts at the replay");
      // Failing again right after the replay: retried, with the whole window ahead of it.
      const next = afterFailure(
        { attempts: replayed.attempts + 1, createdAt: replayed.retryFrom },
        replayAt + 1,
        DEFAULT_RETRY_POLICY,
        () => 0.5,
      );
      assert.equal(next.state, "retrying");
      assert.deepEqual(await store.deliveryStats(), {
        pending: 1,
        retrying: 0,
        dead: 0,
        oldestWaitingAt: replayAt,
      });
    });
  });

  test("channelActivity: each channel's webhooks and relays since a time, its backlog and dead letters, in the order asked", async () => {
    await withStore(async (store) => {
      await serials(store, [lineEvent({ id: "e1" }), lineEvent({ id: "e2", user: USER_B })], T0);
      await serials(store, [lineEvent({ id: "e5" })], T0 + 10_000, OTHER_SENDER);
      const claimed = await claim(store, T0);
      for (const conversation of claimed.filter((c) => c.senderKey === SENDER)) {
        const [task] = conversation.deliveries;
        assert.ok(task);
        const result = messageIds(conversation)[0] === "m-e2" ? "dead" : "delivered";
        await store.completeClaim(conversation, [outcome(task.eventId, T0 + 40_000, result)]);
      }
      await serials(store, [lineEvent({ id: "e3" })], T0 + 50_000);
      await store.ingest(request([lineEvent({ id: "e4" })], T0 + 55_000, { forward: false }));

      const quiet = "3000000000";
      assert.deepEqual(await store.channelActivity([SENDER, OTHER_SENDER, quiet], T0 + 30_000), [
        {
          senderKey: SENDER,
          received: 2,
          delivered: 1,
          lastReceivedAt: T0 + 55_000,
          pending: 1,
          retrying: 0,
          dead: 1,
          oldestWaitingAt: T0 + 50_000,
        },
        {
          senderKey: OTHER_SENDER,
          received: 0,
          delivered: 0,
          lastReceivedAt: T0 + 10_000,
          pending: 1,
          retrying: 0,
          dead: 0,
          oldestWaitingAt: T0 + 10_000,
        },
        {
          senderKey: quiet,
          received: 0,
          delivered: 0,
          lastReceivedAt: null,
          pending: 0,
          retrying: 0,
          dead: 0,
          oldestWaitingAt: null,
        },
      ]);
      assert.deepEqual(
        (await store.channelActivity([SENDER], T0 + 45_000)).map((a) => [a.received, a.delivered]),
        [[2, 0]],
        "what came before the window is not counted",
      );
      assert.deepEqual(await store.channelActivity([], T0), []);
    });
  });

  test("findEvents: by serial, LINE message id, user and time, newest first, paged, with the delivery's state", async () => {
    await withStore(async (store) => {
      const [a, b] = await serials(
        store,
        [lineEvent({ id: "e1" }), lineEvent({ id: "e2", user: USER_B })],
        T0,
      );
      await serials(store, [lineEvent({ id: "e3" })], T0 + 10, OTHER_SENDER);
      const [first] = await claim(store, T0);
      const delivered = first?.deliveries[0];
      assert.ok(first && delivered);
      await store.completeClaim(first, [outcome(delivered.eventId, T0 + 1, "delivered")]);
      const find = (q: Partial<Parameters<Store["findEvents"]>[0]>) =>
        store.findEvents({ senderKeys: [SENDER], limit: 10, ...q });

      const all = await find({});
      assert.deepEqual(
        all.map((e) => e.serialNumber),
        [b, a],
        "newest first, this channel only",
      );
      const one = (await find({ serialNumber: a }))[0];
      assert.equal(one?.messageId, "m-e1");
      assert.equal(one?.userId, USER_A);
      assert.equal(one?.type, "message");
      assert.equal(one?.receivedAt, T0);
      assert.equal(one?.unsent, false);
      assert.equal((JSON.parse(one?.body ?? "{}") as { message: { text: string } }).message.text, "hello");
      assert.deepEqual(
        all.map((e) => e.delivery?.state),
        all.map((e) => (e.eventId === delivered.eventId ? "delivered" : "pending")),
      );
      assert.deepEqual(
        (await find({ messageId: "m-e2" })).map((e) => e.serialNumber),
        [b],
      );
      assert.deepEqual(
        (await find({ userId: USER_B })).map((e) => e.serialNumber),
        [b],
      );
      assert.deepEqual(await find({ from: T0 + 1 }), []);
      assert.deepEqual(await find({ to: T0 }), []);
      const page = await find({ limit: 1 });
      assert.deepEqual(
        (await find({ before: page[0]?.eventId })).map((e) => e.serialNumber),
        [a],
      );
      assert.equal((await store.findEvents({ senderKeys: [SENDER, OTHER_SENDER], limit: 10 })).length, 3);
    });
  });

  test("operator data: entries and credentials move the config version; sessions expire; the audit log filters newest first", async () => {
    await withStore(async (store) => {
      const v0 = await store.configVersion();
      const entry = { kind: "partner" as const, id: "acme", body: '{"a":1}', createdAt: T0, updatedAt: T0 };
      assert.equal(await store.createConfigEntry(entry), true);
      assert.equal(await store.createConfigEntry(entry), false, "the id is taken");
      assert.equal(await store.updateConfigEntry("partner", "acme", '{"a":2}', T0 + 1), true);
      assert.equal(await store.updateConfigEntry("channel", "acme", "{}", T0 + 1), false);
      assert.deepEqual(await store.listConfigEntries(), [{ ...entry, body: '{"a":2}', updatedAt: T0 + 1 }]);
      const v1 = await store.configVersion();
      assert.equal(v1, v0 + 2, "each applied change moves the version once");

      const key = {
        id: "0123456789abcdef",
        kind: "partner-key" as const,
        owner: "acme",
        name: "prod",
        digest: "ab".repeat(32),
        createdAt: T0,
        createdBy: "alice",
        revokedAt: null,
        lastUsedAt: null,
      };
      await store.addCredential(key);
      await store.touchCredentials([key.id], T0 + 5);
      assert.equal(await store.configVersion(), v1 + 1, "use does not move the version");
      assert.deepEqual(await store.listCredentials("partner-key"), [{ ...key, lastUsedAt: T0 + 5 }]);
      assert.deepEqual(await store.listCredentials("operator-token"), []);
      assert.equal(await store.revokeCredential("partner-key", key.id, T0 + 6), true);
      assert.equal(await store.revokeCredential("partner-key", key.id, T0 + 7), false, "revoked already");
      assert.equal((await store.listCredentials("partner-key"))[0]?.revokedAt, T0 + 6);
      assert.equal(await store.deleteConfigEntry("partner", "acme"), true);
      assert.equal(await store.deleteConfigEntry("partner", "acme"), false);

      const session = {
        digest: "cd".repeat(32),
        operator: "alice",
        csrfDigest: "ef".repeat(32),
        createdAt: T0,
        expiresAt: T0 + 100,
      };
      await store.createSession(session);
      assert.deepEqual(await store.findSession(session.digest, T0 + 99), session);
      assert.equal(await store.findSession(session.digest, T0 + 100), null, "expired");
      await store.createSession({ ...session, digest: "01".repeat(32), expiresAt: T0 + 1000 });
      await store.endSessions({ operator: "alice" }, T0);
      assert.equal(await store.findSession("01".repeat(32), T0), null);

      const base = { actorKind: "operator" as const, credentialId: null, requestId: "r", target: "acme" };
      await store.appendAudit({ ...base, at: T0, actor: "alice", action: "partner.create", outcome: "ok" });
      await store.appendAudit({
        ...base,
        at: T0 + 1,
        actor: "bob",
        action: "operator.sign-in",
        outcome: "-801",
      });
      await store.appendAudit({
        ...base,
        at: T0 + 2,
        actor: "alice",
        action: "partner.update",
        outcome: "ok",
      });
      const listed = await store.listAudit({ limit: 10 });
      assert.deepEqual(
        listed.map((e) => e.action),
        ["partner.update", "operator.sign-in", "partner.create"],
      );
      assert.ok((listed[0]?.id ?? 0) > (listed[1]?.id ?? 0));
      assert.deepEqual(
        (await store.listAudit({ actor: "alice", limit: 10 })).map((e) => e.at),
        [T0 + 2, T0],
      );
      assert.deepEqual(
        (await store.listAudit({ outcome: "-801", limit: 10 })).map((e) => e.actor),
        ["bob"],
      );
      assert.deepEqual(
        (await store.listAudit({ from: T0 + 1, to: T0 + 2, limit: 10 })).map((e) => e.actor),
        ["bob"],
      );
      assert.deepEqual(
        (await store.listAudit({ before: listed[1]?.id, limit: 10 })).map((e) => e.action),
        ["partner.create"],
      );
      assert.deepEqual(listed[2], {
        id: listed[2]?.id,
        ...base,
        at: T0,
        actor: "alice",
        action: "partner.create",
        outcome: "ok",
      });
    });
  });

  test("channel tokens: one lease per channel until it runs out or is given back; a save needs the lease and moves the version", async () => {
    await withStore(async (store) => {
      assert.deepEqual(await store.listChannelTokens(), []);
      const leased = await store.leaseChannelToken(SENDER, "a", T0, LEASE);
      assert.deepEqual(leased, {
        senderKey: SENDER,
        credentialId: null,
        token: null,
        keyId: null,
        issuedAt: null,
        expiresAt: null,
        retired: "[]",
        lastRenewalAt: null,
        lastFailureAt: null,
        lastFailure: null,
        failures: 0,
        version: 0,
      });
      assert.equal(await store.leaseChannelToken(SENDER, "b", T0 + LEASE - 1, LEASE), null, "a holds it");
      assert.notEqual(
        await store.leaseChannelToken(SENDER, "a", T0 + 1, LEASE),
        null,
        "its owner may take it again",
      );
      assert.notEqual(
        await store.leaseChannelToken(OTHER_SENDER, "b", T0, LEASE),
        null,
        "another channel's is free",
      );

      const issued = {
        ...(leased as ChannelTokenRow),
        credentialId: "v2.1:abc",
        token: "sealed-1",
        keyId: "kid-1",
        issuedAt: T0,
        expiresAt: T0 + 86_400_000,
        retired: '[{"type":"v2.1"}]',
        lastRenewalAt: T0,
      };
      assert.equal(await store.saveChannelToken(issued, "b"), false, "b does not hold the lease");
      assert.equal(await store.saveChannelToken(issued, "a"), true);
      assert.equal(await store.saveChannelToken(issued, "a"), false, "saving gave the lease back");
      const [row] = await store.listChannelTokens();
      assert.deepEqual(row, { ...issued, version: 1 });

      // Given back, anyone may take it; a lease that ran out too.
      const taken = await store.leaseChannelToken(SENDER, "b", T0 + 2, LEASE);
      assert.deepEqual(taken, { ...issued, version: 1 });
      assert.notEqual(await store.leaseChannelToken(SENDER, "c", T0 + 2 + LEASE, LEASE), null, "b's ran out");
      const failed = { ...issued, lastFailureAt: T0 + 3, lastFailure: "invalid_client", failures: 2 };
      assert.equal(await store.saveChannelToken(failed, "b"), false, "c took it over");
      assert.equal(await store.saveChannelToken(failed, "c"), true);
      assert.deepEqual(
        (await store.listChannelTokens()).map((r) => [r.senderKey, r.version, r.failures]),
        [
          [SENDER, 2, 2],
          [OTHER_SENDER, 0, 0],
        ],
      );
    });
  });

  // --- Retention (SPEC §12) ---

  test("purgeBatch: old events go with their deliveries, attachments and files unless still to be delivered; old attachments, sends, serial counters and audit entries go; small batches", async () => {
    await withStore(async (store) => {
      const DAY = 86_400_000;
      /** An image message received at `at`, its attachment stored and its delivery delivered. */
      const deliveredImage = async (id: string, at: number) => {
        const serial = await ingestImage(store, id, at);
        const job = (await claimMedia(store, at + 1)).find((j) => j.messageId === `m-${id}`);
        assert.ok(job);
        assert.equal(await store.finishMedia(job, storedAs(`${SENDER}/${id}`), at + 2), true);
        for (const c of await claim(store, at + 3)) {
          const own = messageIds(c).includes(`m-${id}`);
          await store.completeClaim(
            c,
            own ? c.deliveries.map((d) => outcome(d.eventId, at + 4, "delivered")) : [],
          );
        }
        return serial;
      };
      const oldImage = await deliveredImage("old-image", T0);
      const [oldText] = await serials(
        store,
        [lineEvent({ id: "old-delivered" }), lineEvent({ id: "old-dead", user: USER_B })],
        T0 + 10,
      );
      for (const c of await claim(store, T0 + 10)) {
        const [task] = c.deliveries;
        assert.ok(task);
        const result = messageIds(c)[0] === "m-old-dead" ? "dead" : "delivered";
        await store.completeClaim(c, [outcome(task.eventId, T0 + 11, result)]);
      }
      const [waiting] = await serials(store, [lineEvent({ id: "old-waiting", group: GROUP })], T0 + 20);
      // Another chat's image whose attachment never came: its delivery waits (relayed only once delivered).
      const { stored } = await store.ingest(
        mediaRequest(
          [{ raw: mediaEvent("held-image", undefined, { user: USER_B }), media: "image" }],
          T0 + 21,
        ),
      );
      const held = stored[0]?.serialNumber ?? "";
      const youngImage = await deliveredImage("young-image", T0 + 20 * DAY);
      assert.equal((await store.beginSend(newSend("s-old"), T0 + 30, SEND_OPTIONS)).kind, "go");
      await store.finishSend(SENDER, "s-old", { answer: ANSWER }, T0 + 31);
      assert.equal((await store.beginSend(newSend("s-young"), T0 + 20 * DAY, SEND_OPTIONS)).kind, "go");
      await store.finishSend(SENDER, "s-young", { answer: ANSWER }, T0 + 20 * DAY + 1);
      const audit = {
        actorKind: "operator" as const,
        actor: "alice",
        credentialId: null,
        target: null,
        requestId: null,
      };
      await store.appendAudit({ ...audit, at: T0, action: "partner.create", outcome: "ok" });
      await store.appendAudit({ ...audit, at: T0 + 20 * DAY, action: "partner.update", outcome: "ok" });

      assert.equal(await store.purgedThrough(), null, "nothing purged yet");
      const now = T0 + 40 * DAY;
      const purge = { eventsBefore: T0 + 10 * DAY, mediaBefore: T0 + 25 * DAY, auditBefore: T0 + DAY, now };
      const purgeAll = async () => {
        const total = { events: 0, attachments: 0, sends: 0, audit: 0, files: [] as string[], batches: 0 };
        for (let after = 0; ; ) {
          assert.ok(++total.batches < 20, "a purge ends");
          const batch = await store.purgeBatch({ ...purge, after, limit: 2 });
          total.events += batch.events;
          total.attachments += batch.attachments;
          total.sends += batch.sends;
          total.audit += batch.audit;
          total.files.push(...batch.files);
          after = batch.next;
          if (batch.done) return { ...total, files: total.files.sort() };
        }
      };
      assert.deepEqual(await purgeAll(), {
        events: 3, // the old image, the delivered and the dead text: not the one still to be delivered
        attachments: 1,
        sends: 1,
        audit: 1,
        files: [`${SENDER}/old-image`, `${SENDER}/young-image`],
        batches: 3,
      });
      assert.equal(await store.purgedThrough(), T0 + 10, "the newest event deleted: the texts");
      assert.equal(await store.findMessage(SENDER, oldImage), null);
      assert.equal(await store.findMessage(SENDER, oldText ?? ""), null);
      assert.notEqual(await store.findMessage(SENDER, waiting ?? ""), null, "still to be delivered: kept");
      assert.equal(
        (await store.findMessage(SENDER, held))?.media?.state,
        "pending",
        "kept with its attachment",
      );
      const young = await store.findMessage(SENDER, youngImage);
      assert.equal(young?.media?.state, "gone", "the young event stays, its attachment goes");
      assert.equal(young?.media?.goneReason, RETENTION_GONE_REASON);
      assert.equal((await store.beginSend(newSend("s-old"), now, SEND_OPTIONS)).kind, "go", "forgotten");
      assert.notEqual((await store.beginSend(newSend("s-young"), now, SEND_OPTIONS)).kind, "go", "kept");
      assert.deepEqual(
        (await store.listAudit({ limit: 10 })).map((e) => e.action),
        ["partner.update"],
      );
      assert.deepEqual(
        await serials(store, [lineEvent({ id: "late" })], T0 + 10),
        [oldImage],
        "the purged day's serial counter is forgotten with its events",
      );
      assert.deepEqual(await purgeAll(), {
        events: 0,
        attachments: 0,
        sends: 0,
        audit: 0,
        files: [],
        batches: 2, // past the two kept, to the first young one
      });
    });
  });

  test("eraseUser: a user's texts, contents, attachments, sent messages and directory entry in one channel go; their events stay in order; nothing else changes", async () => {
    await withStore(async (store) => {
      const [text] = await serials(store, [lineEvent({ id: "a-text" })], T0);
      const image = await ingestImage(store, "a-image", T0 + 1);
      const [job] = await claimMedia(store, T0 + 2);
      assert.ok(job);
      assert.equal(await store.finishMedia(job, storedAs(`${SENDER}/a-image`), T0 + 3), true);
      const [inGroup] = await serials(store, [lineEvent({ id: "a-group", group: GROUP })], T0 + 4);
      const [other] = await serials(store, [lineEvent({ id: "b-text", user: USER_B })], T0 + 5);
      const [elsewhere] = await serials(store, [lineEvent({ id: "a-elsewhere" })], T0 + 6, OTHER_SENDER);
      await store.setDirectoryEntry(SENDER, USER_A, { e164: "01012349876", agreeType: 1 }, T0);
      await store.setDirectoryEntry(SENDER, USER_B, { e164: "01055556666", agreeType: 1 }, T0);
      assert.equal((await store.beginSend(newSend("s-a"), T0 + 7, SEND_OPTIONS)).kind, "go");
      await store.finishSend(SENDER, "s-a", { answer: ANSWER }, T0 + 8);

      assert.deepEqual(await store.eraseUser(SENDER, USER_A, T0 + 100), {
        events: 3,
        attachments: 1,
        sends: 1,
        directory: true,
        files: [`${SENDER}/a-image`],
      });
      for (const serial of [text, image, inGroup]) {
        const erased = await store.findMessage(SENDER, serial ?? "");
        assert.equal(erased?.erased, true, serial);
        assert.deepEqual(
          Object.keys(erased?.event.message as object).sort(),
          ["id", "type"],
          "no text, no content",
        );
      }
      const picture = await store.findMessage(SENDER, image);
      assert.equal(picture?.media?.state, "gone");
      assert.equal(picture?.media?.goneReason, ERASED_GONE_REASON);
      for (const [senderKey, serial] of [
        [SENDER, other],
        [OTHER_SENDER, elsewhere],
      ] as const) {
        const kept = await store.findMessage(senderKey, serial ?? "");
        assert.ok(kept);
        assert.equal(kept.erased, false);
        assert.equal(
          (kept.event.message as { text?: string }).text,
          "hello",
          "another user's, or another channel's",
        );
      }
      const [later] = await serials(store, [lineEvent({ id: "a-later" })], T0 + 200);
      assert.equal(
        (await store.findMessage(SENDER, later ?? ""))?.erased,
        false,
        "new events are kept as ever",
      );
      const directory = new Map(
        (await claim(store, T0 + 300)).flatMap((c) => c.deliveries.map((d) => [d.serialNumber, d.e164])),
      );
      assert.equal(directory.get(later ?? ""), null, "the directory entry is gone");
      assert.equal(directory.get(other ?? ""), "01055556666");
      assert.deepEqual(await store.eraseUser(SENDER, USER_A, T0 + 400), {
        events: 1, // the later one: what was erased is not counted again
        attachments: 0,
        sends: 0,
        directory: false,
        files: [],
      });
    });
  });

  test("a conversation's timeline: its events (findEvents by conversation) and its sends, newest first", async () => {
    await withStore(async (store) => {
      await serials(store, [lineEvent({ id: "t1" }), lineEvent({ id: "t2", user: USER_B })], T0);
      const [mine] = await serials(store, [lineEvent({ id: "t3" })], T0 + 1);
      const events = await store.findEvents({ senderKeys: [SENDER], conversation: CHAT_A, limit: 10 });
      assert.deepEqual(
        events.map((e) => [e.serialNumber === mine, e.conversation]),
        [
          [true, CHAT_A],
          [false, CHAT_A],
        ],
      );
      for (const [serial, at] of [
        ["s-1", T0 + 10],
        ["s-2", T0 + 20],
      ] as const) {
        assert.equal((await store.beginSend(newSend(serial), at, SEND_OPTIONS)).kind, "go");
        await store.finishSend(SENDER, serial, { answer: ANSWER }, at + 1);
      }
      const sends = await store.listSends(SENDER, CHAT_A, 10);
      assert.deepEqual(
        sends.map((s) => [s.serialNumber, s.partnerId, s.state, s.method, s.lineRequestId, s.createdAt]),
        [
          ["s-2", "jedai", "sent", "reply", "req-1", T0 + 20],
          ["s-1", "jedai", "sent", "reply", "req-1", T0 + 10],
        ],
      );
      assert.deepEqual(JSON.parse(sends[0]?.messages ?? ""), [{ type: "text", text: "hi" }]);
      assert.equal((await store.listSends(SENDER, CHAT_A, 1)).length, 1);
      assert.deepEqual(await store.listSends(SENDER, `user:${USER_B}`, 10), []);
      assert.deepEqual(await store.listSends(OTHER_SENDER, CHAT_A, 10), []);
    });
  });
}
