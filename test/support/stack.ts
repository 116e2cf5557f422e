// Starts a whole talkgate stack for integration tests: the LINE emulator, a partner sink, and talkgate on a temp
// SQLite file or its own PostgreSQL database (test/support/database.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import {
  type EmulatorChannel,
  type EmulatorOptions,
  type LineEmulator,
  startLineEmulator,
} from "../../emulator/line-emulator.ts";
import { type PartnerSink, startPartnerSink } from "../../emulator/partner-sink.ts";
import type { Clock } from "../../src/app/ports.ts";
import type { Store } from "../../src/app/store.ts";
import { parseConfig, type TalkgateConfig } from "../../src/config/config.ts";
import { startTalkgate, type Talkgate } from "../../src/main.ts";
import { testDatabaseUrl } from "./database.ts";

export const SENDER_KEY = "1656168303";
export const CHANNEL_SECRET = "test-channel-secret";
export const ACCESS_TOKEN = "test-channel-access-token";
export const SIGNING_SECRET = "whsec_dGVzdC1zaWduaW5nLXNlY3JldC0wMTIzNDU2Nzg5";
export const API_KEY = "test-partner-api-key-0001";
/** A second partner with its own channel, for key-scoping tests. */
export const OTHER_API_KEY = "other-partner-api-key-0002";
export const OTHER_SENDER_KEY = "2000000002";

export interface StackOptions {
  forwardEventTypes?: string[];
  /** Extra top-level configuration (delivery, profiles, longText…), merged over the test defaults. */
  config?: Record<string, unknown>;
  /** Overrides of the partner's configuration (e.g. `allowPrivateNetwork: false`). */
  partner?: Record<string, unknown>;
  /** Reuse this data directory (to restart on the same database). */
  dir?: string;
  /** Settings of the `line` section (e.g. `timeoutMs`, or `apiBaseUrl` to point talkgate elsewhere),
   * merged over the emulator's URLs. */
  line?: Record<string, unknown>;
  /** Options of the LINE emulator (e.g. `replyTokenTtlMs`), its channels excepted. */
  emulator?: Omit<EmulatorOptions, "channels">;
  /** The clock talkgate runs on (default: the system clock); the emulator and sink keep real time. */
  clock?: Clock;
  /** Opens the store talkgate uses, at each (re)start, instead of talkgate opening its database itself. */
  openStore?: (config: TalkgateConfig) => Store;
  /** Where talkgate logs (default: silent, or the level in TALKGATE_TEST_LOG). */
  logger?: Logger;
  /** More channels of the signing partner, known to the emulator too (each with its own secret and token). */
  moreChannels?: string[];
  /** The environment the configuration reads secrets from (TALKGATE_SECRET_KEY…). */
  env?: NodeJS.ProcessEnv;
  /** The main channel's `accessToken` (SPEC §11) instead of its static `channelAccessToken`. */
  accessToken?: Record<string, unknown>;
  /** More of the main channel's settings at the emulator (e.g. `assertionKeys`). */
  emulatorChannel?: Partial<EmulatorChannel>;
  /** Channels only the emulator knows (for channels made through the admin API). */
  emulatorChannels?: EmulatorChannel[];
}

/** The secret and token of a channel added with {@link StackOptions.moreChannels}. */
export function channelSecrets(senderKey: string) {
  return { channelSecret: `secret-of-${senderKey}`, accessToken: `token-of-${senderKey}` };
}

