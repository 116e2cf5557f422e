// The OpenAPI 3.1 document of the partner API, generated from the route schemas (served, and kept in docs/openapi.json).

import { Type } from "@sinclair/typebox";
import {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type RouteOptions,
} from "fastify";
import { MessageSchema } from "../core/line-messages.ts";
import { installErrorHandling } from "./error-handler.ts";

export const PARTNER_API_TAG = "partner API";

/** Every error answer of both APIs: `{code, message}`. */
export const ErrorAnswer = Type.Object(
  { code: Type.String({ description: "see docs/errors.md" }), message: Type.String() },
  { description: "an error" },
);
export const ADMIN_API_TAG = "admin API";

const operation = (operationId: string, summary: string) => ({ operationId, summary });

/** Each admin API route's operation id and summary, by `METHOD url` (SPEC §10, docs/admin-api.md). */
export const ADMIN_OPERATIONS: Readonly<Record<string, { operationId: string; summary: string }>> = {
  "POST /admin/sign-in": operation(
    "adminSignIn",
    "Sign in with name and password: a session cookie and its CSRF token",
  ),
  "POST /admin/sign-out": operation("adminSignOut", "End this session"),
  "GET /admin/me": operation("adminMe", "Who the credentials belong to, and their role"),
  "GET /admin/status": operation(
    "adminStatus",
    "Version, database, configuration version, counts and the delivery backlog",
  ),
  "GET /admin/overview": operation(
    "adminOverview",
    "Each channel's webhooks and relays of the last minute, backlog, dead letters, partner and token state",
  ),
  "GET /admin/partners": operation("adminListPartners", "Every partner (secrets never shown)"),
  "POST /admin/partners": operation(
    "adminCreatePartner",
    "Add a partner; in effect on every instance within seconds",
  ),
  "GET /admin/partners/:id": operation("adminGetPartner", "One partner"),
  "PATCH /admin/partners/:id": operation("adminUpdatePartner", "Change a partner's settings, or disable it"),
  "DELETE /admin/partners/:id": operation(
    "adminDeletePartner",
    "Delete a partner no channel uses (its keys are revoked)",
  ),
  "POST /admin/partners/:id/keys": operation("adminCreatePartnerKey", "Make a partner API key (shown once)"),
  "DELETE /admin/partners/:id/keys/:keyId": operation("adminRevokePartnerKey", "Revoke a partner API key"),
  "POST /admin/partners/:id/signing-secrets": operation(
    "adminAddSigningSecret",
    "Add a signing secret (a rotation's second)",
  ),
  "DELETE /admin/partners/:id/signing-secrets/:secretId": operation(
    "adminRetireSigningSecret",
    "Retire a signing secret",
  ),
  "GET /admin/channels": operation("adminListChannels", "Every channel (secrets never shown)"),
  "POST /admin/channels": operation(
    "adminCreateChannel",
    "Add a channel; its webhooks are taken within seconds",
  ),
  "GET /admin/channels/:senderKey": operation("adminGetChannel", "One channel"),
  "PATCH /admin/channels/:senderKey": operation(
    "adminUpdateChannel",
    "Change a channel (its secret or token too), or disable it",
  ),
  "DELETE /admin/channels/:senderKey": operation(
    "adminDeleteChannel",
    "Delete a channel with no deliveries waiting",
  ),
  "GET /admin/channels/:senderKey/webhook-endpoint": operation(
    "adminGetWebhookEndpoint",
    "The channel's webhook URL at LINE",
  ),
  "GET /admin/timeline": operation(
    "adminTimeline",
    "A conversation's events (with their deliveries) and the partner's sends, newest first; texts masked",
  ),
  "POST /admin/channels/:senderKey/users/:userId/erase": operation(
    "adminEraseUser",
    "Erase what talkgate stored of a user in a channel: texts, contents, attachments, sent messages, directory entry",
  ),
  "PUT /admin/channels/:senderKey/webhook-endpoint": operation(
    "adminSetWebhookEndpoint",
    "Set the channel's webhook URL at LINE",
  ),
  "POST /admin/channels/:senderKey/webhook-endpoint/test": operation(
    "adminTestWebhookEndpoint",
    "Have LINE send a test webhook",
  ),
  "GET /admin/tokens": operation("adminListTokens", "Operator API tokens (never the tokens themselves)"),
  "POST /admin/tokens": operation("adminCreateToken", "Make an operator API token (shown once)"),
  "DELETE /admin/tokens/:id": operation("adminRevokeToken", "Revoke an operator API token"),
  "GET /admin/deliveries": operation(
    "adminListDeliveries",
    "Deliveries of every channel: by channel, state, conversation, time",
  ),
  "POST /admin/deliveries/replay": operation(
    "adminReplayDeliveries",
    "Deliver again, by serial numbers or a time range; or count first",
  ),
  "GET /admin/events": operation(
    "adminFindEvents",
    "Stored events by serial number, LINE message id, user or time; text masked unless revealed (audited)",
  ),
  "GET /admin/audit": operation("adminListAudit", "The audit log, newest first, filtered"),
  "GET /admin/audit/export": operation("adminExportAudit", "The audit log as NDJSON"),
};

