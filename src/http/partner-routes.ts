// The partner API ("상담톡 API", SPEC §6) under /line: authenticated, scoped to the key's channels.

import multipart from "@fastify/multipart";
import rateLimit from "@fastify/rate-limit";
import { Type } from "@sinclair/typebox";
import { create as contentDisposition } from "content-disposition";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import parseRange from "range-parser";
import type { ChatDeps } from "../app/chat-actions.ts";
import type { MediaFiles, Metrics, Store } from "../app/ports.ts";
import { findAttachment, readText } from "../app/read-message.ts";
import type { SendDeps } from "../app/send-message.ts";
import { attachmentFileName } from "../core/attachment.ts";
import { TalkgateError } from "../core/errors.ts";
import { registerActionRoutes } from "./action-routes.ts";
import { registerDeliveryRoutes } from "./delivery-routes.ts";
import { PARTNER_API_TAG, ROUTE_SUMMARIES } from "./openapi.ts";
import type { PartnerAccess, PartnerKeys } from "./partner-auth.ts";
import { sendMediaSource } from "./send-media-source.ts";
import { registerPublicMediaRoute, registerUploadRoute } from "./upload-routes.ts";
import { installValidation } from "./validation.ts";

export interface PartnerApiDeps extends ChatDeps {
  metrics: Metrics;
  limits: { rateLimitMax: number; rateLimitWindowMs: number; bodyLimitBytes: number };
  keys: PartnerKeys;
  store: Store;
  files: MediaFiles;
  send: SendDeps;
  publicBaseUrl: string;
}

declare module "fastify" {
  interface FastifyRequest {
    partner: PartnerAccess;
  }
}

const ErrorAnswer = Type.Object(
  { code: Type.String({ description: "see docs/errors.md" }), message: Type.String() },
  { description: "an error" },
);

const MessageQuery = Type.Object(
  {
    sender_key: Type.String({ minLength: 1, maxLength: 64 }),
    serial_number: Type.String({ minLength: 1, maxLength: 30 }),
  },
  { additionalProperties: false },
);
type MessageQuery = { sender_key: string; serial_number: string };

/** Registers the partner API routes; every one requires a partner API key. */
export function registerPartnerRoutes(app: FastifyInstance, deps: PartnerApiDeps): void {
  void app.register(async (api) => {
    api.decorateRequest("partner", undefined as unknown as PartnerAccess);
    // Every route here is part of the documented partner API and answers errors as {code, message}.
    api.addHook("onRoute", (route) => {
      route.schema = {
        ...route.schema,
        tags: [PARTNER_API_TAG],
        summary: ROUTE_SUMMARIES[route.url],
        response: {
          "4xx": ErrorAnswer,
          "5xx": ErrorAnswer,
          ...(route.schema?.response as object | undefined),
        },
      };
    });
    api.addHook("onRequest", async (request) => {
      request.partner = deps.keys.authenticate(request.headers.authorization);
    });
    installValidation(api);
    // Per key, after authentication: one busy partner cannot starve the others.
    await api.register(rateLimit, {
      hook: "preHandler",
      max: deps.limits.rateLimitMax,
      timeWindow: deps.limits.rateLimitWindowMs,
      keyGenerator: (request) => request.partner.keyId,
      errorResponseBuilder: (_request, context) =>
        new TalkgateError("-429", `too many requests: at most ${context.max} per ${context.after}`),
    });

    api.get<{ Querystring: MessageQuery }>(
      "/line/message/long",
      { schema: { querystring: MessageQuery } },
      async (request) => {
        const { sender_key: senderKey, serial_number: serialNumber } = request.query;
        request.partner.requireChannel(senderKey);
        const text = await readText(deps.store, senderKey, serialNumber);
        return { code: "0", serial_number: serialNumber, text };
      },
    );

    api.route<{ Querystring: MessageQuery }>({
      method: ["GET", "HEAD"],
      url: "/line/message/attachment",
      schema: { querystring: MessageQuery },
      handler: (request, reply) => sendAttachment(deps, request, reply),
    });

    registerActionRoutes(api, deps);
    registerDeliveryRoutes(api, {
      store: deps.store,
      now: () => deps.clock.now(),
    });
    await api.register(multipart);
    registerUploadRoute(api, deps);
  });
  registerPublicMediaRoute(app, deps);
}

async function sendAttachment(
  deps: PartnerApiDeps,
  request: FastifyRequest<{ Querystring: MessageQuery }>,
  reply: FastifyReply,
) {
  const { sender_key: senderKey, serial_number: serialNumber } = request.query;
  request.partner.requireChannel(senderKey);
  const { media, event } = await findAttachment(deps.store, senderKey, serialNumber);
  const message = event.message as { fileName?: unknown } | undefined;
  const fileName = attachmentFileName(
    media.kind === "file" ? message?.fileName : undefined,
    serialNumber,
    media.contentType,
  );
  const etag = `"sha256-${media.sha256}"`;
  reply
    .header("content-type", media.contentType ?? "application/octet-stream")
    .header("content-disposition", contentDisposition(fileName))
    .header("etag", etag)
    .header("accept-ranges", "bytes")
    .header("cache-control", "private, max-age=0");
  if (request.headers["if-none-match"] === etag) return reply.status(304).send();

  let range: { start: number; end: number } | undefined;
  const header = request.headers.range;
  if (header && media.size > 0) {
    const ranges = parseRange(media.size, header, { combine: true });
    if (ranges === -1) return reply.status(416).header("content-range", `bytes */${media.size}`).send();
    // Several ranges would need multipart/byteranges; the whole body serves them as well.
    if (Array.isArray(ranges) && ranges.type === "bytes" && ranges.length === 1 && ranges[0])
      range = ranges[0];
  }
  if (range) {
    reply.status(206).header("content-range", `bytes ${range.start}-${range.end}/${media.size}`);
  }
  reply.header("content-length", range ? range.end - range.start + 1 : media.size);
  if (request.method === "HEAD") return reply.send();
  return sendMediaSource(reply, await deps.files.openSource(media.path), range);
}
