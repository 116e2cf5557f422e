// Unit tests for FileSync over a real file.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { FileSync } from "./wal-sync.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-wal-sync-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("concurrent syncs of a file all resolve", async () => {
  const path = join(dir, "a");
  writeFileSync(path, "x");
  const file = new FileSync(path);
  await Promise.all(Array.from({ length: 50 }, () => file.sync()));
  await file.sync();
});

test("a sync of a missing file fails; once the file exists the next one succeeds", async () => {
  const path = join(dir, "b");
  const file = new FileSync(path);
  await assert.rejects(file.sync(), { code: "ENOENT" });
  writeFileSync(path, "x");
  await file.sync();
});
