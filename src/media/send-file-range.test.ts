// Unit tests for sendFileRange on real files: exact ranges, a bounded set of reused buffers, and every way a transfer ends.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, test } from "node:test";
import { sendFileRange } from "./send-file-range.ts";

const dir = mkdtempSync(join(tmpdir(), "talkgate-send-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

// Bytes that differ at every offset modulo a large prime, so a chunk out of place or refilled too early shows.
const content = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + (i >>> 8)) % 251));

let files = 0;
async function withFile<T>(bytes: Buffer, use: (file: FileHandle) => Promise<T>): Promise<T> {
  const path = join(dir, `file-${++files}`);
  writeFileSync(path, bytes);
  const file = await open(path, "r");
  try {
    return await use(file);
  } finally {
    await file.close();
  }
}

/**
 * A destination that copies each chunk when it is handed over and calls back only after `delayMs`,
 * checking then that the chunk was not refilled meanwhile. Records every buffer it was handed and how
 * many chunks were waiting for their callback at most.
 */
class Recorder extends Writable {
  readonly copies: Buffer[] = [];
  readonly buffers = new Set<ArrayBufferLike>();
  readonly refilled: number[] = [];
  waiting = 0;
  mostWaiting = 0;
  readonly #delayMs: number;

  constructor(delayMs = 0) {
    super();
    this.#delayMs = delayMs;
  }

  override write(chunk: Buffer, ...rest: unknown[]): boolean {
    const callback = rest.find((arg) => typeof arg === "function") as
      | ((error?: Error | null) => void)
      | undefined;
    const copy = Buffer.from(chunk);
    const index = this.copies.push(copy) - 1;
    this.buffers.add(chunk.buffer);
    this.mostWaiting = Math.max(this.mostWaiting, ++this.waiting);
    return super.write(chunk, (error) => {
      if (!chunk.equals(copy)) this.refilled.push(index);
      this.waiting--;
      callback?.(error);
    });
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error) => void): void {
    if (this.#delayMs > 0) setTimeout(callback, this.#delayMs);
    else setImmediate(callback);
  }

  get bytes(): Buffer {
    return Buffer.concat(this.copies);
  }
}

const ended = (stream: Writable) =>
  new Promise<void>((resolve, reject) => {
    if (stream.writableFinished) return resolve();
    stream.once("finish", resolve).once("error", reject);
  });

test("sends the inclusive byte range asked for, across buffer boundaries, and ends the destination", async () => {
  const bytes = content(10_000);
  const RANGES = [
    { start: 0, end: 9_999 },
    { start: 0, end: 0 },
    { start: 2, end: 5 },
    { start: 9_999, end: 9_999 },
    { start: 999, end: 1_000 },
    { start: 999, end: 3_001 },
    { start: 1_000, end: 1_999 },
    { start: 4_321, end: 9_999 },
  ];
  await withFile(bytes, async (file) => {
    for (const range of RANGES) {
      for (const buffers of [{ count: 3, bytes: 1_000 }, undefined]) {
        const out = new Recorder();
        await sendFileRange(file, out, range, buffers);
        await ended(out);
        const label = `${JSON.stringify(range)} through ${JSON.stringify(buffers ?? "default buffers")}`;
        assert.deepEqual(out.bytes, bytes.subarray(range.start, range.end + 1), label);
      }
    }
  });
});

test("an empty range only ends the destination", async () => {
  await withFile(Buffer.alloc(0), async (file) => {
    const out = new Recorder();
    await sendFileRange(file, out, { start: 0, end: -1 });
    await ended(out);
    assert.equal(out.copies.length, 0);
  });
});

test("a large file goes through the same few buffers, each refilled only after its write called back", async () => {
  const bytes = content(2 * 1024 * 1024 + 17);
  await withFile(bytes, async (file) => {
    // Callbacks come late, as from a socket the client reads slowly: reads could run far ahead.
    const out = new Recorder(1);
    await sendFileRange(file, out, { start: 0, end: bytes.length - 1 }, { count: 4, bytes: 64 * 1024 });
    await ended(out);
    assert.equal(sha256(out.bytes), sha256(bytes));
    assert.equal(out.copies.length, Math.ceil(bytes.length / (64 * 1024)));
    assert.ok(out.buffers.size <= 4, `${out.buffers.size} distinct buffers for ${out.copies.length} chunks`);
    assert.ok(out.mostWaiting <= 4, `${out.mostWaiting} writes in flight at once`);
    assert.ok(out.mostWaiting > 1, "reading overlaps writing");
    assert.deepEqual(out.refilled, [], "no chunk was overwritten before its write called back");
  });
});

test("a small file gets buffers of its own size", async () => {
  await withFile(content(300), async (file) => {
    const out = new Recorder();
    await sendFileRange(file, out, { start: 0, end: 299 });
    assert.equal(out.buffers.size, 1);
    assert.equal([...out.buffers][0]?.byteLength, 300);
  });
});

test("a file shorter than the range rejects and destroys the destination", async () => {
  await withFile(content(5_000), async (file) => {
    const out = new Recorder();
    await assert.rejects(
      sendFileRange(file, out, { start: 0, end: 9_999 }, { count: 2, bytes: 1_000 }),
      /ended at byte 5000/,
    );
    assert.equal(out.destroyed, true);
    assert.equal(out.writableFinished, false);
  });
});

test("a destination destroyed mid-way rejects even when its pending writes never call back", async () => {
  await withFile(content(200_000), async (file) => {
    let writes = 0;
    // Like a response whose socket is gone: the third write is swallowed and the stream closes.
    const out = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        if (++writes < 3) return setImmediate(callback);
        this.destroy();
      },
    });
    await assert.rejects(sendFileRange(file, out, { start: 0, end: 199_999 }, { count: 2, bytes: 10_000 }), {
      code: "ERR_STREAM_PREMATURE_CLOSE",
    });
    assert.ok(writes <= 4, `stopped after ${writes} writes`);
  });
});

test("over HTTP: byte-exact to a reading client, and settles when a client hangs up mid-body", async () => {
  const bytes = content(3 * 1024 * 1024);
  const path = join(dir, "http-file");
  writeFileSync(path, bytes);
  const outcomes: Array<Promise<void>> = [];
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-length": bytes.length });
    outcomes.push(
      open(path, "r").then((file) =>
        sendFileRange(file, res, { start: 0, end: bytes.length - 1 }).finally(() => file.close()),
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const whole = await new Promise<Buffer>((resolve, reject) => {
      request({ port, host: "127.0.0.1" }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });
    assert.equal(sha256(whole), sha256(bytes));
    await outcomes[0];

    // A client that reads a little and then goes away.
    await new Promise<void>((resolve, reject) => {
      const req = request({ port, host: "127.0.0.1" }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      }).on("error", () => {});
      req.on("close", resolve);
      req.end();
      setTimeout(() => reject(new Error("no response")), 5_000).unref();
    });
    await assert.rejects(outcomes[1] as Promise<void>);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
