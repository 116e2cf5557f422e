// The lock that keeps a SQLite file to one talkgate: refused while held, free once released, the database readable.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { DatabaseRefusal } from "../database-refusal.ts";
import { lockDatabaseFile } from "./lock-database-file.ts";
import { openSqliteStore } from "./sqlite-store.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-lock-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a second store on the file is refused until the first is closed; readers of the database are not", async () => {
  const path = join(dir, "in-process", "talkgate.db");
  const first = openSqliteStore(path);
  assert.throws(
    () => openSqliteStore(path),
    (error) =>
      error instanceof DatabaseRefusal &&
      error.message.startsWith(`the database ${path} is in use by another talkgate process (`),
  );
  const reader = new DatabaseSync(path, { readOnly: true });
  assert.ok(reader.prepare("SELECT count(*) AS n FROM events").get());
  reader.close();
  await first.close();
  const second = openSqliteStore(path);
  await second.close();
  assert.equal(statSync(`${path}-lock`).size, 0, "nothing is ever written to the lock");
});

test("a process that dies leaves no lock behind", async () => {
  const path = join(dir, "killed.db");
  const holder = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { lockDatabaseFile } from ${JSON.stringify(new URL("./lock-database-file.ts", import.meta.url).href)};
lockDatabaseFile(${JSON.stringify(path)}); console.log("held"); setInterval(() => {}, 1000);`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [held] = (await once(holder.stdout, "data")) as [Buffer];
  assert.equal(held.toString().trim(), "held");
  assert.throws(() => lockDatabaseFile(path), DatabaseRefusal);
  holder.kill("SIGKILL");
  await once(holder, "exit");
  lockDatabaseFile(path).release();
});
