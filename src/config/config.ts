// talkgate's configuration (SPEC §7): read once from one JSON file plus secrets from the environment, validated once, frozen.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Static, Type } from "@sinclair/typebox";
import { Errors, type ValueError } from "@sinclair/typebox/errors";
import { type AccessTokenCredential, isManaged, readAccessToken } from "../core/access-token.ts";
import { passwordHashProblem } from "../core/credentials.ts";
import { httpUrlProblem } from "../core/http-url.ts";
import { DEFAULT_FORWARD_EVENT_TYPES, FORWARDABLE_EVENT_TYPES } from "../core/partner-payload.ts";
import { shortestLeaseMs } from "../core/retry-policy.ts";
import { parseSecretKey, type SecretKey } from "../core/secret-box.ts";
import { signingSecretProblem } from "../core/signature.ts";

/** Every default in one place; each can be overridden in the file. */
/** `delivery.intakeLatencyTargetMs` on PostgreSQL unless the configuration sets it. */
export const POSTGRES_INTAKE_LATENCY_TARGET_MS = 250;

/** What partner ids, channel sender keys and operator names look like (the admin API checks the same). */
export const PARTNER_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";
export const SENDER_KEY_PATTERN = "^[A-Za-z0-9_-]{1,64}$";
export const OPERATOR_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$";

export const DEFAULTS = {
  listen: { host: "0.0.0.0", port: 8080 },
  database: "sqlite:./data/talkgate.db",
  mediaDir: "./data/media",
  line: { apiBaseUrl: "https://api.line.me", dataApiBaseUrl: "https://api-data.line.me", timeoutMs: 10_000 },
  logLevel: "info",
  webhook: { bodyLimitBytes: 2 * 1024 * 1024, commitDeadlineMs: 1_500 },
  delivery: {
    timeoutMs: 10_000,
    initialBackoffMs: 1_000,
    maxBackoffMs: 10 * 60_000,
    maxAgeMs: 24 * 60 * 60_000,
    concurrency: 64,
    partnerConcurrency: 32,
    intakeLatencyTargetMs: 25,
    batchSize: 32,
    leaseMs: 60_000,
    pollMs: 1_000,
    pauseAfterFailures: 20,
    pauseInitialMs: 5_000,
    pauseMaxMs: 10 * 60_000,
  },
  profiles: { waitMs: 1_500, ttlMs: 24 * 60 * 60_000, missTtlMs: 10 * 60_000, maxEntries: 100_000 },
  media: {
    concurrency: 4,
    relayWaitMs: 30_000,
    timeoutMs: 30_000,
    initialBackoffMs: 1_000,
    maxBackoffMs: 60_000,
    maxAgeMs: 24 * 60 * 60_000,
    leaseMs: 30 * 60_000,
    pollMs: 1_000,
    uploadRetentionMs: 14 * 24 * 60 * 60_000,
    uploadQuotaBytes: 1024 * 1024 * 1024,
    uploadQuotaFiles: 10_000,
    minFreeBytes: 256 * 1024 * 1024,
  },
  longText: { threshold: 1000, previewLength: 300 },
  send: { replyTokenMaxAgeMs: 50_000, attempts: 3, retryDelayMs: 300, staleAfterMs: 60_000 },
  postgres: { poolSize: 10, connectTimeoutMs: 5_000, statementTimeoutMs: 5_000 },
  admin: {
    sessionTtlMs: 12 * 60 * 60_000,
    configPollMs: 1_000,
    signInMaxFailures: 5,
    signInWindowMs: 15 * 60_000,
  },
  tokens: {
    renewAfterFraction: 0.8,
    statelessRenewAfterMs: 10 * 60_000,
    leaseMs: 60_000,
    pollMs: 1_000,
    revokeAfterMs: 60_000,
  },
  retention: {
    eventsDays: 30,
    mediaDays: 30,
    auditDays: 365,
    intervalMs: 60 * 60_000,
    batchSize: 500,
  },
  partnerApi: {
    rateLimitMax: 600,
    rateLimitWindowMs: 60_000,
    bodyLimitBytes: 1024 * 1024,
    replayMax: 10_000,
    replayWindowMs: 60_000,
  },
} as const;

const PositiveInt = Type.Integer({ minimum: 1 });

// An optional section of numeric settings, each a positive integer, named as in DEFAULTS.
function tunables(defaults: Record<string, number>) {
  const fields = Object.fromEntries(Object.keys(defaults).map((key) => [key, Type.Optional(PositiveInt)]));
  return Type.Optional(Type.Object(fields, { additionalProperties: false }));
}

