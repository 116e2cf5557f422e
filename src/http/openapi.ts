// The OpenAPI 3.1 document of the partner API, generated from the route schemas (served, and kept in docs/openapi.json).
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { MessageSchema } from "../core/line-messages.ts";

export const PARTNER_API_TAG = "partner API";

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
