// Attachment files under mediaDir: streamed to a temporary file, fsynced, then renamed into place.
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, mkdirSync, rmSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, statfs } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ByteRange, MediaFiles, MediaSource } from "../app/ports.ts";
import { sendFileRange } from "./send-file-range.ts";

/** {@link MediaFiles} in a directory. Partial files from an earlier run are removed when it opens. */
export class DiskMediaFiles implements MediaFiles {
  readonly #root: string;
  readonly #incoming: string;

  constructor(root: string) {
    this.#root = resolve(root);
    this.#incoming = join(this.#root, ".incoming");
    rmSync(this.#incoming, { recursive: true, force: true });
    mkdirSync(this.#incoming, { recursive: true });
  }

  async save(
    name: string,
    body: Readable,
    expectedLength: number | null,
    options: { release?: (chunk: Buffer) => void } = {},
  ): Promise<{ size: number; sha256: string }> {
    const target = this.#path(name);
    const temporary = join(this.#incoming, randomUUID());
    const hash = createHash("sha256");
    let size = 0;
    let file: FileHandle | undefined;
    try {
      const out = await open(temporary, "wx");
      file = out;
      // Written here rather than by a WriteStream, whose callbacks would not tell when each chunk is done.
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          size += chunk.length;
          writeAll(out, chunk).then(() => {
            options.release?.(chunk);
            done();
          }, done);
        },
        // fsync before close, so that a file renamed into place survives a crash whole.
        final(done) {
          out.sync().then(() => done(), done);
        },
      });
      await pipeline(body, sink);
      file = undefined;
      await out.close();
      if (expectedLength !== null && size !== expectedLength) {
        throw new Error(`body ended after ${size} of ${expectedLength} bytes`);
      }
      await mkdir(dirname(target), { recursive: true });
      await rename(temporary, target);
    } catch (error) {
      body.destroy();
      // The error worth reporting is the one that stopped the download, not a failing close.
      await file?.close().catch(() => {});
      await rm(temporary, { force: true });
      throw error;
    }
    return { size, sha256: hash.digest("hex") };
  }

  open(name: string, range?: ByteRange): Readable {
    return createReadStream(this.#path(name), range);
  }

  async openSource(name: string): Promise<MediaSource> {
    const file = await open(this.#path(name), "r");
    try {
      const info = await file.stat();
      // Linux opens a directory for reading too; it would fail only at the first read.
      if (!info.isFile()) throw Object.assign(new Error(`${name} is not a file`), { code: "EISDIR" });
      const { size } = info;
      return {
        size,
        sendTo: (destination, range = { start: 0, end: size - 1 }) =>
          sendFileRange(file, destination, range).finally(() => file.close()),
        close: () => file.close(),
      };
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(this.#path(from), this.#path(to));
  }

  async remove(name: string): Promise<void> {
    await rm(this.#path(name), { force: true });
  }

  async prune(dir: string, before: number): Promise<number> {
    const root = this.#path(dir);
    let removed = 0;
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const path = join(root, entry.name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < before) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async freeBytes(): Promise<number> {
    const volume = await statfs(this.#root);
    return volume.bavail * volume.bsize;
  }

  // Names are made by talkgate (`<sender_key>/<event id>`); this only guards against a bug escaping the root.
  #path(name: string): string {
    const path = resolve(this.#root, name);
    if (!path.startsWith(this.#root + sep))
      throw new Error(`media name ${JSON.stringify(name)} leaves the media directory`);
    return path;
  }
}

// A write to a regular file may take fewer bytes than asked (near a full disk); the rest goes after it.
async function writeAll(file: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
    if (bytesWritten === 0) throw new Error(`the disk took none of ${chunk.length - offset} bytes`);
    offset += bytesWritten;
  }
}
