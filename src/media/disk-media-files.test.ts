// Unit tests for DiskMediaFiles on a temp dir: streamed atomic saves, length checks, ranges, sources, removal, the root guard.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { text } from "node:stream/consumers";
import { after, test } from "node:test";
import { DiskMediaFiles } from "./disk-media-files.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-disk-media-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let roots = 0;
/** A fresh media directory and its DiskMediaFiles. */
function fresh(): { root: string; files: DiskMediaFiles } {
  const root = join(dir, `root-${++roots}`);
  return { root, files: new DiskMediaFiles(root) };
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const incoming = (root: string) => readdirSync(join(root, ".incoming"));

/** A body of `chunks`, then (optionally) an error instead of its end. */
function body(chunks: Buffer[], failWith?: Error): Readable {
  let i = 0;
  return new Readable({
    read() {
      const chunk = chunks[i++];
      if (chunk) this.push(chunk);
      else if (failWith) this.destroy(failWith);
      else this.push(null);
    },
  });
}

const bytes = (n: number, seed = 1) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 256));

test("save streams a body to <name> in new sub-directories and returns its size and sha256", async () => {
  const { root, files } = fresh();
  const chunks = [bytes(1000, 1), bytes(70_000, 2), bytes(3, 3)];
  const all = Buffer.concat(chunks);
  const saved = await files.save("1656168303/42", body(chunks), all.length);
  assert.deepEqual(saved, { size: all.length, sha256: sha256(all) });
  assert.deepEqual(readFileSync(join(root, "1656168303", "42")), all);
  assert.deepEqual(incoming(root), [], "the temporary file was renamed away");
});

test("save with expectedLength null accepts any length, including an empty body", async () => {
  const { root, files } = fresh();
  for (const [name, chunks] of [
    ["a/empty", []],
    ["a/one", [Buffer.from("x")]],
    ["a/many", [bytes(10), bytes(20), bytes(30)]],
  ] as const) {
    const all = Buffer.concat([...chunks]);
    assert.deepEqual(await files.save(name, body([...chunks]), null), {
      size: all.length,
      sha256: sha256(all),
    });
    assert.deepEqual(readFileSync(join(root, name)), all);
  }
  assert.deepEqual(incoming(root), []);
});

test("save hands each chunk to release only once it is on disk, and never reads it again", async () => {
  const { root, files } = fresh();
  // Chunks with memory of their own, which the release below takes away.
  const chunks = [bytes(70_000, 4), bytes(1, 5), bytes(200_000, 6)].map((chunk) => {
    const own = Buffer.allocUnsafeSlow(chunk.length);
    chunk.copy(own);
    return own;
  });
  const all = Buffer.concat(chunks);
  const onDisk: number[] = [];
  const saved = await files.save("rel/1", body(chunks), all.length, {
    release(chunk) {
      const [temporary] = incoming(root);
      onDisk.push(temporary ? statSync(join(root, ".incoming", temporary)).size : -1);
      (chunk.buffer as ArrayBuffer).transfer(0);
    },
  });
  assert.deepEqual(saved, { size: all.length, sha256: sha256(all) });
  assert.deepEqual(readFileSync(join(root, "rel", "1")), all);
  assert.deepEqual(onDisk, [70_000, 70_001, 270_001], "each chunk was written before its release");
  assert.ok(chunks.every((chunk) => chunk.buffer.detached));
});

test("save replaces an existing file of the same name", async () => {
  const { root, files } = fresh();
  await files.save("c/1", body([Buffer.from("first version")]), null);
  await files.save("c/1", body([Buffer.from("second")]), 6);
  assert.equal(readFileSync(join(root, "c", "1"), "utf8"), "second");
});

const LENGTH_MISMATCHES = [
  { name: "short", actual: 99, expected: 100 },
  { name: "long", actual: 101, expected: 100 },
  { name: "empty", actual: 0, expected: 5 },
];

for (const c of LENGTH_MISMATCHES) {
  test(`save rejects a ${c.name} body (${c.actual} of ${c.expected} bytes) and leaves neither target nor temporary file`, async () => {
    const { root, files } = fresh();
    await assert.rejects(files.save("s/short", body([bytes(c.actual)]), c.expected), /bytes/);
    assert.equal(existsSync(join(root, "s", "short")), false);
    assert.deepEqual(incoming(root), []);
  });
}

