// Bodies over a route's limit: refused from Content-Length before they are read (and instead of
// `100 Continue`), and answered 413 without the client losing the answer to a reset connection.
import type { FastifyInstance, FastifyReply } from "fastify";
import { TalkgateError } from "../core/errors.ts";

/** The most of a refused body read and dropped after the answer (nginx's lingering close does the same). */
const LINGER_BYTES = 8 * 1024 * 1024;
/** The longest a refused request's connection is kept open for that. */
const LINGER_MS = 5_000;

/**
 * Checks every request's declared length against its route's `bodyLimit` before the body is read, and
 * answers `Expect: 100-continue` only for bodies within it: a larger one is refused with 413 before the
 * client sends it.
 */
export function installBodyLimits(app: FastifyInstance): void {
  // With a listener here, Node no longer answers `100 Continue` by itself: the hook below decides.
  app.server.on("checkContinue", (request, response) => app.server.emit("request", request, response));
  app.addHook("preParsing", async (request, reply) => {
    const declared = request.headers["content-length"];
    const limit = request.routeOptions.bodyLimit;
    if (declared !== undefined && limit !== undefined && Number(declared) > limit) {
      throw new TalkgateError("-413", `body: ${declared} bytes, more than the ${limit} this route takes`);
    }
    if (/^100-continue$/i.test(request.headers.expect ?? "") && !reply.raw.headersSent)
      reply.raw.writeContinue();
  });
}

/**
 * Answers `status` with `body` and closes the connection, after reading and dropping what the client is
 * still sending (up to {@link LINGER_BYTES} or {@link LINGER_MS}). Closing at once would reset a
 * connection that still carries unread bytes, and the client would lose the answer with it.
 */
export function answerAndLinger(reply: FastifyReply, status: number, body: string): void {
  reply.hijack();
  const request = reply.request.raw;
  const { socket } = request;
  const reason = status === 413 ? "Payload Too Large" : "Error";
  // The end of the answer half-closes the connection; it stays readable (Node's HTTP sockets allow that).
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  // Once the client has sent everything, the connection closes as soon as the answer is out; a client
  // that goes on sending is cut off after the bound.
  if (request.complete) return void socket.destroySoon();
  let dropped = 0;
  const cut = () => socket.destroy();
  const timer = setTimeout(cut, LINGER_MS);
  socket.once("close", () => clearTimeout(timer));
  request.on("data", (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) cut();
  });
  request.once("end", () => socket.destroySoon());
  request.resume();
}
