// Sends a byte range of an open file to a writable through a few buffers reused for the whole transfer.
import { read } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { finished, type Writable } from "node:stream";
import type { ByteRange } from "../app/ports.ts";

/** How many buffers of how many bytes one transfer uses at most, however large the file. */
export interface SendBuffers {
  count: number;
  bytes: number;
}

const DEFAULT_BUFFERS: SendBuffers = { count: 4, bytes: 64 * 1024 };

/**
 * Writes `range` of `file` to `destination`, then ends it. The bytes pass through at most
 * `buffers.count` buffers allocated once per transfer; a buffer is read into again only after
 * `destination` has called back for its previous write, so nothing else is allocated per chunk and
 * no more than `count × bytes` is ever in flight. Rejects, destroying `destination`, when the file
 * ends before the range does or a read fails; rejects when `destination` fails or closes first.
 * An empty range (`end` < `start`) only ends `destination`. The file is left open.
 */
export function sendFileRange(
  file: FileHandle,
  destination: Writable,
  range: ByteRange,
  buffers: SendBuffers = DEFAULT_BUFFERS,
): Promise<void> {
  const total = range.end + 1 - range.start;
  if (total <= 0) {
    destination.end();
    return Promise.resolve();
  }
  // A small file or range gets buffers of its own size, and no more of them than it fills.
  const size = Math.min(buffers.bytes, total);
  const free = Array.from({ length: Math.min(buffers.count, Math.ceil(total / size)) }, () =>
    Buffer.allocUnsafeSlow(size),
  );
  // Callbacks rather than promises: per chunk this allocates next to nothing besides Node's own
  // request objects, which keeps V8's young generation from growing during a large transfer.
  return new Promise((resolve, reject) => {
    let position = range.start;
    let reading = false;
    let writing = 0;
    let over = false;
    let failure: Error | undefined;
    // Settles only once no read is in flight, so that the caller may close the file right away.
    const settle = () => {
      if (reading) return;
      if (failure) reject(failure);
      else resolve();
    };
    const finish = (error?: Error) => {
      if (over) return;
      over = true;
      failure = error;
      unwatch();
      // Without an error: the caller gets it, and a destination nobody listens to must not throw it.
      if (error) destination.destroy();
      else destination.end();
      settle();
    };
    // A write to a response whose socket is already gone may never call back, so the destination itself
    // is watched too.
    const unwatch = finished(destination, (error) =>
      finish(error ?? new Error("the destination finished before the file was sent")),
    );
    // Reads the next part into a free buffer and writes it; runs again whenever a read or a write ends.
    const pump = (): void => {
      if (over || reading) return;
      if (position > range.end) {
        if (writing === 0) finish();
        return;
      }
      const buffer = free.pop();
      if (buffer === undefined) return;
      reading = true;
      read(file.fd, buffer, 0, Math.min(size, range.end + 1 - position), position, (error, bytesRead) => {
        reading = false;
        if (over) return settle();
        if (error) return finish(error);
        if (bytesRead === 0)
          return finish(new Error(`the file ended at byte ${position}, before byte ${range.end}`));
        position += bytesRead;
        writing++;
        destination.write(bytesRead === size ? buffer : buffer.subarray(0, bytesRead), (error) => {
          writing--;
          if (error) return finish(error);
          free.push(buffer);
          pump();
        });
        pump();
      });
    };
    pump();
  });
}
