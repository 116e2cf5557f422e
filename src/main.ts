// The composition root: the store, the workers (delivery, attachments) and the HTTP side (webhook intake, partner
// API), wired from the configuration, started and stopped.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import pino, { type Logger } from "pino";
import { DeliveryWorker } from "./app/deliver-outbox.ts";
import { MediaWorker } from "./app/fetch-media.ts";
import type { IntakeChannel } from "./app/ingest-webhook.ts";
import { ManageConfig, signingSecretId } from "./app/manage-config.ts";
import { OperatorAccess } from "./app/operator-access.ts";
import { type Clock, type MediaFiles, type Metrics, systemClock } from "./app/ports.ts";
import { PurgeExpired } from "./app/purge-expired.ts";
import { ChannelTokenManager, type TokenChannelConfig } from "./app/renew-channel-tokens.ts";
import {
  type Channel,
  type ConfigSnapshot,
  type Partner,
  type PartnerKey,
  RuntimeConfig,
  type RuntimeConfigOptions,
} from "./app/runtime-config.ts";
import type { Store } from "./app/store.ts";
import { UserNames } from "./app/user-names.ts";
import type { TalkgateConfig } from "./config/config.ts";
import { tokenDigest, tokenId } from "./core/credentials.ts";
import { DeliveryPace } from "./core/delivery-pace.ts";
import type { RetryPolicy } from "./core/retry-policy.ts";
import { SecretBox } from "./core/secret-box.ts";
import { buildHttpServer } from "./http/http-server.ts";
import { PartnerKeys } from "./http/partner-auth.ts";
import { LineClient } from "./line/line-client.ts";
import { LineTokenClient } from "./line/line-token-client.ts";
import { DiskMediaFiles } from "./media/disk-media-files.ts";
import { PrometheusMetrics } from "./metrics/prometheus-metrics.ts";
import { HttpPartnerTransport } from "./partner/http-partner-transport.ts";
import { openStore } from "./store/open-store.ts";

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
   * Origins whose plain http:// media URLs partners may send: `talkgate dev`'s own uploads, for its LINE
   * emulator. Not a configuration setting, so that no production configuration can turn it on.
   */
  httpMediaOrigins?: readonly string[];
}

/** Creates the logger talkgate uses: JSON lines on stdout, secrets and message text never passed to it. */
export function createLogger(level: string): Logger {
  // Lines are written 4 KiB at a time, and at least every 100 ms: far fewer writes under load.
  return pino(
    { level, base: { service: "talkgate" } },
    pino.destination({ sync: false, minLength: 4096, periodicFlush: 100 }),
  );
}

/** How often the delivery pace looks at intake's commit latency again. */
const PACE_WINDOW_MS = 100;

