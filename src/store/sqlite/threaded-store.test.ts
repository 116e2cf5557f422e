// Unit tests for the store thread: every call answered through it as by the store itself, errors with their
// codes, writes committed before close, a dead thread failing calls clearly.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { Worker } from "node:worker_threads";
import type { IngestRequest } from "../../app/ports.ts";
import { readEventFacts } from "../../core/line-event.ts";
import { openThreadedSqliteStore, ThreadedStore } from "./threaded-store.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-threaded-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SENDER = "1656168303";
const USER = "Uae87c693e2897ccc4c7654acd04f9259";
const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const HEX = (T0 / 1000).toString(16).toUpperCase();
let files = 0;
const newPath = () => join(dir, `store-${++files}`, "talkgate.db");
const noStop = (error: Error) => assert.fail(`the store thread stopped: ${error.message}`);

function request(ids: string[], receivedAt: number): IngestRequest {
  return {
    senderKey: SENDER,
    partnerId: "jedai",
    receivedAt,
    mediaWaitMs: 30_000,
    events: ids.map((id, i) => {
      const raw = {
        type: "message",
        mode: "active",
        timestamp: T0 + i,
        webhookEventId: id,
        source: { type: "user", userId: USER },
        replyToken: `r-${id}`,
        message: { id: `m-${id}`, type: "text", text: `text ${id}` },
      };
      return {
        facts: readEventFacts(raw, receivedAt),
        body: JSON.stringify(raw),
        forward: true,
        media: null,
      };
    }),
  };
}

test("ingest, claim, complete, find, list, replay and directory calls are answered through the thread", async () => {
  const path = newPath();
  const store = await openThreadedSqliteStore(path, noStop);
  try {
    // Calls made in one turn go together, and each gets its own answer.
    const [first, again, second] = await Promise.all([
      store.ingest(request(["a", "b"], T0)),
      store.ingest(request(["a"], T0)),
      store.ingest(request(["c"], T0 + 1)),
    ]);
    assert.deepEqual(
      first.stored.map((s) => s.serialNumber),
      [`Uae87c693e28-0001-${HEX}`, `Uae87c693e28-0002-${HEX}`],
    );
    assert.deepEqual([again.stored.length, again.duplicates], [0, 1]);
    assert.equal(second.stored.length, 1);
    assert.equal(await store.nextDueAt(), T0);

    const [claim] = await store.claimConversations({
      owner: "w",
      limit: 5,
      batchSize: 10,
      now: T0 + 2,
      leaseMs: 60_000,
    });
    assert.ok(claim);
    assert.deepEqual(
      claim.deliveries.map((d) => JSON.parse(d.body).message.id),
      ["m-a", "m-c", "m-b"],
    );
    await store.completeClaim(
      claim,
      claim.deliveries.map((d) => ({
        eventId: d.eventId,
        at: T0 + 3,
        status: 200,
        error: null,
        state: "delivered",
      })),
    );
    assert.equal(await store.nextDueAt(), null);
    assert.deepEqual(await store.deliveryStats(), {
      pending: 0,
      retrying: 0,
      dead: 0,
      oldestWaitingAt: null,
    });

    const found = await store.findMessage(SENDER, `Uae87c693e28-0001-${HEX}`);
    assert.deepEqual(found?.event.message, { id: "m-a", type: "text", text: "text a" });
    assert.equal(await store.findMessage(SENDER, "nope"), null);

    const listed = await store.listDeliveries({ senderKeys: [SENDER] }, { after: 0, limit: 10 });
    assert.deepEqual(
      listed.map((d) => d.state),
      ["delivered", "delivered", "delivered"],
    );
    const replayed = await store.replayDeliveries(
      { senderKeys: [SENDER], serialNumbers: [listed[0]?.serialNumber ?? ""] },
      T0 + 4,
      10,
    );
    assert.deepEqual(replayed, [listed[0]?.serialNumber]);
    assert.equal(await store.nextDueAt(), T0 + 4);

    await store.setDirectoryEntry(SENDER, USER, { e164: "01012349876" }, T0);
    assert.deepEqual(await store.getDirectoryEntry(SENDER, USER), { e164: "01012349876", agreeType: null });
    await store.ping();
  } finally {
    await store.close();
  }
  const db = new DatabaseSync(path, { readOnly: true });
  assert.equal((db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n, 3, "on disk");
  db.close();
});

test("a failing call rejects with the error's message and SQLite codes; the thread goes on", async () => {
  const store = await openThreadedSqliteStore(newPath(), noStop);
  try {
    const bad = { ...request(["x"], T0), senderKey: null as unknown as string };
    const error = await store.ingest(bad).then(
      () => assert.fail("stored an event without a sender_key"),
      (caught: unknown) => caught as Error & { errcode?: number; code?: string },
    );
    assert.match(error.message, /NOT NULL constraint failed/);
    assert.equal(error.code, "ERR_SQLITE_ERROR");
    assert.equal(error.errcode, 1299); // SQLITE_CONSTRAINT_NOTNULL
    assert.equal((await store.ingest(request(["y"], T0))).stored.length, 1);
  } finally {
    await store.close();
  }
});

test("close lets the writes posted before it commit; calls after it fail", async () => {
  const path = newPath();
  const store = await openThreadedSqliteStore(path, noStop);
  const pending = store.ingest(request(["late"], T0));
  await store.close();
  assert.equal((await pending).stored.length, 1);
  await assert.rejects(store.ping(), /store thread has stopped/);
  const db = new DatabaseSync(path, { readOnly: true });
  assert.equal((db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n, 1);
  db.close();
});

test("a database that cannot be opened fails the open with SQLite's reason", async () => {
  const path = newPath();
  rmSync(path, { force: true });
  const notADatabase = join(dir, "not-a-database");
  const { writeFileSync } = await import("node:fs");
  writeFileSync(
    notADatabase,
    "this is not an SQLite file, and it is long enough to have a header".repeat(20),
  );
  await assert.rejects(openThreadedSqliteStore(notADatabase, noStop), /file is not a database/);
});

test("a thread that dies fails the calls in flight and every later one, and says so once", async () => {
  const stops: Error[] = [];
  const worker = new Worker("setTimeout(() => process.exit(3), 50)", { eval: true });
  const store = new ThreadedStore(worker, (error) => stops.push(error));
  await assert.rejects(store.nextDueAt(), /store thread has stopped \(exit code 3\)/);
  await assert.rejects(store.ping(), /store thread has stopped/);
  assert.equal(stops.length, 1);
  await store.close();
});