export interface Stack {
  emulator: LineEmulator;
  sink: PartnerSink;
  talkgate: Talkgate;
  config: TalkgateConfig;
  dir: string;
  /** Stops talkgate only (the emulator and sink keep running), to restart it with {@link restart}. */
  stopTalkgate(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** The raw configuration object for a stack whose LINE is `emulatorUrl` and partner is `sinkUrl`. */
export function stackConfig(emulatorUrl: string, sinkUrl: string, options: StackOptions = {}) {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    database: "sqlite:./talkgate.db",
    mediaDir: "./media",
    line: { apiBaseUrl: emulatorUrl, dataApiBaseUrl: emulatorUrl, ...options.line },
    logLevel: "silent",
    delivery: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 100 },
    profiles: { waitMs: 500 },
    ...options.config,
    media: {
      // A little free disk is enough here, whatever machine the tests run on.
      minFreeBytes: 1024 * 1024,
      ...((options.config?.media as object | undefined) ?? {
        initialBackoffMs: 50,
        maxBackoffMs: 200,
        pollMs: 100,
      }),
    },
    partners: [
      {
        id: "partner",
        receiveUrl: `${sinkUrl}/line`,
        apiKeys: [API_KEY],
        signingSecret: SIGNING_SECRET,
        allowPrivateNetwork: true,
        ...options.partner,
      },
      { id: "other", receiveUrl: `${sinkUrl}/other`, apiKeys: [OTHER_API_KEY], allowPrivateNetwork: true },
    ],
    channels: [
      {
        senderKey: SENDER_KEY,
        channelSecret: CHANNEL_SECRET,
        ...(options.accessToken
          ? { accessToken: options.accessToken }
          : { channelAccessToken: ACCESS_TOKEN }),
        partner: "partner",
        ...(options.forwardEventTypes ? { forwardEventTypes: options.forwardEventTypes } : {}),
      },
      { senderKey: OTHER_SENDER_KEY, channelSecret: "other-channel-secret", partner: "other" },
      ...(options.moreChannels ?? []).map((senderKey) => {
        const { channelSecret, accessToken } = channelSecrets(senderKey);
        return { senderKey, channelSecret, channelAccessToken: accessToken, partner: "partner" };
      }),
    ],
  };
}

/** Starts emulator, sink and talkgate; `close()` stops them all and removes the data directory. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "talkgate-test-"));
  const emulator = await startLineEmulator({
    ...options.emulator,
    channels: [
      {
        channelId: SENDER_KEY,
        channelSecret: CHANNEL_SECRET,
        accessToken: ACCESS_TOKEN,
        ...options.emulatorChannel,
      },
      ...(options.moreChannels ?? []).map((channelId) => ({ channelId, ...channelSecrets(channelId) })),
      ...(options.emulatorChannels ?? []),
    ],
  });
  const sink = await startPartnerSink({ signingSecret: SIGNING_SECRET });
  const raw = stackConfig(emulator.url, sink.url, options);
  if (options.config?.database === undefined) raw.database = await testDatabaseUrl(dir);
  const config = parseConfig(raw, { baseDir: dir, env: options.env ?? {} });
  const logger = options.logger ?? pino({ level: process.env.TALKGATE_TEST_LOG ?? "silent" });
  const launch = () =>
    startTalkgate(config, { logger, clock: options.clock, store: options.openStore?.(config) });

  let talkgate = await launch();
  const pointEmulator = () => {
    for (const senderKey of [SENDER_KEY, ...(options.moreChannels ?? [])])
      emulator.setWebhookUrl(senderKey, `${talkgate.url}/line/webhook/${senderKey}`);
  };
  pointEmulator();
  let running = true;

  const stack: Stack = {
    emulator,
    sink,
    get talkgate() {
      return talkgate;
    },
    config,
    dir,
    async stopTalkgate() {
      if (running) await talkgate.close();
      running = false;
    },
    async restart() {
      await stack.stopTalkgate();
      talkgate = await launch();
      running = true;
      pointEmulator();
    },
    async close() {
      await stack.stopTalkgate();
      await emulator.close();
      await sink.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
      // Every delivery to the signing partner verifies with the standardwebhooks library, as partners
      // check it (a simulated clock makes timestamps that a real partner would refuse as stale).
      if (!options.clock) {
        const unverified = sink.received.filter(
          (r) => r.path.startsWith("/line/") && r.signatureValid !== true,
        );
        assert.deepEqual(
          unverified.map((r) => `${String(r.headers["webhook-id"])}: ${r.signatureError}`),
          [],
          "deliveries whose Standard Webhooks signature did not verify",
        );
      }
    },
  };
  return stack;
}

/** The SQLite file of a configuration (the tests that read it run on SQLite). */
export function sqlitePath(config: TalkgateConfig): string {
  if (config.database.kind !== "sqlite")
    throw new Error("this test reads the SQLite file: it needs database sqlite:…");
  return config.database.path;
}