test("save of a short body keeps an earlier complete file of that name intact", async () => {
  const { root, files } = fresh();
  await files.save("k/1", body([Buffer.from("complete")]), 8);
  await assert.rejects(files.save("k/1", body([Buffer.from("part")]), 8));
  assert.equal(readFileSync(join(root, "k", "1"), "utf8"), "complete");
});

test("save rejects when the body errors mid-way and leaves nothing behind", async () => {
  const { root, files } = fresh();
  const failing = body([bytes(5000), bytes(5000)], new Error("socket hang up"));
  await assert.rejects(files.save("e/1", failing, 20_000), /socket hang up/);
  assert.equal(existsSync(join(root, "e", "1")), false);
  assert.deepEqual(incoming(root), []);
  assert.equal(failing.destroyed, true);
  // The same failure without a known length.
  await assert.rejects(files.save("e/2", body([bytes(10)], new Error("reset")), null), /reset/);
  assert.equal(existsSync(join(root, "e", "2")), false);
  assert.deepEqual(incoming(root), []);
});

test("open reads the whole file, or an inclusive byte range of it", async () => {
  const { files } = fresh();
  await files.save("r/1", body([Buffer.from("0123456789")]), 10);
  const RANGES: Array<{ range?: { start: number; end: number }; expected: string }> = [
    { expected: "0123456789" },
    { range: { start: 0, end: 0 }, expected: "0" },
    { range: { start: 2, end: 5 }, expected: "2345" },
    { range: { start: 7, end: 9 }, expected: "789" },
    { range: { start: 9, end: 9 }, expected: "9" },
    { range: { start: 0, end: 9 }, expected: "0123456789" },
  ];
  for (const c of RANGES) {
    assert.equal(await text(files.open("r/1", c.range)), c.expected, JSON.stringify(c.range));
  }
});

test("open of a missing file errors on the stream", async () => {
  const { files } = fresh();
  await assert.rejects(text(files.open("nope/1")), { code: "ENOENT" });
});

/** Collects what is written to it. */
function collector(): { out: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { out, bytes: () => Buffer.concat(chunks) };
}

const openFds = () => readdirSync("/proc/self/fd").length;

test("openSource sends the whole file or an inclusive byte range, then closes it", async () => {
  const { files } = fresh();
  const all = bytes(200_000, 9);
  await files.save("o/1", body([all]), all.length);
  for (const range of [
    undefined,
    { start: 0, end: 0 },
    { start: 65_535, end: 131_072 },
    { start: 199_999, end: 199_999 },
  ]) {
    const fds = openFds();
    const source = await files.openSource("o/1");
    assert.equal(source.size, all.length);
    const { out, bytes: sent } = collector();
    await source.sendTo(out, range);
    assert.deepEqual(sent(), range ? all.subarray(range.start, range.end + 1) : all, JSON.stringify(range));
    assert.equal(openFds(), fds, "the file is closed once sent");
  }
});

test("openSource keeps sending a file removed after it was opened", async () => {
  const { files } = fresh();
  await files.save("o/2", body([Buffer.from("still here")]), 10);
  const source = await files.openSource("o/2");
  await files.remove("o/2");
  const { out, bytes: sent } = collector();
  await source.sendTo(out);
  assert.equal(sent().toString(), "still here");
});

test("openSource rejects a missing file or a directory before anything is sent, leaving nothing open", async () => {
  const { root, files } = fresh();
  mkdirSync(join(root, "dir", "sub"), { recursive: true });
  const fds = openFds();
  await assert.rejects(files.openSource("nope/1"), { code: "ENOENT" });
  await assert.rejects(files.openSource("dir/sub"), { code: "EISDIR" });
  assert.equal(openFds(), fds);
});

test("close releases a source that is not sent", async () => {
  const { files } = fresh();
  await files.save("o/3", body([Buffer.from("x")]), 1);
  const fds = openFds();
  const source = await files.openSource("o/3");
  assert.equal(openFds(), fds + 1);
  await source.close();
  assert.equal(openFds(), fds);
});

