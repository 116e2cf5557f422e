// The OpenAPI 3.1 document of the partner API, generated from the route schemas (served, and kept in docs/openapi.json).
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { MessageSchema } from "../core/line-messages.ts";

export const PARTNER_API_TAG = "partner API";

/** One line per partner API route, shown in the document (SPEC §6). */
export const ROUTE_SUMMARIES: Readonly<Record<string, string>> = {
  "/line/message/send":
    "Send 1–5 LINE messages to a user, group or room: reply when free, else push; once per serial_number",
  "/line/message/long": "장문 메시지 가져오기: the full text of a text message",
  "/line/message/attachment": "첨부파일 다운로드: a message's image, video, audio or file (Range, ETag)",
  "/line/media":
    "Upload an image, video or audio file (multipart: file, preview) to send; answers its public URL",
  "/line/chat/loading": "Show LINE's loading animation in a 1:1 chat",
  "/line/chat/read": "Mark a user's messages as read up to the message with this serial_number",
  "/line/user/profile": "A user's LINE profile and directory fields",
  "/line/user": "Set a user's directory fields (e164, agree_type), carried in later payloads",
  "/line/channel/webhook/endpoint/set": "Set the channel's webhook URL at LINE",
  "/line/channel/webhook/endpoint/info": "The channel's webhook URL at LINE",
  "/line/deliveries": "List deliveries to the partner: by channel, state, conversation, time range; paged",
  "/line/deliveries/replay": "Deliver again, by serial_numbers or time range (they keep their serial_number)",
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
 * Registers the generator (it must come before the routes it describes), the document at
 * /line/openapi.json and a readable page at /line/docs. Only routes tagged {@link PARTNER_API_TAG} appear.
 */
export function registerOpenApi(app: FastifyInstance, version: string): void {
  void app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "talkgate partner API (상담톡 API)",
        version,
        description:
          "Answer LINE users, fetch long texts and attachments. Errors answer {code, message}; see docs/errors.md.",
      },
      components: {
        securitySchemes: { partnerKey: { type: "http", scheme: "bearer", description: "a partner API key" } },
        schemas: messageComponents() as never,
      },
      security: [{ partnerKey: [] }],
    },
    hideUntagged: true,
    transform: ({ schema, url }) => {
      // Fastify validates `messages` as unknown items (talkgate checks them itself, naming the field);
      // the document describes them fully.
      if (url !== "/line/message/send" || !schema?.body) return { schema, url };
      const body = schema.body as { properties: Record<string, object> };
      const messages = { ...body.properties.messages, items: { $ref: "#/components/schemas/LineMessage" } };
      return { schema: { ...schema, body: { ...body, properties: { ...body.properties, messages } } }, url };
    },
  });
  void app.register(swaggerUi, { routePrefix: "/line/docs" });
  void app.register(async (scope) => {
    scope.get("/line/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  });
}
