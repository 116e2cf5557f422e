// postgres.js 3.4.9 throws from a setImmediate (and takes the process down) when a statement is written on a
// connection the server has just closed (porsager/postgres#1154, #1208); patches/postgres+3.4.9.patch guards it.
// Here a transaction's backend is killed between two statements: the second must reject, the process live on.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { sharedPostgres } from "../../../test/support/postgres.ts";

test("a statement on a connection the server closed rejects; the process and the pool carry on", async () => {
  const url = await (await sharedPostgres()).createDatabase();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);
  process.on("uncaughtException", onCrash);
  try {
    for (let round = 0; round < 5; round++) {
      await assert.rejects(
        sql.begin(async (tx) => {
          const [{ pid } = { pid: 0 }] = await tx<Array<{ pid: number }>>`select pg_backend_pid() as pid`;
          await admin`select pg_terminate_backend(${pid})`;
          await sleep(20);
          await tx`select 1`;
        }),
        /CONNECTION_CLOSED|terminating connection|CONNECTION_DESTROYED/,
      );
      await sleep(20); // a write queued on the dead connection would fire now
      const [row] = await sql`select ${round}::int as n`;
      assert.equal(row?.n, round, "the pool connects again and answers");
    }
    assert.deepEqual(crashes, [], "nothing was thrown outside a query's promise");
  } finally {
    process.off("uncaughtException", onCrash);
    await sql.end({ timeout: 0 });
    await admin.end({ timeout: 0 });
  }
});
