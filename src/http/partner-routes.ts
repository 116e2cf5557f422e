// The partner API ("상담톡 API", SPEC §6) under /line: authenticated, scoped to the key's channels.

import multipart from "@fastify/multipart";
import rateLimit from "@fastify/rate-limit";
import { Type } from "@sinclair/typebox";
import { create as contentDisposition } from "content-disposition";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ChatDeps } from "../app/chat-actions.ts";
import type { EraseDeps } from "../app/erase-user.ts";
import type { Metrics } from "../app/ports.ts";
import { findAttachment, readText } from "../app/read-message.ts";
import type { SendDeps } from "../app/send-message.ts";
import type { Directory, EventLog, OperatorData, Outbox, Retention, Uploads } from "../app/store.ts";
import { attachmentFileName } from "../core/attachment.ts";
import { TalkgateError } from "../core/errors.ts";
import type { PartnerState } from "../core/partner-health.ts";
import { registerActionRoutes } from "./action-routes.ts";
import { auditTarget } from "./admin-auth.ts";
import { registerDeliveryRoutes } from "./delivery-routes.ts";
import { toTalkgateError } from "./error-handler.ts";
import { ErrorAnswer, OPERATIONS, PARTNER_API_TAG } from "./openapi.ts";
import type { PartnerAccess, PartnerKeys } from "./partner-auth.ts";
import { serveFile } from "./serve-file.ts";
import { registerPublicMediaRoute, registerUploadRoute, type UploadDeps } from "./upload-routes.ts";
import { installValidation } from "./validation.ts";

/** The partner API calls that change or send something (SPEC §10), by route, and their audit actions. */
export const PARTNER_AUDIT_ACTIONS: Readonly<Record<string, string>> = {
  "/line/message/send": "message.send",
  "/line/media": "media.upload",
  "/line/chat/read": "chat.read",
  "/line/user": "user.directory.set",
  "/line/user/erase": "user.erase",
  "/line/channel/webhook/endpoint/set": "channel.webhook-endpoint.set",
  "/line/deliveries/replay": "deliveries.replay",
};

// Records who (partner and key id) did what to which channel and serial_number or user, and how it ended.
function installPartnerAudit(
  api: FastifyInstance,
  audit: Pick<OperatorData, "appendAudit">,
  now: () => number,
): void {
  const outcomes = new WeakMap<FastifyRequest, string>();
  api.addHook("onError", async (request, _reply, error) => {
    outcomes.set(request, toTalkgateError(error).code);
  });
  api.addHook("onSend", async (request, reply, payload) => {
    const action =
      request.method === "POST" ? PARTNER_AUDIT_ACTIONS[request.routeOptions.url ?? ""] : undefined;
    if (!action || !request.partner) return payload;
    const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<
      string,
      unknown
    >;
    const target = [body.sender_key, body.serial_number ?? body.user_key]
      .filter((part) => typeof part === "string")
      .join("/");
    try {
      await audit.appendAudit({
        at: now(),
        actorKind: "partner",
        actor: request.partner.partnerId,
        credentialId: request.partner.keyId,
        action,
        target: auditTarget(target || null),
        outcome: outcomes.get(request) ?? (reply.statusCode < 400 ? "ok" : String(reply.statusCode)),
        requestId: request.id,
      });
    } catch (error) {
      request.log.error({ err: error, action }, "audit:write:failed");
    }
    return payload;
  });
}

export interface PartnerApiDeps extends ChatDeps, UploadDeps {
  metrics: Metrics;
  limits: {
    rateLimitMax: number;
    rateLimitWindowMs: number;
    bodyLimitBytes: number;
    replayMax: number;
    replayWindowMs: number;
  };
  /** Where a partner's deliveries stand (delivering, paused, probing). */
  partnerState(partnerId: string): PartnerState;
  keys: Pick<PartnerKeys, "authenticate">;
  store: EventLog &
    Directory &
    Outbox &
    Uploads &
    Pick<OperatorData, "appendAudit"> &
    Pick<Retention, "purgedThrough">;
  erase: EraseDeps;
  send: SendDeps;
}

declare module "fastify" {
  interface FastifyRequest {
    partner: PartnerAccess;
  }
}

const LongAnswer = Type.Object({
  code: Type.Literal("0"),
  serial_number: Type.String(),
  text: Type.String({ description: "the whole text, up to 5,000 UTF-16 units" }),
});

const FileBytes = (description: string) => ({
  description,
  content: { "*/*": { schema: { type: "string", format: "binary" } } },
});
const AttachmentAnswers = {
  200: FileBytes(
    "the attachment's bytes, with LINE's Content-Type (application/octet-stream when LINE named none), " +
      "Content-Length, ETag and Content-Disposition: attachment",
  ),
  202: Type.Object(
    { code: Type.Literal("-202"), message: Type.String() },
    { description: "the attachment is still being fetched from LINE; ask again shortly" },
  ),
  206: FileBytes("one byte range of the attachment (Range: bytes=…), with Content-Range"),
  304: Type.Null({ description: "not modified: If-None-Match has the attachment's ETag" }),
  416: Type.Object(
    { code: Type.Literal("-416"), message: Type.String() },
    { description: "the Range lies outside the file (Content-Range: bytes */<size>)" },
  ),
};

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
        ...OPERATIONS[route.url],
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
    installPartnerAudit(api, deps.store, () => deps.clock.now());
    installValidation(api);
    // Per key, after authentication: one busy partner cannot starve the others.
    await api.register(rateLimit, {
      hook: "preHandler",
      max: deps.limits.rateLimitMax,
      timeWindow: deps.limits.rateLimitWindowMs,
      keyGenerator: (request) => request.partner.keyId,
      // `context.after` is the time left until the window resets, not the window.
      errorResponseBuilder: (_request, context) =>
        new TalkgateError(
          "-429",
          `too many requests with this API key: at most ${context.max} per ${deps.limits.rateLimitWindowMs / 1000} s; ` +
            `retry in ${Math.ceil(context.ttl / 1000)} s`,
        ),
    });

    api.get<{ Querystring: MessageQuery }>(
      "/line/message/long",
      { schema: { querystring: MessageQuery, response: { 200: LongAnswer } } },
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
      schema: { querystring: MessageQuery, response: AttachmentAnswers },
      handler: (request, reply) => sendAttachment(deps, request, reply),
    });

    registerActionRoutes(api, deps);
    registerDeliveryRoutes(api, {
      store: deps.store,
      now: () => deps.clock.now(),
      partnerState: deps.partnerState,
      replayBudget: { max: deps.limits.replayMax, windowMs: deps.limits.replayWindowMs },
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
  return serveFile(request, reply, {
    source: await deps.files.openSource(media.path),
    // LINE's own type, served as nothing else (nosniff): a file a user sent is never run as a page.
    contentType: media.contentType ?? "application/octet-stream",
    disposition: contentDisposition(fileName),
    etag: `"sha256-${media.sha256}"`,
    cacheControl: "private, max-age=0",
  });
}
