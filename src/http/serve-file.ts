// Serves a stored file (an attachment, an upload): its type and nothing else (nosniff, a sandboxing CSP), a
// disposition, an ETag, and one byte range.
import type { FastifyReply, FastifyRequest } from "fastify";
import parseRange from "range-parser";
import type { ByteRange, MediaSource } from "../app/ports.ts";
import { sendMediaSource } from "./send-media-source.ts";

/** How one stored file is answered. */
export interface ServedFile {
  /** The open file (see MediaFiles.openSource); closed or sent by {@link serveFile}. */
  source: MediaSource;
  contentType: string;
  /** The Content-Disposition value. */
  disposition: string;
  etag: string;
  cacheControl: string;
}

/**
 * Answers GET and HEAD of a stored file: 200 with the whole file, 206 with one satisfiable range, 304 for a
 * matching If-None-Match, 416 `-416` (JSON) for a range outside the file. Browsers are told to take the
 * type as given and to run nothing in it, whatever the bytes look like.
 */
export async function serveFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: ServedFile,
): Promise<void> {
  const { source } = file;
  const size = source.size;
  let range: ByteRange | undefined;
  const header = request.headers.range;
  if (header && size > 0) {
    const ranges = parseRange(size, header, { combine: true });
    if (ranges === -1) {
      await source.close();
      return void reply
        .status(416)
        .header("content-range", `bytes */${size}`)
        .send({ code: "-416", message: `Range: ${header} lies outside the file's ${size} bytes` });
    }
    // Several ranges would need multipart/byteranges; the whole body serves them as well (so does a malformed one).
    if (Array.isArray(ranges) && ranges.type === "bytes" && ranges.length === 1 && ranges[0])
      range = ranges[0];
  }
  reply
    .header("content-type", file.contentType)
    .header("x-content-type-options", "nosniff")
    .header("content-security-policy", "default-src 'none'; sandbox")
    .header("content-disposition", file.disposition)
    .header("etag", file.etag)
    .header("accept-ranges", "bytes")
    .header("cache-control", file.cacheControl);
  if (request.headers["if-none-match"] === file.etag) {
    await source.close();
    return void reply.status(304).send();
  }
  if (range) reply.status(206).header("content-range", `bytes ${range.start}-${range.end}/${size}`);
  reply.header("content-length", range ? range.end - range.start + 1 : size);
  if (request.method === "HEAD") {
    await source.close();
    return void reply.send();
  }
  await sendMediaSource(reply, source, range);
}
