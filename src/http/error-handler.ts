// The one place where errors become answers: `{code, message}` with the matching HTTP status.
import type { FastifyError, FastifyInstance } from "fastify";
import { type ErrorCode, TalkgateError } from "../core/errors.ts";
import { answerAndLinger } from "./body-limit.ts";

// Fastify's own errors that reach us, mapped to talkgate codes.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "-413",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "-415",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "-405",
  FST_ERR_CTP_EMPTY_JSON_BODY: "-405",
  FST_ERR_CTP_INVALID_JSON_BODY: "-405",
  FST_REQ_FILE_TOO_LARGE: "-413",
  FST_PARTS_LIMIT: "-413",
  FST_FILES_LIMIT: "-413",
  FST_INVALID_MULTIPART_CONTENT_TYPE: "-415",
  FST_ERR_BAD_URL: "-405",
  FST_ERR_MAX_PARAM_LENGTH: "-405",
};

/** Turns any error into a talkgate error (unexpected ones become `-699`). */
export function toTalkgateError(error: FastifyError | Error): TalkgateError {
  if (error instanceof TalkgateError) return error;
  const fastify = error as FastifyError;
  const mapped = fastify.code ? FASTIFY_CODES[fastify.code] : undefined;
  if (mapped) return new TalkgateError(mapped, fastify.message, { cause: error });
  if (fastify.validation) return new TalkgateError("-405", fastify.message, { cause: error });
  // Other client errors Fastify raises (4xx) are bad input, not talkgate's fault.
  if (typeof fastify.statusCode === "number" && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return new TalkgateError("-405", fastify.message, { cause: error });
  }
  return new TalkgateError("-699", "internal error", { cause: error });
}

/** Installs the error and not-found handlers on `app`. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((raw, request, reply) => {
    const error = toTalkgateError(raw as FastifyError);
    if (error.status >= 500) request.log.error({ err: error.cause ?? error, code: error.code }, "http:error");
    const body = { code: error.code, message: error.message };
    // The rest of a body too large may still be on its way: the answer must not be lost to a reset.
    if (error.status === 413) return answerAndLinger(reply, 413, JSON.stringify(body));
    // Headers a route set for a success (a file's type…) must not dress up the error.
    return reply.status(error.status).type("application/json; charset=utf-8").send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send({ code: "-601", message: `no route ${request.method} ${request.url.split("?")[0]}` }),
  );
}
