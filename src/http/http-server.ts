// The HTTP server: Fastify with talkgate's routes and its one error handler.
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from "fastify";
import type { Logger } from "pino";
import type { IngestDeps } from "../app/ingest-webhook.ts";
import type { Store } from "../app/store.ts";
import type { PrometheusMetrics } from "../metrics/prometheus-metrics.ts";
import { type AdminApiDeps, registerAdminRoutes } from "./admin-routes.ts";
import { installBodyLimits } from "./body-limit.ts";
import { registerConsoleRoutes } from "./console-routes.ts";
import { installErrorHandling, toTalkgateError } from "./error-handler.ts";
import { registerHealthRoutes } from "./health-routes.ts";
import { registerOpenApi } from "./openapi.ts";
import { type PartnerApiDeps, registerPartnerRoutes } from "./partner-routes.ts";
import { AJV_OPTIONS, formatSchemaErrors } from "./validation.ts";
import { registerWebhookRoute } from "./webhook-route.ts";

export interface HttpDeps {
  logger: Logger;
  store: Store;
  intake: IngestDeps;
  webhookBodyLimit: number;
  partnerApi: PartnerApiDeps;
  metrics: PrometheusMetrics;
  /** talkgate's version, shown in the OpenAPI document. */
  version: string;
  admin: Omit<AdminApiDeps, "version">;
}

/** Builds (without listening) the Fastify app serving every talkgate route. */
export function buildHttpServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One log line per event is written by the routes themselves; per-request lines would double it.
    logController: new LogController({ disableRequestLogging: true }),
    // LINE waits 2 s; nothing talkgate answers needs longer.
    connectionTimeout: 30_000,
    return503OnClosing: true,
    // JSON bodies of the partner API; webhooks and uploads set their own limits.
    bodyLimit: deps.partnerApi.limits.bodyLimitBytes,
    ajv: AJV_OPTIONS,
    schemaErrorFormatter: formatSchemaErrors,
    // Errors Fastify meets before routing (a URL it cannot decode…) answer in talkgate's shape too.
    frameworkErrors: (error, _request, reply) => {
      const answer = toTalkgateError(error);
      void (reply as FastifyReply).status(answer.status).send({ code: answer.code, message: answer.message });
    },
    // Requests Node's HTTP parser refuses (headers too large, malformed) never reach Fastify.
    clientErrorHandler: (error, socket) => {
      const status = (error as { code?: string }).code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
      const body = JSON.stringify({
        code: "-405",
        message: `request refused by the HTTP parser (${status})`,
      });
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\n` +
            `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      } else {
        socket.destroy(error);
      }
    },
  });
  installErrorHandling(app);
  installBodyLimits(app);
  registerOpenApi(app, deps.version);
  registerWebhookRoute(app, deps.intake, { bodyLimit: deps.webhookBodyLimit, metrics: deps.metrics });
  registerHealthRoutes(app, deps.store);
  app.get("/metrics", async (_request, reply) =>
    reply
      .header("content-type", deps.metrics.registry.contentType)
      .send(await deps.metrics.registry.metrics()),
  );
  registerPartnerRoutes(app, deps.partnerApi);
  registerAdminRoutes(app, { ...deps.admin, version: deps.version });
  registerConsoleRoutes(app);
  return app;
}
