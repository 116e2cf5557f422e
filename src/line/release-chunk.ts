// Frees the memory of a body chunk read from a socket as soon as it has been used, not at the next GC.
//
// Node reads each socket chunk into an ArrayBuffer of its own, and undici's body chunks are views of it
// that neither keeps once handed over. V8 frees such memory only in a full collection, which external
// memory alone starts every few tens of MiB, so a 200 MiB download would otherwise hold 20–40 MiB of read
// chunks at a time. Detaching an ArrayBuffer (ArrayBuffer.prototype.transfer, ES2024) releases its memory
// at once.

/**
 * Releases the memory behind `chunk` when `chunk` spans all of it: then no other bytes share that memory,
 * and the caller, being done with the chunk, guarantees that nothing reads it any more. A view of part of
 * a larger buffer (the first chunk after the headers, a slice of Node's small-buffer pool) is left alone.
 */
export function releaseChunk(chunk: Buffer): void {
  const memory = chunk.buffer;
  if (!(memory instanceof ArrayBuffer) || memory.detached) return;
  if (chunk.byteOffset !== 0 || chunk.byteLength !== memory.byteLength) return;
  try {
    memory.transfer(0);
  } catch {
    // A buffer its owner made non-detachable stays with the garbage collector.
  }
}
