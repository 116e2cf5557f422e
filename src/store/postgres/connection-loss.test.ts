// A connection the server closes under a transaction, or while idle in the pool: the transaction's statements
// reject, nothing is thrown outside a promise, and the pool connects again and answers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { sharedPostgres } from "../../../test/support/postgres.ts";
import { createPool } from "./sql.ts";

test("a transaction whose connection is closed rejects; the pool carries on", async () => {
  const url = await (await sharedPostgres()).createDatabase();
  const errors: Error[] = [];
  const options = {
    max: 1,
    connectTimeoutMs: 5_000,
    statementTimeoutMs: 5_000,
    onError: (e: Error) => errors.push(e),
  };
  const pool = createPool(url, options);
  const admin = createPool(url, options);
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);
  process.on("uncaughtException", onCrash);
  try {
    await pool`CREATE TABLE marks (n integer)`;
    for (let round = 0; round < 5; round++) {
      await assert.rejects(
        pool.begin(async (tx) => {
          await tx`INSERT INTO marks VALUES (${round})`;
          const [{ pid } = { pid: 0 }] = await tx<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
          await admin`SELECT pg_terminate_backend(${pid})`;
          await sleep(20);
          await tx`INSERT INTO marks VALUES (${round + 100})`;
        }),
      );
      // An idle connection closed by the server is dropped from the pool too.
      const [{ pid } = { pid: 0 }] = await pool<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
      await admin`SELECT pg_terminate_backend(${pid})`;
      await sleep(20);
      const [row] = await pool<Array<{ n: number }>>`SELECT ${round}::integer AS n`;
      assert.equal(row?.n, round, "the pool connects again and answers");
    }
    const [kept] = await pool<Array<{ n: number }>>`SELECT count(*)::integer AS n FROM marks`;
    assert.equal(kept?.n, 0, "no statement of a lost transaction was committed");
    assert.deepEqual(crashes, [], "nothing was thrown outside a statement's promise");
    assert.ok(errors.length > 0, "the lost idle connections were reported");
  } finally {
    process.off("uncaughtException", onCrash);
    await pool.end();
    await admin.end();
  }
});

test("a connection lost while it passes from the pool to a waiter throws nothing outside a promise", async () => {
  const url = await (await sharedPostgres()).createDatabase();
  const pool = createPool(url, {
    max: 1,
    connectTimeoutMs: 5_000,
    statementTimeoutMs: 5_000,
    onError: () => {},
  });
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);
  process.on("uncaughtException", onCrash);
  // The server's FATAL can be read in the same packet as the message that freed the connection: before the
  // waiter's code runs. pg hands the connection over in _acquireClient; the error comes right after it.
  const proto = pg.Pool.prototype as unknown as {
    _acquireClient: (client: pg.Client, ...rest: unknown[]) => void;
  };
  const acquire = proto._acquireClient;
  let handovers = 0;
  proto._acquireClient = function (this: unknown, client: pg.Client, ...rest: unknown[]) {
    acquire.call(this, client, ...rest);
    // As the parser would go on, in the same turn, to the packet's next message.
    if (++handovers === 2) client.emit("error", new Error("terminating connection"));
  };
  try {
    await Promise.all([
      pool.begin(async (tx) => tx`SELECT 1`),
      pool.begin(async (tx) => tx`SELECT 2`).catch(() => undefined),
    ]);
    const [row] = await pool<Array<{ n: number }>>`SELECT 3 AS n`;
    assert.equal(row?.n, 3, "the pool still answers");
    assert.ok(handovers >= 2, "the connection was handed to the waiter");
    assert.deepEqual(crashes, [], "nothing was thrown outside a statement's promise");
  } finally {
    proto._acquireClient = acquire;
    process.off("uncaughtException", onCrash);
    await pool.end();
  }
});
