// The composition root: builds every adapter from the configuration, wires the use cases, starts and stops them.
import { readFileSync } from "node:fs";
import pino, { type Logger } from "pino";
import { DeliveryWorker } from "./app/deliver-outbox.ts";
import { MediaWorker } from "./app/fetch-media.ts";
import type { IntakeChannel } from "./app/ingest-webhook.ts";
import { IntakeLoad } from "./app/intake-load.ts";
import { type Clock, type Store, systemClock } from "./app/ports.ts";
import { UserNames } from "./app/user-names.ts";
import type { TalkgateConfig } from "./config/config.ts";
import type { RetryPolicy } from "./core/retry-policy.ts";
import { buildHttpServer } from "./http/http-server.ts";
import { PartnerKeys } from "./http/partner-auth.ts";
import { LineClient } from "./line/line-client.ts";
import { DiskMediaFiles } from "./media/disk-media-files.ts";
import { PrometheusMetrics } from "./metrics/prometheus-metrics.ts";
import { HttpPartnerTransport } from "./partner/http-partner-transport.ts";
import { openThreadedSqliteStore } from "./store/sqlite/threaded-store.ts";

/** talkgate's version (package.json). */
export const TALKGATE_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** A running talkgate. */
export interface Talkgate {
  /** The origin it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Stops taking webhooks, lets deliveries in flight finish, closes the store. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  clock?: Clock;
  /** Use this store instead of opening `config.database` (tests: fault injection); talkgate closes it. */
  store?: Store;
  /**
   * Called when talkgate cannot go on (its store thread has died); it is logged first. What was accepted is
   * stored: the command line exits, for the supervisor to restart it.
   */
  onFatal?: (error: Error) => void;
}

/** How long deliveries keep making way for intake after it was last busy (see delivery.intakeBusyAt). */
const INTAKE_BUSY_HOLD_MS = 1_000;

/** Creates the logger talkgate uses: JSON lines on stdout, secrets and message text never passed to it. */
export function createLogger(level: string): Logger {
  // Lines are written 4 KiB at a time, and at least every 100 ms: far fewer writes under load.
  return pino(
    { level, base: { service: "talkgate" } },
    pino.destination({ sync: false, minLength: 4096, periodicFlush: 100 }),
  );
}

/** Starts talkgate: store, HTTP server (webhooks, partner API), delivery and media workers. */
export async function startTalkgate(config: TalkgateConfig, options: StartOptions = {}): Promise<Talkgate> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const store =
    options.store ??
    (await openThreadedSqliteStore(config.database.path, (error) => {
      logger.fatal({ err: error }, "store:stopped");
      logger.flush(() => options.onFatal?.(error));
    }));
  const metrics = new PrometheusMetrics(store, clock);

  const line = new LineClient(
    config.channels.flatMap((c) =>
      c.channelAccessToken ? [{ senderKey: c.senderKey, channelAccessToken: c.channelAccessToken }] : [],
    ),
    {
      ...config.line,
      contentTimeoutMs: config.media.timeoutMs,
      onCall: (endpoint, status) => metrics.lineCall(endpoint, status),
    },
  );
  const files = new DiskMediaFiles(config.mediaDir);
  const userNames = new UserNames(line, clock, config.profiles);
  const transport = new HttpPartnerTransport(config.partners, {
    timeoutMs: config.delivery.timeoutMs,
    clock,
  });
  const intakeLoad = new IntakeLoad({
    busyAt: config.delivery.intakeBusyAt,
    holdMs: INTAKE_BUSY_HOLD_MS,
    clock,
  });
  const worker = new DeliveryWorker(
    { store, intake: intakeLoad, transport, userNames, clock, logger, metrics },
    {
      ...config.delivery,
      retry: retryPolicy(config.delivery),
      pause: {
        failuresToPause: config.delivery.pauseAfterFailures,
        initialPauseMs: config.delivery.pauseInitialMs,
        maxPauseMs: config.delivery.pauseMaxMs,
      },
      longText: config.longText,
    },
  );
  const media = new MediaWorker(
    { store, line, files, clock, logger, metrics, onSettled: () => worker.wake() },
    { ...config.media, retry: retryPolicy(config.media) },
  );

  const channels = new Map<string, IntakeChannel>(
    config.channels.map((c) => [
      c.senderKey,
      {
        senderKey: c.senderKey,
        channelSecret: c.channelSecret,
        partnerId: c.partner,
        forwardEventTypes: new Set(c.forwardEventTypes),
      },
    ]),
  );
  const app = buildHttpServer({
    version: TALKGATE_VERSION,
    metrics,
    logger,
    store,
    webhookBodyLimit: config.webhook.bodyLimitBytes,
    partnerApi: {
      keys: new PartnerKeys(config.partners, config.channels),
      store,
      files,
      line,
      clock,
      send: { store, line, clock, options: config.send },
      publicBaseUrl: config.publicBaseUrl,
      limits: config.partnerApi,
      metrics,
      afterReplay: () => worker.wake(),
    },
    intake: {
      store,
      load: intakeLoad,
      clock,
      mediaWaitMs: config.media.relayWaitMs,
      findChannel: (senderKey) => channels.get(senderKey),
      afterStored(senderKey, result) {
        for (const event of result.stored) {
          // Start the profile lookup now so the name is ready when the payload is built.
          const { sender } = event.facts;
          if (event.forward && sender) userNames.prefetch(senderKey, sender.chat, sender.userId);
        }
        for (const path of result.unsentFiles) {
          files.remove(path).catch((error: unknown) => logger.error({ err: error }, "media:remove:failed"));
        }
        if (result.stored.length > 0) worker.wake();
        if (result.stored.some((event) => event.fetchesMedia)) media.wake();
      },
    },
  });

  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (error) {
    await store.close();
    throw error;
  }
  worker.start();
  media.start();
  // Uploads (POST /line/media) must outlive LINE's late loading of them, then make room.
  const pruneUploads = () =>
    files
      .prune("uploads", clock.now() - config.media.uploadRetentionMs)
      .then((removed) => removed > 0 && logger.info({ removed }, "upload:pruned"))
      .catch((error: unknown) => logger.error({ err: error }, "upload:prune:failed"));
  void pruneUploads();
  const pruning = setInterval(pruneUploads, 60 * 60_000).unref();
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  const host =
    config.listen.host === "0.0.0.0" || config.listen.host === "::" ? "127.0.0.1" : config.listen.host;
  logger.info({ port, database: "sqlite", channels: config.channels.length }, "talkgate:ready");

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    async close() {
      clearInterval(pruning);
      // Keep-alive connections that go idle while closing would hold the server open (Fastify keeps
      // them 72 s): close them as they go idle, and all of them after a bound.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => app.server.closeAllConnections(), 10_000);
      try {
        await Promise.all([app.close(), worker.stop(), media.stop()]);
      } finally {
        clearInterval(sweep);
        clearTimeout(deadline);
      }
      await Promise.all([transport.close(), line.close()]);
      await store.close();
      logger.info("talkgate:stopped");
      logger.flush();
    },
  };
}

// The retry policy of a configuration section with initialBackoffMs, maxBackoffMs and maxAgeMs.
function retryPolicy(section: {
  initialBackoffMs: number;
  maxBackoffMs: number;
  maxAgeMs: number;
}): RetryPolicy {
  return {
    initialDelayMs: section.initialBackoffMs,
    maxDelayMs: section.maxBackoffMs,
    maxAgeMs: section.maxAgeMs,
  };
}