test("remove deletes the file and is idempotent", async () => {
  const { root, files } = fresh();
  await files.save("d/1", body([Buffer.from("bye")]), 3);
  await files.save("d/2", body([Buffer.from("stay")]), 4);
  await files.remove("d/1");
  assert.equal(existsSync(join(root, "d", "1")), false);
  assert.equal(existsSync(join(root, "d", "2")), true, "only the named file goes");
  await files.remove("d/1");
  await files.remove("never/existed");
});

const ESCAPING = ["../x", "../../etc/passwd", "a/../../x", "/etc/passwd", "", ".", "a/.."];

for (const name of ESCAPING) {
  test(`a name that is not inside the media directory is refused: ${JSON.stringify(name)}`, async () => {
    const { root, files } = fresh();
    assert.throws(() => files.open(name), /leaves the media directory/);
    await assert.rejects(files.openSource(name), /leaves the media directory/);
    await assert.rejects(files.remove(name), /leaves the media directory/);
    await assert.rejects(files.save(name, body([Buffer.from("x")]), 1), /leaves the media directory/);
    assert.equal(existsSync(join(root, "..", "x")), false);
    assert.deepEqual(incoming(root), []);
  });
}

test("a sibling directory sharing the root's name as a prefix is outside it", async () => {
  const { root, files } = fresh();
  const name = `../${root.split(/[/\\]/).pop()}-evil/x`;
  await assert.rejects(files.save(name, body([Buffer.from("x")]), 1), /leaves the media directory/);
  assert.equal(existsSync(`${root}-evil`), false);
});

test("constructing it removes partial files left in .incoming by an earlier run, and keeps stored files", async () => {
  const { root, files } = fresh();
  await files.save("p/1", body([Buffer.from("kept")]), 4);
  writeFileSync(join(root, ".incoming", "leftover-1"), "partial");
  mkdirSync(join(root, ".incoming", "nested"), { recursive: true });
  writeFileSync(join(root, ".incoming", "nested", "leftover-2"), "partial");
  assert.equal(incoming(root).length, 2);

  const reopened = new DiskMediaFiles(root);
  assert.deepEqual(incoming(root), []);
  assert.equal(await text(reopened.open("p/1")), "kept");
  // And it still saves.
  await reopened.save("p/2", body([Buffer.from("new")]), 3);
  assert.equal(readFileSync(join(root, "p", "2"), "utf8"), "new");
});

test("constructing it creates a missing media directory", () => {
  const root = join(dir, "not", "there", "yet");
  new DiskMediaFiles(root);
  assert.deepEqual(readdirSync(root), [".incoming"]);
});

test("concurrent saves of different names do not mix their bytes", async () => {
  const { root, files } = fresh();
  const payloads = Array.from({ length: 8 }, (_, i) => [bytes(20_000, i), bytes(15_000, i + 100)]);
  const results = await Promise.all(payloads.map((chunks, i) => files.save(`m/${i}`, body(chunks), 35_000)));
  payloads.forEach((chunks, i) => {
    const all = Buffer.concat(chunks);
    assert.deepEqual(results[i], { size: all.length, sha256: sha256(all) });
    assert.deepEqual(readFileSync(join(root, "m", String(i))), all);
  });
  assert.deepEqual(incoming(root), []);
});

test("rename and prune: renames inside the root, prunes by modification time", async () => {
  const { root, files } = fresh();
  await files.save("uploads/old", body([Buffer.from("old")]), 3);
  await files.save("uploads/new", body([Buffer.from("newer")]), 5);

  await files.rename("uploads/new", "uploads/new.png");
  assert.equal(readFileSync(join(root, "uploads", "new.png"), "utf8"), "newer");
  assert.equal(existsSync(join(root, "uploads", "new")), false);
  await assert.rejects(files.rename("uploads/new.png", "../escaped"), /leaves the media directory/);

  const old = new Date(Date.now() - 60_000);
  utimesSync(join(root, "uploads", "old"), old, old);
  assert.equal(await files.prune("uploads", Date.now() - 30_000), 1);
  assert.deepEqual(readdirSync(join(root, "uploads")), ["new.png"]);
  assert.equal(await files.prune("nothing-here", Date.now()), 0, "a missing directory prunes nothing");
});