/** Each partner API route's operation id and one-line summary, shown in the document (SPEC §6). */
export const OPERATIONS: Readonly<Record<string, { operationId: string; summary: string }>> = {
  "/line/message/send": {
    operationId: "sendMessage",
    summary:
      "Send 1–5 LINE messages to a user, group or room: reply when free, else push; once per serial_number",
  },
  "/line/message/long": {
    operationId: "getLongText",
    summary: "장문 메시지 가져오기: the full text of a text message",
  },
  "/line/message/attachment": {
    operationId: "getAttachment",
    summary: "첨부파일 다운로드: a message's image, video, audio or file (Range, ETag)",
  },
  "/line/media": {
    operationId: "uploadMedia",
    summary:
      "Upload an image, video or audio file (multipart: file, preview) to send; answers its public URL",
  },
  "/line/chat/loading": {
    operationId: "showLoading",
    summary: "Show LINE's loading animation in a 1:1 chat",
  },
  "/line/chat/read": {
    operationId: "markAsRead",
    summary: "Mark a user's messages as read up to the message with this serial_number",
  },
  "/line/user/profile": {
    operationId: "getUserProfile",
    summary: "A user's LINE profile and directory fields",
  },
  "/line/user": {
    operationId: "setUser",
    summary: "Set a user's directory fields (e164, agree_type), carried in later payloads",
  },
  "/line/user/erase": {
    operationId: "eraseUser",
    summary:
      "Erase what talkgate stored of a user in a channel: texts, contents, attachments, sent messages, directory entry",
  },
  "/line/channel/webhook/endpoint/set": {
    operationId: "setWebhookEndpoint",
    summary: "Set the channel's webhook URL at LINE (a permission the operator gives per partner)",
  },
  "/line/channel/webhook/endpoint/info": {
    operationId: "getWebhookEndpoint",
    summary: "The channel's webhook URL at LINE",
  },
  "/line/deliveries": {
    operationId: "listDeliveries",
    summary: "List deliveries to the partner: by channel, state, conversation, time range; paged",
  },
  "/line/deliveries/replay": {
    operationId: "replayDeliveries",
    summary:
      "Deliver again, by serial_numbers or a time range (they keep their serial_number); or count first",
  },
};

// The multipart body of POST /line/media, which @fastify/multipart reads as a stream (no body schema to validate).
const UPLOAD_BODY = {
  type: "object",
  required: ["file"],
  properties: {
    file: {
      type: "string",
      format: "binary",
      description: "JPEG or PNG image (≤ 10 MB), MP4 video, M4A or MP3 audio (≤ 200 MB)",
    },
    preview: { type: "string", format: "binary", description: "JPEG or PNG preview image (≤ 10 MB)" },
  },
};

// MessageSchema keeps its shared parts in `$defs`; in the document they become components.
function messageComponents(): Record<string, unknown> {
  const {
    $id: _id,
    $defs,
    ...message
  } = JSON.parse(JSON.stringify(MessageSchema).replaceAll('"#/$defs/', '"#/components/schemas/')) as {
    $id: string;
    $defs: Record<string, unknown>;
  };
  return { ...$defs, LineMessage: message };
}

/**
 * Serves the document at /line/openapi.json and a readable page at /line/docs. Only routes tagged
 * {@link PARTNER_API_TAG} appear. The generator and the page (with their YAML, static-file and asset
 * dependencies) load on the first request to either: `app` only records its routes (call this before
 * registering them); the first request builds a separate Fastify instance with @fastify/swagger,
 * @fastify/swagger-ui and the recorded routes, and hands this and later docs requests to it.
 */
