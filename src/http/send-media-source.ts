// Answers a Fastify reply with an open media file as its body, through the file's few reused buffers.
import type { FastifyReply } from "fastify";
import type { ByteRange, MediaSource } from "../app/ports.ts";

/**
 * Sends `source` (or `range` of it) under the status and headers already set on `reply`, and resolves
 * once the transfer is over. A transfer cut short (the client went away, the file could not be read)
 * has destroyed the connection, which is how an HTTP client learns that a body is incomplete; it is
 * logged, not thrown.
 */
export async function sendMediaSource(
  reply: FastifyReply,
  source: MediaSource,
  range?: ByteRange,
): Promise<void> {
  // Fastify would pipe a stream into the response, and a pipe never learns when the socket is done
  // with a chunk, so every chunk would need a buffer of its own. The reply is taken over instead.
  reply.hijack();
  for (const [name, value] of Object.entries(reply.getHeaders()))
    if (value !== undefined) reply.raw.setHeader(name, value);
  reply.raw.writeHead(reply.statusCode);
  try {
    await source.sendTo(reply.raw, range);
  } catch (error) {
    const clientLeft = (error as { code?: unknown }).code === "ERR_STREAM_PREMATURE_CLOSE";
    // The route pattern, not the URL: a public media URL is the file's only secret.
    const route = reply.request.routeOptions.url;
    reply.log[clientLeft ? "info" : "warn"]({ err: error, route }, "media:send:cut");
  }
}
