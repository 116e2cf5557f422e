// Unit tests for releaseChunk: a chunk that is all of its memory is freed; views of shared memory are not touched.
import assert from "node:assert/strict";
import { test } from "node:test";
import { releaseChunk } from "./release-chunk.ts";

test("a chunk spanning its whole ArrayBuffer is released: the memory is detached", () => {
  const chunk = Buffer.allocUnsafeSlow(64 * 1024).fill(7);
  const memory = chunk.buffer;
  releaseChunk(chunk);
  assert.equal(memory.detached, true);
  assert.equal(chunk.length, 0, "the view no longer reaches any memory");
  releaseChunk(chunk); // twice is harmless
});

test("views of part of a buffer are left alone, and so are the bytes around them", () => {
  const whole = Buffer.alloc(100_000, 1);
  const CASES = [
    { name: "the body after the headers", chunk: whole.subarray(300) },
    { name: "a prefix", chunk: whole.subarray(0, 99_999) },
    { name: "a middle part", chunk: whole.subarray(10, 20) },
  ];
  for (const c of CASES) {
    releaseChunk(c.chunk);
    assert.equal(whole.buffer.detached, false, c.name);
    assert.equal(whole.length, 100_000, c.name);
  }
});

test("small buffers from Node's shared pool are never released", () => {
  const small = Buffer.from("hello");
  const neighbour = Buffer.from("world");
  releaseChunk(small);
  assert.equal(small.toString(), "hello");
  assert.equal(neighbour.toString(), "world");
  assert.equal(small.buffer.detached, false);
});

test("memory that cannot be detached stays as it is", () => {
  const shared = Buffer.from(new SharedArrayBuffer(16));
  releaseChunk(shared);
  assert.equal(shared.length, 16);
  // A WebAssembly memory (one 64 KiB page) refuses to be detached; @types/node does not declare it.
  const { WebAssembly } = globalThis as unknown as {
    WebAssembly: { Memory: new (size: { initial: number }) => { buffer: ArrayBuffer } };
  };
  const view = Buffer.from(new WebAssembly.Memory({ initial: 1 }).buffer);
  assert.doesNotThrow(() => releaseChunk(view));
  assert.equal(view.length, 64 * 1024);
});
