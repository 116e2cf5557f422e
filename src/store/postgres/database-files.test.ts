// DatabaseFiles on a real PostgreSQL: chunk rows of a fixed size whatever the body's chunks, ranges across rows,
// each chunk released only once copied, a file visible only when whole.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { after, before, test } from "node:test";
import { sharedPostgres } from "../../../test/support/postgres.ts";
import { DatabaseFiles } from "./database-files.ts";
import { openPostgresStore, type PostgresStore } from "./postgres-store.ts";

let store: PostgresStore;
let files: DatabaseFiles;
before(async () => {
  const url = await (await sharedPostgres()).createDatabase();
  store = await openPostgresStore(url, { poolSize: 2, connectTimeoutMs: 5_000, statementTimeoutMs: 5_000 });
  files = new DatabaseFiles(store.pool, { staleIncomingMs: 60_000 });
});
after(() => store?.close());

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const bytes = (n: number, seed = 1) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 256));
/** A body that yields exactly `chunks`. */
function body(chunks: Buffer[]): Readable {
  let i = 0;
  return new Readable({
    read() {
      this.push(chunks[i++] ?? null);
    },
  });
}

test("odd-sized chunks are saved and read back whole and by ranges that cross chunk rows", async () => {
  // 300,000 + 1 + 400,000 bytes: rows of 262,144 bytes, the body's chunks cut across them.
  const chunks = [bytes(300_000, 1), bytes(1, 2), bytes(400_000, 3)];
  const all = Buffer.concat(chunks);
  const released: number[] = [];
  const saved = await files.save("c/1", body(chunks), all.length, {
    release(chunk) {
      released.push(chunk.length);
      (chunk.buffer as ArrayBuffer).transfer(0);
    },
  });
  assert.deepEqual(saved, { size: all.length, sha256: sha256(all) });
  assert.equal(
    released.reduce((sum, n) => sum + n, 0),
    all.length,
    "every chunk was released (and its memory taken away) once copied",
  );

  assert.equal(sha256(await buffer(files.open("c/1"))), sha256(all));
  for (const [start, end] of [
    [0, 0],
    [262_143, 262_144],
    [100, 600_000],
    [524_287, all.length - 1],
    [all.length - 1, all.length - 1],
  ] as const)
    assert.deepEqual(
      await buffer(files.open("c/1", { start, end })),
      all.subarray(start, end + 1),
      `${start}-${end}`,
    );
  const source = await files.openSource("c/1");
  assert.equal(source.size, all.length);
});

test("a body shorter than announced leaves nothing under the name; a new save replaces the old file", async () => {
  await assert.rejects(files.save("c/2", body([bytes(10)]), 11), /10 of 11 bytes/);
  await assert.rejects(buffer(files.open("c/2")), { code: "ENOENT" });
  await files.save("c/2", body([Buffer.from("first version")]), null);
  await files.save("c/2", body([Buffer.from("second")]), 6);
  assert.equal((await buffer(files.open("c/2"))).toString(), "second");
  const [{ count } = { count: -1 }] = await store.pool<Array<{ count: number }>>`
    SELECT count(*)::int AS count FROM files WHERE starts_with(name, '.incoming/')`;
  assert.equal(count, 0, "no partial file is left behind");
});