/** Starts talkgate: the store, the delivery and media workers, and the HTTP server. */
export async function startTalkgate(config: TalkgateConfig, options: StartOptions = {}): Promise<Talkgate> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const { store, files } = options.store
    ? { store: options.store, files: new DiskMediaFiles(config.mediaDir) }
    : await openStore(config, logger);
  let runtime: RuntimeConfig;
  try {
    runtime = await RuntimeConfig.open({
      file: fileEntries(config),
      store,
      box: config.secretKeys.current
        ? new SecretBox(config.secretKeys.current, config.secretKeys.previous)
        : null,
      clock,
      logger,
      pollMs: config.admin.configPollMs,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  const metrics = new PrometheusMetrics({
    store,
    clock,
    isChannel: (senderKey) => runtime.snapshot.channels.has(senderKey),
    partners: () => [...runtime.snapshot.partners.keys()],
    // Read at scrape time, once the workers below run.
    partnerState: (partnerId) => workers.delivery.partnerState(partnerId),
    freeBytes: {
      media: () => files.freeBytes(),
      database: async () => {
        // A PostgreSQL server's disk is its own: not seen from here.
        if (config.database.kind !== "sqlite") return Number.POSITIVE_INFINITY;
        const volume = await statfs(dirname(config.database.path));
        return volume.bavail * volume.bsize;
      },
    },
    tokenExpiries: () => tokens.expiries(),
  });
  const onCall = (endpoint: string, status: number | null) => metrics.lineCall(endpoint, status);
  const tokens = new ChannelTokenManager(
    {
      store,
      line: new LineTokenClient({ ...config.line, onCall }),
      box: runtime.box,
      clock,
      logger,
      onRenewalFailed: (senderKey) => metrics.tokenRenewalFailed(senderKey),
      owner: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    },
    { ...config.tokens, waitMs: config.line.timeoutMs },
  );
  try {
    await tokens.start(tokenChannels(runtime.snapshot));
  } catch (error) {
    await runtime.close();
    await store.close();
    throw error;
  }
  const line = new LineClient(tokens, { ...config.line, contentTimeoutMs: config.media.timeoutMs, onCall });
  const names = new UserNames(line, clock, config.profiles);
  const workers = startWorkers(config, { store, runtime, line, files, names, clock, logger, metrics });
  const onKeyUsed = (keyId: string) => runtime.noteKeyUsed(keyId);
  let keys = PartnerKeys.fromSnapshot(runtime.snapshot, onKeyUsed);
  let intakeChannels = intakeChannelsOf(runtime);
  // A change made on any instance reaches this one within admin.configPollMs.
  runtime.onChange((snapshot) => {
    tokens.setChannels(tokenChannels(snapshot));
    workers.transport.setPartners(partnerEndpoints(snapshot));
    keys = PartnerKeys.fromSnapshot(snapshot, onKeyUsed);
    intakeChannels = intakeChannelsOf(runtime);
  });
  const erase = { store, files, names, clock, logger };
  const app = buildHttpServer({
    version: TALKGATE_VERSION,
    metrics,
    logger,
    store,
    webhookBodyLimit: config.webhook.bodyLimitBytes,
    partnerApi: {
      keys: { authenticate: (authorization) => keys.authenticate(authorization) },
      store,
      files,
      line,
      clock,
      send: {
        store,
        line,
        clock,
        metrics,
        options: config.send,
        httpMediaOrigins: options.httpMediaOrigins ?? [],
      },
      publicBaseUrl: config.publicBaseUrl,
      erase,
      uploads: {
        quotaBytes: config.media.uploadQuotaBytes,
        quotaFiles: config.media.uploadQuotaFiles,
        retentionMs: config.media.uploadRetentionMs,
        minFreeBytes: config.media.minFreeBytes,
      },
      limits: config.partnerApi,
      partnerState: (partnerId) => workers.delivery.partnerState(partnerId),
      metrics,
    },
    admin: {
      access: new OperatorAccess(store, clock, { operators: config.operators, ...config.admin }),
      manage: new ManageConfig({ store, runtime, clock }),
      runtime,
      store,
      line,
      tokens,
      partnerState: (partnerId) => workers.delivery.partnerState(partnerId),
      erase,
      now: () => clock.now(),
      database: config.database.kind,
      secureCookies: config.publicBaseUrl.startsWith("https:"),
    },
    intake: {
      events: store,
      clock,
      mediaWaitMs: config.media.relayWaitMs,
      commitDeadlineMs: config.webhook.commitDeadlineMs,
      findChannel: (senderKey) => intakeChannels.get(senderKey),
      names,
      files,
      pace: workers.pace,
      metrics,
      logger,
    },
  });

  const closeBackend = async () => {
    await workers.stop();
    await tokens.close();
    await runtime.close();
    await workers.transport.close();
    await store.close();
  };
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (error) {
    await closeBackend();
    throw error;
  }
  // Waiting work from an earlier run is taken up at once.
  workers.delivery.start();
  workers.media.start();
  // Uploads (POST /line/media) must outlive LINE's late loading of them, then make room.
  const pruneUploads = async () => {
    const before = clock.now() - config.media.uploadRetentionMs;
    try {
      const removed = await files.prune("uploads", before);
      await store.forgetUploads(before);
      if (removed > 0) logger.info({ removed }, "upload:pruned");
    } catch (error) {
      logger.error({ err: error }, "upload:prune:failed");
    }
  };
  void pruneUploads();
  const pruning = setInterval(pruneUploads, 60 * 60_000).unref();
  // What is older than retention.* is deleted (SPEC §12).
  const purge = new PurgeExpired(
    { store, files, clock, logger, onPurged: (kind, count) => metrics.retentionPurged(kind, count) },
    config.retention,
  );
  purge.start();
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  const host =
    config.listen.host === "0.0.0.0" || config.listen.host === "::" ? "127.0.0.1" : config.listen.host;
  logger.info(
    { port, database: config.database.kind, channels: runtime.snapshot.channels.size },
    "talkgate:ready",
  );

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    async close() {
      clearInterval(pruning);
      await purge.close();
      // Keep-alive connections that go idle while closing would hold the server open (Fastify keeps
      // them 72 s): close them as they go idle, and all of them after a bound.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => app.server.closeAllConnections(), 10_000);
      try {
        // Deliveries and downloads in flight finish and are recorded meanwhile.
        await Promise.all([app.close(), workers.stop()]);
      } finally {
        clearInterval(sweep);
        clearTimeout(deadline);
      }
      await Promise.all([closeBackend(), line.close()]);
      logger.info("talkgate:stopped");
      logger.flush();
    },
  };
}

/** The delivery and media workers (not started), woken by the store's work signals. */
function startWorkers(
  config: TalkgateConfig,
  deps: {
    store: Store;
    runtime: RuntimeConfig;
    line: LineClient;
    files: MediaFiles;
    names: UserNames;
    clock: Clock;
    logger: Logger;
    metrics: Metrics;
  },
) {
  const { store, line, files, clock, logger, metrics } = deps;
  let loop = performance.eventLoopUtilization();
  const pace = new DeliveryPace({
    max: config.delivery.concurrency,
    targetMs: config.delivery.intakeLatencyTargetMs,
    windowMs: PACE_WINDOW_MS,
    loopBusy: () => {
      const since = performance.eventLoopUtilization(loop);
      loop = performance.eventLoopUtilization();
      return since.utilization;
    },
  });
  const transport = new HttpPartnerTransport(partnerEndpoints(deps.runtime.snapshot), {
    timeoutMs: config.delivery.timeoutMs,
    clock,
  });
  const delivery = new DeliveryWorker(
    { outbox: store, pace, transport, userNames: deps.names, clock, logger, metrics },
    {
      ...config.delivery,
      retry: retryPolicy(config.delivery),
      pause: {
        failuresToPause: config.delivery.pauseAfterFailures,
        initialPauseMs: config.delivery.pauseInitialMs,
        maxPauseMs: config.delivery.pauseMaxMs,
      },
      longText: config.longText,
      partner: (partnerId) => deps.runtime.snapshot.partners.get(partnerId),
    },
  );
  const media = new MediaWorker(
    { jobs: store, line, files, clock, logger, metrics },
    { ...config.media, retry: retryPolicy(config.media) },
  );
  store.onWork("delivery", () => delivery.wake());
  store.onWork("media", () => media.wake());
  return {
    pace,
    transport,
    delivery,
    media,
    /** Stops claiming; attempts and downloads in flight finish and are recorded. */
    stop: () => Promise.all([delivery.stop(), media.stop()]).then(() => undefined),
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

// The configuration file's partners, channels and keys, as the runtime configuration holds them (read-only).
function fileEntries(config: TalkgateConfig): RuntimeConfigOptions["file"] {
  const partners = config.partners.map(
    (p): Partner => ({
      id: p.id,
      receiveUrl: p.receiveUrl,
      signingSecrets: p.signingSecret
        ? [{ id: signingSecretId(p.signingSecret), secret: p.signingSecret, addedAt: 0 }]
        : [],
      allowPrivateNetwork: p.allowPrivateNetwork,
      allowWebhookEndpointChange: p.allowWebhookEndpointChange,
      lineEventFields: p.lineEventFields,
      disabled: false,
      managedBy: "file",
      createdAt: null,
      updatedAt: null,
    }),
  );
  const channels = config.channels.map(
    (c): Channel => ({ ...c, disabled: false, managedBy: "file", createdAt: null, updatedAt: null }),
  );
  const keys = config.partners.flatMap((p) =>
    p.apiKeys.map(
      (key): PartnerKey => ({
        id: tokenId(key),
        partnerId: p.id,
        name: "configuration file",
        digest: tokenDigest(key),
        managedBy: "file",
        createdAt: null,
        lastUsedAt: null,
      }),
    ),
  );
  return { partners, channels, keys };
}

function partnerEndpoints(snapshot: ConfigSnapshot) {
  return [...snapshot.partners.values()].map((p) => ({
    ...p,
    signingSecrets: p.signingSecrets.map((s) => s.secret),
  }));
}

function tokenChannels(snapshot: ConfigSnapshot): TokenChannelConfig[] {
  return [...snapshot.channels.values()];
}

// The channels whose webhooks are taken now (active ones), as intake sees them.
function intakeChannelsOf(runtime: RuntimeConfig): Map<string, IntakeChannel> {
  const channels = new Map<string, IntakeChannel>();
  for (const senderKey of runtime.snapshot.channels.keys()) {
    const channel = runtime.activeChannel(senderKey);
    if (!channel) continue;
    channels.set(senderKey, {
      senderKey,
      channelSecret: channel.channelSecret,
      partnerId: channel.partner,
      forwardEventTypes: new Set(channel.forwardEventTypes),
    });
  }
  return channels;
}
