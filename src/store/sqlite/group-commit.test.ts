// Unit tests for group commit over a real SQLite file: one transaction per tick, failing units roll back alone.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { GroupCommit } from "./group-commit.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-group-commit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;

/** A fresh database file whose `exec` counts the transactions begun on it, and a second connection to read with. */
function openCounted(): { db: DatabaseSync; reader: DatabaseSync; begins: () => number; close: () => void } {
  const path = join(dir, `db-${++files}.sqlite`);
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; CREATE TABLE items (n INTEGER PRIMARY KEY, label TEXT NOT NULL)");
  let begins = 0;
  const exec = db.exec.bind(db);
  db.exec = (sql: string) => {
    if (/^\s*BEGIN/i.test(sql)) begins++;
    exec(sql);
  };
  const reader = new DatabaseSync(path, { readOnly: true });
  return {
    db,
    reader,
    begins: () => begins,
    close: () => {
      reader.close();
      db.close();
    },
  };
}

const synced = () => Promise.resolve();

/** Each test ends within this: a broken sync or commit fails it rather than hanging the run. */
const TIMEOUT_MS = 5_000;

function count(db: DatabaseSync): number {
  return (db.prepare("SELECT count(*) AS n FROM items").get() as { n: number }).n;
}

test("100 runs queued in one tick share one transaction, resolve with their results, and are committed", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, begins, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const insert = db.prepare("INSERT INTO items (n, label) VALUES (?, ?) RETURNING n");
    const runs = Array.from({ length: 100 }, (_, i) =>
      writes.run(() => (insert.get(i, `item ${i}`) as { n: number }).n * 2),
    );
    assert.equal(begins(), 0, "nothing runs synchronously");
    const results = await Promise.all(runs);
    assert.deepEqual(
      results,
      Array.from({ length: 100 }, (_, i) => i * 2),
    );
    assert.equal(begins(), 1);
    assert.equal(count(reader), 100, "another connection sees every row: committed");
  } finally {
    close();
  }
});

test("a run resolves only after its transaction has committed", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const seen = await writes.run(() => {
      db.prepare("INSERT INTO items (n, label) VALUES (1, 'x')").run();
      return count(reader); // inside the transaction another connection sees nothing yet
    });
    assert.equal(seen, 0);
    assert.equal(count(reader), 1);
  } finally {
    close();
  }
});

test("a unit that throws rolls back alone; the others in the batch commit", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, begins, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const insert = db.prepare("INSERT INTO items (n, label) VALUES (?, ?)");
    const failure = new Error("unit 5 fails");
    const runs = Array.from({ length: 10 }, (_, i) =>
      writes.run(() => {
        insert.run(i, `item ${i}`);
        if (i === 5) {
          insert.run(100, "written before the throw");
          throw failure;
        }
        return i;
      }),
    );
    const settled = await Promise.allSettled(runs);
    assert.equal(begins(), 11, "one shared transaction, rolled back, then one transaction per unit");
    settled.forEach((result, i) => {
      if (i === 5) assert.deepEqual(result, { status: "rejected", reason: failure });
      else assert.deepEqual(result, { status: "fulfilled", value: i });
    });
    const rows = reader.prepare("SELECT n FROM items ORDER BY n").all() as Array<{ n: number }>;
    assert.deepEqual(
      rows.map((r) => r.n),
      [0, 1, 2, 3, 4, 6, 7, 8, 9],
    );
  } finally {
    close();
  }
});

test("a constraint violation in one unit does not affect its neighbours", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const insert = db.prepare("INSERT INTO items (n, label) VALUES (?, ?)");
    const results = await Promise.allSettled([
      writes.run(() => insert.run(1, "a")),
      writes.run(() => insert.run(1, "duplicate")),
      writes.run(() => insert.run(2, "b")),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    // Rows come back with a null prototype; spread them into plain objects to compare.
    assert.deepEqual(
      reader
        .prepare("SELECT n, label FROM items ORDER BY n")
        .all()
        .map((row) => ({ ...row })),
      [
        { n: 1, label: "a" },
        { n: 2, label: "b" },
      ],
    );
  } finally {
    close();
  }
});

