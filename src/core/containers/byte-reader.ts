// Random access to a file being checked, through a read callback and one cached block, never the whole file.

/** Reads `length` bytes at `offset` of a file (fewer only where the file ends). */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/** A file is not the container it starts like; the message says why in plain words. */
export class Malformed extends Error {
  override readonly name = "Malformed";
}

/** How much one read fetches: small reads close together are answered from it. */
export const BLOCK = 256 * 1024;

/** A file of known size read through {@link ReadAt}, one block at a time. */
export class ByteReader {
  readonly size: number;
  readonly #read: ReadAt;
  #block: Uint8Array = new Uint8Array(0);
  #blockStart = 0;

  constructor(size: number, read: ReadAt) {
    this.size = size;
    this.#read = read;
  }

  /** Exactly `length` bytes at `offset`; fails with {@link Malformed} where the file is shorter. */
  async bytes(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Malformed(`truncated: the file ends before byte ${offset + length}`);
    }
    const from = offset - this.#blockStart;
    if (from >= 0 && from + length <= this.#block.length) return this.#block.subarray(from, from + length);
    const block = await this.#read(offset, Math.min(Math.max(length, BLOCK), this.size - offset));
    if (block.length < length) throw new Malformed(`truncated: the file ends before byte ${offset + length}`);
    this.#block = block;
    this.#blockStart = offset;
    return block.subarray(0, length);
  }

  /** The unsigned big-endian integer of `length` (1, 2 or 4) bytes at `offset`. */
  async uint(offset: number, length: 1 | 2 | 4): Promise<number> {
    return readUint(await this.bytes(offset, length), 0, length);
  }

  /** `length` bytes at `offset` as Latin-1 text (box, chunk and tag names). */
  async text(offset: number, length: number): Promise<string> {
    return latin1(await this.bytes(offset, length));
  }
}

/** The unsigned big-endian integer of `length` bytes of `bytes` at `at`. */
export function readUint(bytes: Uint8Array, at: number, length: 1 | 2 | 4): number {
  let value = 0;
  for (let i = 0; i < length; i++) value = value * 256 + (bytes[at + i] ?? 0);
  return value;
}

/** Bytes as Latin-1 text, one character per byte. */
export function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
