// POST /line/webhook/:senderKey — LINE's webhooks in (SPEC §2): raw bytes, signature first, 200 only once stored.
import type { FastifyInstance } from "fastify";
import { type IngestDeps, ingestWebhook } from "../app/ingest-webhook.ts";
import type { Metrics } from "../app/ports.ts";
import { TalkgateError } from "../core/errors.ts";
import { toTalkgateError } from "./error-handler.ts";

/** Registers the webhook route. Bodies are taken as raw bytes of any content type, up to `bodyLimit`. */
export function registerWebhookRoute(
  app: FastifyInstance,
  deps: IngestDeps,
  options: { bodyLimit: number; metrics: Metrics },
): void {
  const { bodyLimit, metrics } = options;
  void app.register(async (scope) => {
    // The signature covers the exact bytes, so nothing may parse or re-encode the body before it is checked.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit }, (_request, body, done) =>
      done(null, body),
    );
    // Counted before the body is read, so that refusals of every kind (a body too large included) add up.
    scope.addHook("onRequest", async (request) => {
      metrics.webhookReceived((request.params as { senderKey: string }).senderKey);
    });
    scope.addHook("onError", async (request, _reply, error) => {
      const { senderKey } = request.params as { senderKey: string };
      const refusal = toTalkgateError(error);
      request.log.warn({ sender_key: senderKey, code: refusal.code }, "webhook:refused");
      metrics.webhookRefused(senderKey, refusal.code);
    });

    scope.post<{ Params: { senderKey: string } }>(
      "/line/webhook/:senderKey",
      { bodyLimit },
      async (request, reply) => {
        const { senderKey } = request.params;
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const signature = request.headers["x-line-signature"];
        const result = await ingestWebhook(deps, {
          senderKey,
          body,
          signature: Array.isArray(signature) ? signature[0] : signature,
        }).catch((error: unknown) => {
          if (error instanceof TalkgateError) throw error;
          // Not stored: a 5xx makes LINE's redelivery bring the events back.
          throw new TalkgateError("-600", "events could not be stored; retry later", { cause: error });
        });
        metrics.eventsStored(senderKey, result.stored.length);
        for (const event of result.stored) {
          request.log.info(
            {
              sender_key: senderKey,
              serial_number: event.serialNumber,
              event_type: event.facts.type,
              forward: event.forward,
            },
            "webhook:stored",
          );
        }
        return reply.send({ code: "0", stored: result.stored.length, duplicates: result.duplicates });
      },
    );
  });
}
