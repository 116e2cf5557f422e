// Attachment and upload files kept in PostgreSQL, so that every instance serves them: bytes in chunks, streamed in
// and out (never a whole file in memory), a file visible under its name only once it is whole.
import { createHash, randomUUID } from "node:crypto";
import { once } from "node:events";
import { Readable, type Writable } from "node:stream";
import type { ByteRange, MediaFiles, MediaSource } from "../../app/ports.ts";
import type { Pool } from "./connection.ts";

/** Bytes per chunk row. */
const CHUNK = 256 * 1024;

/** {@link MediaFiles} in the `files` and `file_chunks` tables. */
export class DatabaseFiles implements MediaFiles {
  readonly #pool: Pool;

  readonly #staleIncomingMs: number;

  /**
   * `staleIncomingMs`: a file still being written after this long was cut off (its instance died), and is
   * removed by {@link prune} (`media.leaseMs`: by then another instance has taken the download over).
   */
  constructor(pool: Pool, options: { staleIncomingMs: number }) {
    this.#pool = pool;
    this.#staleIncomingMs = options.staleIncomingMs;
  }

  async save(
    name: string,
    body: Readable,
    expectedLength: number | null,
    options: { release?: (chunk: Buffer) => void } = {},
  ): Promise<{ size: number; sha256: string }> {
    const pool = this.#pool;
    const [{ id } = { id: 0 }] = await pool<Array<{ id: number }>>`SELECT nextval('blob_ids') AS id`;
    const incoming = `.incoming/${randomUUID()}`;
    await pool`INSERT INTO files (name, size, created_at, blob_id) VALUES (${incoming}, 0, ${Date.now()}, ${id})`;
    const hash = createHash("sha256");
    let size = 0;
    let seq = 0;
    // Every row but the last holds exactly CHUNK bytes, so that a byte offset names its row (Range reads).
    let row = Buffer.allocUnsafe(CHUNK);
    let filled = 0;
    const flush = async () => {
      await pool`INSERT INTO file_chunks (blob_id, seq, data) VALUES (${id}, ${seq++}, ${row.subarray(0, filled)})`;
      row = Buffer.allocUnsafe(CHUNK);
      filled = 0;
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        for (let at = 0; at < chunk.length; ) {
          const copied = chunk.copy(row, filled, at);
          filled += copied;
          at += copied;
          if (filled === CHUNK) await flush();
        }
        options.release?.(chunk);
      }
      if (filled > 0 || seq === 0) await flush();
      if (expectedLength !== null && size !== expectedLength)
        throw new Error(`body ended after ${size} of ${expectedLength} bytes`);
      // Whole now: it takes its name (replacing a file of that name) in one transaction.
      await pool.begin(async (tx) => {
        await tx`DELETE FROM file_chunks WHERE blob_id IN (SELECT blob_id FROM files WHERE name = ${name})`;
        await tx`DELETE FROM files WHERE name = ${name}`;
        const renamed =
          await tx`UPDATE files SET name = ${name}, size = ${size} WHERE name = ${incoming} RETURNING 1`;
        // Pruned meanwhile (a download that outlived its lease was taken for one cut off): not saved.
        if (renamed.length === 0) throw new Error(`${incoming} was removed before it was whole`);
      });
    } catch (error) {
      await this.remove(incoming).catch(() => {});
      throw error;
    }
    return { size, sha256: hash.digest("hex") };
  }

  open(name: string, range?: ByteRange): Readable {
    return Readable.from(this.#chunks(name, range));
  }

  async openSource(name: string): Promise<MediaSource> {
    const [file] = await this.#pool<Array<{ size: number; blob_id: number }>>`
      SELECT size, blob_id FROM files WHERE name = ${name}`;
    if (!file) throw Object.assign(new Error(`no file ${name}`), { code: "ENOENT" });
    const chunks = (range?: ByteRange) => this.#blobChunks(file.blob_id, file.size, range);
    return {
      size: file.size,
      async sendTo(destination: Writable, range?: ByteRange) {
        try {
          for await (const piece of chunks(range)) {
            if (!destination.write(piece)) await once(destination, "drain");
          }
          destination.end();
        } catch (error) {
          destination.destroy(error as Error);
          throw error;
        }
      },
      async close() {},
    };
  }

  async rename(from: string, to: string): Promise<void> {
    await this.#pool`UPDATE files SET name = ${to} WHERE name = ${from}`;
  }

  async remove(name: string): Promise<void> {
    await this.#pool.begin(async (tx) => {
      const removed = await tx<
        Array<{ blob_id: number }>
      >`DELETE FROM files WHERE name = ${name} RETURNING blob_id`;
      for (const { blob_id: blob } of removed) await tx`DELETE FROM file_chunks WHERE blob_id = ${blob}`;
    });
  }

  async prune(dir: string, before: number): Promise<number> {
    const stale = await this.#pool<Array<{ name: string }>>`
      SELECT name FROM files
      WHERE (starts_with(name, ${`${dir}/`}) AND created_at < ${before})
        OR (starts_with(name, '.incoming/') AND created_at < ${Date.now() - this.#staleIncomingMs})`;
    for (const { name } of stale) await this.remove(name);
    return stale.filter(({ name }) => name.startsWith(`${dir}/`)).length;
  }

  /** The database's disk is not this process's to see: no floor applies here (docs/operations.md). */
  async freeBytes(): Promise<number> {
    return Number.POSITIVE_INFINITY;
  }

  async *#chunks(name: string, range?: ByteRange): AsyncGenerator<Buffer> {
    const [file] = await this.#pool<Array<{ size: number; blob_id: number }>>`
      SELECT size, blob_id FROM files WHERE name = ${name}`;
    if (!file) throw Object.assign(new Error(`no file ${name}`), { code: "ENOENT" });
    yield* this.#blobChunks(file.blob_id, file.size, range);
  }

  // The bytes of a blob (or of `range` of it), a chunk row at a time.
  async *#blobChunks(blob: number, size: number, range?: ByteRange): AsyncGenerator<Buffer> {
    const start = range?.start ?? 0;
    const end = range ? range.end : size - 1;
    if (end < start) return;
    const first = Math.floor(start / CHUNK);
    const last = Math.floor(end / CHUNK);
    for (let seq = first; seq <= last; seq++) {
      const [row] = await this.#pool<Array<{ data: Buffer }>>`
        SELECT data FROM file_chunks WHERE blob_id = ${blob} AND seq = ${seq}`;
      if (!row) throw new Error(`file chunk ${seq} of blob ${blob} is missing`);
      const offset = seq * CHUNK;
      yield row.data.subarray(Math.max(0, start - offset), Math.min(row.data.length, end - offset + 1));
    }
  }
}