test("runs queued after a flush go into the next transaction", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, begins, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const insert = db.prepare("INSERT INTO items (n, label) VALUES (?, 'x')");
    await Promise.all([writes.run(() => insert.run(1)), writes.run(() => insert.run(2))]);
    assert.equal(begins(), 1);
    await Promise.all([
      writes.run(() => insert.run(3)),
      writes.run(() => insert.run(4)),
      writes.run(() => insert.run(5)),
    ]);
    assert.equal(begins(), 2);
    // A run queued from inside a unit is not lost: it commits in a later transaction.
    let inner: Promise<unknown> | undefined;
    await writes.run(() => {
      inner = writes.run(() => insert.run(7));
      return insert.run(6);
    });
    await inner;
    assert.equal(begins(), 4);
    assert.equal(count(reader), 7);
  } finally {
    close();
  }
});

test("a unit that ends the shared transaction fails alone and the group commit recovers", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const insert = db.prepare("INSERT INTO items (n, label) VALUES (?, 'x')");
    const results = await Promise.allSettled([
      writes.run(() => insert.run(1)),
      // Ends the shared transaction under the group commit's feet.
      writes.run(() => db.exec("ROLLBACK")),
      writes.run(() => insert.run(3)),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    assert.equal(count(reader), 2, "units 1 and 3 each written once, nothing outside a transaction");
    assert.equal(db.isTransaction, false, "no transaction is left open");
    // The group commit still works afterwards.
    await writes.run(() => insert.run(9));
    assert.equal(count(reader), 3);
  } finally {
    close();
  }
});

test("a run resolves only once its commit is durable, and fails when making it durable fails", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, close } = openCounted();
  try {
    let syncs = 0;
    let finishSync = (_ok: boolean) => {};
    const durable = () =>
      new Promise<void>((resolve, reject) => {
        syncs++;
        finishSync = (ok) => (ok ? resolve() : reject(new Error("EIO")));
      });
    const writes = new GroupCommit(db, durable);
    let resolved = false;
    const first = writes.run(() => db.prepare("INSERT INTO items (n, label) VALUES (1, 'a')").run());
    void first.then(() => {
      resolved = true;
    });
    while (syncs === 0) await new Promise((r) => setImmediate(r));
    assert.equal(count(reader), 1, "committed before the sync");
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, false, "not resolved while the sync runs");
    finishSync(true);
    await first;

    const second = writes.run(() => db.prepare("INSERT INTO items (n, label) VALUES (2, 'b')").run());
    while (syncs === 1) await new Promise((r) => setImmediate(r));
    finishSync(false);
    await assert.rejects(second, /EIO/);
  } finally {
    close();
  }
});

test("a run queued with durable: false resolves once committed; synced() waits for the sync under way", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, close } = openCounted();
  try {
    let finishSync = () => {};
    let syncs = 0;
    const durable = () =>
      new Promise<void>((resolve) => {
        syncs++;
        finishSync = resolve;
      });
    const writes = new GroupCommit(db, durable);
    const insert = (n: number) => () => db.prepare("INSERT INTO items (n, label) VALUES (?, 'x')").run(n);
    await writes.run(insert(1), { durable: false });
    assert.equal(count(reader), 1, "committed");
    assert.equal(syncs, 0, "no sync asked for a batch of runs that need none");
    let synced = false;
    void writes.synced().then(() => {
      synced = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(synced, true, "nothing to wait for without a sync under way");

    const mixed = [writes.run(insert(2)), writes.run(insert(3), { durable: false })];
    let durableDone = false;
    void mixed[0]?.then(() => {
      durableDone = true;
    });
    await mixed[1];
    assert.equal(syncs, 1, "the durable run of the batch asked for a sync");
    synced = false;
    void writes.synced().then(() => {
      synced = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([durableDone, synced], [false, false], "both wait for the sync");
    finishSync();
    await mixed[0];
    await writes.synced();
  } finally {
    close();
  }
});

test("a run queued with durable: false waits for a durable one to share its transaction, or commits alone soon", {
  timeout: TIMEOUT_MS,
}, async () => {
  const { db, reader, begins, close } = openCounted();
  try {
    const writes = new GroupCommit(db, synced);
    const insert = (n: number) => () => db.prepare("INSERT INTO items (n, label) VALUES (?, 'x')").run(n);
    const lazy = writes.run(insert(1), { durable: false });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([begins(), count(reader)], [0, 0], "not committed at the end of its turn");
    await Promise.all([lazy, writes.run(insert(2))]);
    assert.deepEqual([begins(), count(reader)], [1, 2], "one transaction for both");

    const started = performance.now();
    await writes.run(insert(3), { durable: false });
    const waited = performance.now() - started;
    assert.equal(begins(), 2, "alone, in a transaction of its own");
    assert.ok(
      waited >= 5 && waited < 1_000,
      `committed after ${waited.toFixed(1)} ms, once nothing came to share it`,
    );
  } finally {
    close();
  }
});