export function registerOpenApi(app: FastifyInstance, version: string): void {
  const routes: RouteOptions[] = [];
  // The hook keeps each route's options object: hooks of the scopes below complete its schema later.
  app.addHook("onRoute", (route) => {
    routes.push(route);
  });
  let docs: Promise<FastifyInstance> | undefined;
  const docsApp = () => {
    docs ??= buildDocsApp(app, routes, version).catch((error: unknown) => {
      docs = undefined;
      throw error;
    });
    return docs;
  };
  app.addHook("onClose", async () => {
    if (docs) await (await docs.catch(() => undefined))?.close();
  });
  void app.register(async (scope) => {
    scope.get("/line/openapi.json", { schema: { hide: true } }, async () => (await docsApp()).swagger());
    const page = async (request: FastifyRequest, reply: FastifyReply) => {
      const docs = await docsApp();
      reply.hijack();
      docs.routing(request.raw, reply.raw);
    };
    scope.get("/line/docs", { schema: { hide: true } }, page);
    scope.get("/line/docs/*", { schema: { hide: true } }, page);
  });
}

// The instance generating the document from `routes` and serving the page under /line/docs.
async function buildDocsApp(
  app: FastifyInstance,
  routes: readonly RouteOptions[],
  version: string,
): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
    import("fastify"),
    import("@fastify/swagger"),
    import("@fastify/swagger-ui"),
  ]);
  const docs = Fastify({
    loggerInstance: app.log,
    logController: new LogController({ disableRequestLogging: true }),
  });
  // The recorded routes only describe; app validates and answers them.
  docs.setValidatorCompiler(() => () => true);
  docs.setSerializerCompiler(() => (data) => JSON.stringify(data));
  installErrorHandling(docs);
  await docs.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "talkgate partner API (상담톡 API) and admin API",
        version,
        description:
          "Partner API (/line): answer LINE users, fetch long texts and attachments. Admin API (/admin): operators run talkgate. Errors answer {code, message}; see docs/errors.md.",
        license: { name: "MIT", identifier: "MIT" },
      },
      servers: [{ url: "/", description: "this talkgate" }],
      components: {
        securitySchemes: {
          partnerKey: { type: "http", scheme: "bearer", description: "a partner API key" },
          operatorToken: { type: "http", scheme: "bearer", description: "an operator API token (tgo_…)" },
          operatorSession: {
            type: "apiKey",
            in: "cookie",
            name: "talkgate_session",
            description: "a session from POST /admin/sign-in; changes also need its x-csrf-token header",
          },
        },
        schemas: messageComponents() as never,
      },
      security: [{ partnerKey: [] }],
    },
    hideUntagged: true,
    transform: ({ schema, url }) => {
      // An upload is read as a stream, so its route has no body schema; the document describes it.
      if (url === "/line/media")
        return { schema: { ...schema, consumes: ["multipart/form-data"], body: UPLOAD_BODY }, url };
      // Fastify validates `messages` as unknown items (talkgate checks them itself, naming the field);
      // the document describes them fully.
      if (url !== "/line/message/send" || !schema?.body) return { schema, url };
      const body = schema.body as { properties: Record<string, object> };
      const messages = { ...body.properties.messages, items: { $ref: "#/components/schemas/LineMessage" } };
      return { schema: { ...schema, body: { ...body, properties: { ...body.properties, messages } } }, url };
    },
  });
  await docs.register(swaggerUi, {
    routePrefix: "/line/docs",
    theme: { title: "talkgate partner API (상담톡 API)" },
  });
  for (const route of routes) {
    // Fastify's automatic HEAD twins of GET routes are left out; a route that serves HEAD itself is described
    // once per method, each with an operation id of its own.
    if (route.method === "HEAD" || route.url === "/line/docs" || route.url.startsWith("/line/docs/"))
      continue;
    for (const method of [route.method].flat()) {
      const schema = route.schema as { operationId?: string; summary?: string } | undefined;
      const head = method === "HEAD" && schema?.operationId;
      docs.route({
        method,
        url: route.url,
        schema: head
          ? {
              ...schema,
              operationId: `${schema.operationId}Head`,
              summary: `Headers only: ${schema.summary}`,
            }
          : schema,
        exposeHeadRoute: false,
        handler: () => undefined,
      });
    }
  }
  await docs.ready();
  return docs;
}