const FileSchema = Type.Object(
  {
    listen: Type.Optional(
      Type.Object(
        {
          host: Type.Optional(Type.String({ minLength: 1 })),
          port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
        },
        { additionalProperties: false },
      ),
    ),
    publicBaseUrl: Type.Optional(Type.String()),
    database: Type.Optional(Type.String({ minLength: 1 })),
    mediaDir: Type.Optional(Type.String({ minLength: 1 })),
    mediaDirShared: Type.Optional(Type.Boolean()),
    line: Type.Optional(
      Type.Object(
        {
          apiBaseUrl: Type.Optional(Type.String()),
          dataApiBaseUrl: Type.Optional(Type.String()),
          timeoutMs: Type.Optional(PositiveInt),
        },
        { additionalProperties: false },
      ),
    ),
    logLevel: Type.Optional(
      Type.Union(["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l))),
    ),
    webhook: tunables(DEFAULTS.webhook),
    delivery: tunables(DEFAULTS.delivery),
    media: tunables(DEFAULTS.media),
    profiles: tunables(DEFAULTS.profiles),
    longText: tunables(DEFAULTS.longText),
    send: tunables(DEFAULTS.send),
    partnerApi: tunables(DEFAULTS.partnerApi),
    postgres: tunables(DEFAULTS.postgres),
    admin: tunables(DEFAULTS.admin),
    retention: tunables(DEFAULTS.retention),
    tokens: Type.Optional(
      Type.Object(
        {
          renewAfterFraction: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 0.95 })),
          statelessRenewAfterMs: Type.Optional(PositiveInt),
          leaseMs: Type.Optional(PositiveInt),
          pollMs: Type.Optional(PositiveInt),
          revokeAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    operators: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ pattern: OPERATOR_NAME_PATTERN }),
            role: Type.Union([Type.Literal("admin"), Type.Literal("viewer")]),
            passwordHash: Type.Optional(Type.String({ minLength: 1 })),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    partners: Type.Array(
      Type.Object(
        {
          id: Type.String({ pattern: PARTNER_ID_PATTERN }),
          receiveUrl: Type.String(),
          apiKeys: Type.Optional(Type.Array(Type.String({ minLength: 16 }))),
          signingSecret: Type.Optional(Type.String({ minLength: 1 })),
          allowPrivateNetwork: Type.Optional(Type.Boolean()),
          allowWebhookEndpointChange: Type.Optional(Type.Boolean()),
          lineEventFields: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    channels: Type.Array(
      Type.Object(
        {
          senderKey: Type.String({ pattern: SENDER_KEY_PATTERN }),
          channelSecret: Type.Optional(Type.String({ minLength: 1 })),
          channelAccessToken: Type.Optional(Type.String({ minLength: 1 })),
          // Checked by readAccessToken, which names each field of each type.
          accessToken: Type.Optional(Type.Unknown()),
          partner: Type.String({ minLength: 1 }),
          forwardEventTypes: Type.Optional(
            Type.Array(Type.Union(FORWARDABLE_EVENT_TYPES.map((t) => Type.Literal(t)))),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

type ConfigFile = Static<typeof FileSchema>;

export interface PartnerConfig {
  id: string;
  receiveUrl: string;
  apiKeys: readonly string[];
  signingSecret: string | undefined;
  allowPrivateNetwork: boolean;
  /** May its keys repoint a channel's webhook URL at LINE (POST /line/channel/webhook/endpoint/set)? */
  allowWebhookEndpointChange: boolean;
  /** Do its payloads carry LINE's own event fields (line_timestamp, webhook_event_id, is_redelivery)? */
  lineEventFields: boolean;
}

/** A person who runs talkgate (SPEC §10): admins change things, viewers look. */
export interface OperatorConfig {
  name: string;
  role: "admin" | "viewer";
  passwordHash: string;
}

export interface ChannelConfig {
  senderKey: string;
  channelSecret: string;
  /** A static token, or how talkgate issues its own (SPEC §11). */
  accessToken: AccessTokenCredential | undefined;
  partner: string;
  forwardEventTypes: readonly string[];
}

/** The validated configuration, every default filled in and every path absolute. */
export interface TalkgateConfig {
  listen: { host: string; port: number };
  publicBaseUrl: string;
  /** `sqlite:<path>` (one process), or `postgres://…` (any number of instances). */
  database: { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };
  /**
   * With PostgreSQL: `mediaDir` is storage every instance shares (attachments and uploads go there);
   * otherwise their bytes are kept in the database.
   */
  mediaDirShared: boolean;
  postgres: { [K in keyof typeof DEFAULTS.postgres]: number };
  mediaDir: string;
  line: { apiBaseUrl: string; dataApiBaseUrl: string; timeoutMs: number };
  logLevel: string;
  webhook: { bodyLimitBytes: number; commitDeadlineMs: number };
  delivery: { [K in keyof typeof DEFAULTS.delivery]: number };
  profiles: { [K in keyof typeof DEFAULTS.profiles]: number };
  media: { [K in keyof typeof DEFAULTS.media]: number };
  longText: { threshold: number; previewLength: number };
  send: { [K in keyof typeof DEFAULTS.send]: number };
  partnerApi: { [K in keyof typeof DEFAULTS.partnerApi]: number };
  admin: { [K in keyof typeof DEFAULTS.admin]: number };
  /** When issued channel access tokens are renewed, and how instances share the work. */
  tokens: { [K in keyof typeof DEFAULTS.tokens]: number };
  /** How long personal data is kept (SPEC §12), and how the purge goes about deleting it. */
  retention: { [K in keyof typeof DEFAULTS.retention]: number };
  operators: readonly OperatorConfig[];
  /**
   * Seals the secrets of partners and channels made at runtime (TALKGATE_SECRET_KEY); `previous`
   * (TALKGATE_SECRET_KEY_PREVIOUS) still opens what it sealed, during a key rotation.
   */
  secretKeys: { current: SecretKey | null; previous: SecretKey[] };
  partners: readonly PartnerConfig[];
  channels: readonly ChannelConfig[];
}

/** Thrown when the configuration cannot be used; lists every problem found, not just the first. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: ${problems.length} configuration problem(s):\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** The environment variable name part for an id: upper case, anything but letters and digits as `_`. */
export function envName(id: string): string {
  return id.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

/** Reads, validates and freezes the configuration file at `path`; secrets may come from `env`. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): TalkgateConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [`not valid JSON: ${(error as Error).message}`]);
  }
  return parseConfig(json, { baseDir: dirname(resolve(path)), env, source: path });
}

/** Validates a parsed configuration object; relative paths are resolved against `baseDir`. */
export function parseConfig(
  json: unknown,
  options: { baseDir: string; env?: NodeJS.ProcessEnv; source?: string },
): TalkgateConfig {
  // Empty variables count as unset, so that `FOO=` cannot silently blank a secret from the file.
  const env = (name: string) => options.env?.[name] || undefined;
  const problems = [...Errors(FileSchema, json)].map(describeSchemaError);
  // Read on even when the shape is wrong, so that every problem is reported in one go; each check
  // below looks only at values of the right type (the schema has reported the others).
  const file = (isRecord(json) ? json : {}) as Partial<ConfigFile>;

  const listen = { ...DEFAULTS.listen, ...file.listen };
  const line = { ...DEFAULTS.line, ...file.line };
  checkUrl("line.apiBaseUrl", line.apiBaseUrl, problems);
  checkUrl("line.dataApiBaseUrl", line.dataApiBaseUrl, problems);
  const publicBaseUrl = file.publicBaseUrl ?? `http://127.0.0.1:${listen.port}`;
  checkUrl("publicBaseUrl", publicBaseUrl, problems);

  const databaseUrl = env("TALKGATE_DATABASE") ?? file.database ?? DEFAULTS.database;
  let database: TalkgateConfig["database"] = { kind: "sqlite", path: "" };
  if (databaseUrl.startsWith("sqlite:"))
    database = { kind: "sqlite", path: resolve(options.baseDir, databaseUrl.slice("sqlite:".length)) };
  else if (/^postgres(ql)?:\/\//.test(databaseUrl) && URL.canParse(databaseUrl))
    database = { kind: "postgres", url: databaseUrl };
  else
    problems.push(
      `database: ${JSON.stringify(redactUrl(databaseUrl))} is not supported (use sqlite:<path> or postgres://…)`,
    );

  const partners = records(file.partners).map((partner, i): PartnerConfig => {
    const prefix = `TALKGATE_PARTNER_${envName(String(partner.id))}`;
    const envKeys = env(`${prefix}_API_KEYS`);
    checkUrl(`partners[${i}].receiveUrl`, partner.receiveUrl, problems);
    const apiKeys =
      envKeys !== undefined
        ? envKeys
            .split(",")
            .map((key) => key.trim())
            .filter(Boolean)
        : [...(partner.apiKeys ?? [])];
    if (envKeys !== undefined && apiKeys.some((key) => key.length < 16)) {
      problems.push(
        `partners[${i}].apiKeys: every key in ${prefix}_API_KEYS must have at least 16 characters`,
      );
    }
    const signingSecret = env(`${prefix}_SIGNING_SECRET`) ?? partner.signingSecret;
    const secretProblem = typeof signingSecret === "string" ? signingSecretProblem(signingSecret) : null;
    if (secretProblem) {
      // The secret itself is never repeated in a message.
      problems.push(
        `partners[${i}].signingSecret: ${secretProblem} (make one with: npx talkgate secrets signing)`,
      );
    }
    return {
      id: partner.id,
      receiveUrl: partner.receiveUrl,
      apiKeys,
      signingSecret,
      allowPrivateNetwork: partner.allowPrivateNetwork ?? false,
      allowWebhookEndpointChange: partner.allowWebhookEndpointChange ?? false,
      lineEventFields: partner.lineEventFields ?? false,
    };
  });
  reportDuplicates(
    "partners[].id",
    partners.map((p) => p.id),
    problems,
  );
  reportDuplicates(
    "partners[].apiKeys (a key must belong to one partner)",
    partners.flatMap((p) => p.apiKeys),
    problems,
    true,
  );

  const channels = records(file.channels).map((channel, i): ChannelConfig => {
    const prefix = `TALKGATE_CHANNEL_${envName(String(channel.senderKey))}`;
    const channelSecret = env(`${prefix}_SECRET`) ?? channel.channelSecret;
    if (!channelSecret)
      problems.push(`channels[${i}].channelSecret: missing (set it in the file or in ${prefix}_SECRET)`);
    if (!partners.some((p) => p.id === channel.partner)) {
      problems.push(`channels[${i}].partner: no partner with id ${JSON.stringify(channel.partner)}`);
    }
    return {
      senderKey: channel.senderKey,
      channelSecret: channelSecret ?? "",
      accessToken: channelAccessToken(channel, i, prefix, env, problems),
      partner: channel.partner,
      forwardEventTypes: [...(channel.forwardEventTypes ?? DEFAULT_FORWARD_EVENT_TYPES)],
    };
  });
  reportDuplicates(
    "channels[].senderKey",
    channels.map((c) => c.senderKey),
    problems,
  );
  const delivery = {
    ...DEFAULTS.delivery,
    // A PostgreSQL commit is several round trips to another process: slower than SQLite's, and not a sign
    // that deliveries take intake's CPU.
    ...(database?.kind === "postgres" ? { intakeLatencyTargetMs: POSTGRES_INTAKE_LATENCY_TARGET_MS } : {}),
    ...file.delivery,
  };
  // An attempt must end (at its deadline at the latest) well within its conversation's lease, or another
  // worker could take the conversation while the attempt is still in flight.
  if (delivery.leaseMs < shortestLeaseMs(delivery.timeoutMs)) {
    problems.push(
      `delivery.leaseMs: ${delivery.leaseMs} is less than ${shortestLeaseMs(delivery.timeoutMs)} (twice ` +
        `delivery.timeoutMs, and at least delivery.timeoutMs + 2000); an attempt must always end within its lease`,
    );
  }
  const retention = { ...DEFAULTS.retention, ...file.retention };
  // Once each is valid, attachments may not outlive their events.
  if (!problems.some((p) => p.startsWith("retention.")) && retention.mediaDays > retention.eventsDays)
    problems.push(
      `retention.mediaDays: ${retention.mediaDays} is more than retention.eventsDays (${retention.eventsDays}); ` +
        "an attachment goes with its event at the latest",
    );
  const operators = records(file.operators).map((operator, i): OperatorConfig => {
    const variable = `TALKGATE_OPERATOR_${envName(String(operator.name))}_PASSWORD_HASH`;
    const passwordHash = env(variable) ?? operator.passwordHash;
    const problem = passwordHash
      ? passwordHashProblem(passwordHash)
      : `missing (set it in the file or in ${variable})`;
    if (problem) problems.push(`operators[${i}].passwordHash: ${problem}`);
    return { name: operator.name, role: operator.role, passwordHash: passwordHash ?? "" };
  });
  reportDuplicates(
    "operators[].name",
    operators.map((o) => o.name),
    problems,
  );
  const secretKeys: TalkgateConfig["secretKeys"] = { current: null, previous: [] };
  for (const [name, set] of [
    ["TALKGATE_SECRET_KEY", (key: SecretKey) => (secretKeys.current = key)],
    ["TALKGATE_SECRET_KEY_PREVIOUS", (key: SecretKey) => secretKeys.previous.push(key)],
  ] as const) {
    const value = env(name);
    try {
      if (value) set(parseSecretKey(name, value));
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (secretKeys.previous.length > 0 && !secretKeys.current)
    problems.push("TALKGATE_SECRET_KEY_PREVIOUS is set but TALKGATE_SECRET_KEY is not");
  if (!secretKeys.current)
    for (const [i, channel] of channels.entries())
      if (channel.accessToken && isManaged(channel.accessToken))
        problems.push(
          `channels[${i}].accessToken: talkgate stores the tokens it issues sealed, so a ${channel.accessToken.type} token needs TALKGATE_SECRET_KEY (openssl rand -base64 32)`,
        );

  if (problems.length > 0) throw new ConfigError(options.source ?? "configuration", problems);

  return deepFreeze({
    listen,
    publicBaseUrl: publicBaseUrl.replace(/\/+$/, ""),
    database,
    mediaDirShared: file.mediaDirShared ?? false,
    postgres: { ...DEFAULTS.postgres, ...file.postgres },
    mediaDir: resolve(options.baseDir, file.mediaDir ?? DEFAULTS.mediaDir),
    line,
    logLevel: file.logLevel ?? DEFAULTS.logLevel,
    webhook: { ...DEFAULTS.webhook, ...file.webhook },
    delivery,
    profiles: { ...DEFAULTS.profiles, ...file.profiles },
    media: { ...DEFAULTS.media, ...file.media },
    longText: { ...DEFAULTS.longText, ...file.longText },
    send: { ...DEFAULTS.send, ...file.send },
    partnerApi: { ...DEFAULTS.partnerApi, ...file.partnerApi },
    admin: { ...DEFAULTS.admin, ...file.admin },
    tokens: { ...DEFAULTS.tokens, ...file.tokens },
    retention,
    operators,
    secretKeys,
    partners,
    channels,
  });
}

// A channel's credential: `accessToken`, or the `channelAccessToken` shorthand for a static one; the
// environment's token (…_ACCESS_TOKEN) or v2.1 private key (…_PRIVATE_KEY, a JWK's JSON) wins over the file.
function channelAccessToken(
  channel: ConfigFile["channels"][number],
  i: number,
  prefix: string,
  env: (name: string) => string | undefined,
  problems: string[],
): AccessTokenCredential | undefined {
  const envToken = env(`${prefix}_ACCESS_TOKEN`);
  if (channel.accessToken === undefined) {
    const token = envToken ?? channel.channelAccessToken;
    return token === undefined ? undefined : { type: "static", token };
  }
  if (channel.channelAccessToken !== undefined) {
    problems.push(`channels[${i}].channelAccessToken: give either it or accessToken, not both`);
    return undefined;
  }
  let value: unknown = channel.accessToken;
  if (isRecord(value)) {
    const privateKey = env(`${prefix}_PRIVATE_KEY`);
    if (value.type === "static" && envToken !== undefined) value = { ...value, token: envToken };
    else if (value.type === "v2.1" && privateKey !== undefined) value = { ...value, privateKey };
  }
  const read = readAccessToken(value, `channels[${i}].accessToken`);
  if (read.ok) return read.credential;
  problems.push(...read.problems);
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function records<T>(value: readonly T[] | undefined): T[] {
  return Array.isArray(value) ? (value.filter(isRecord) as T[]) : [];
}

// "/channels/0/forwardEventTypes/1" → "channels[0].forwardEventTypes[1]", with the allowed values named.
function describeSchemaError(error: ValueError): string {
  const path = error.path
    .split("/")
    .slice(1)
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join("")
    .replace(/^\./, "");
  const allowed = (error.schema.anyOf as Array<{ const?: unknown }> | undefined)?.map(
    (option) => option.const,
  );
  const message = allowed?.every((value) => value !== undefined)
    ? `must be one of ${allowed.map((value) => JSON.stringify(value)).join(", ")}`
    : error.message;
  return `${path || "(top level)"}: ${message}`;
}

function checkUrl(field: string, value: unknown, problems: string[]): void {
  if (typeof value !== "string") return;
  const problem = httpUrlProblem(value);
  if (problem) problems.push(`${field}: ${problem}`);
}

function reportDuplicates(
  field: string,
  values: readonly string[],
  problems: string[],
  secret = false,
): void {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value))
      problems.push(`${field}: ${secret ? "a value" : JSON.stringify(value)} appears more than once`);
    seen.add(value);
  }
}

function redactUrl(value: string): string {
  return value.replace(/\/\/[^@/]*@/, "//***@");
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
