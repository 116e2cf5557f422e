// Unit tests for configuration parsing: defaults, path resolution, freezing, every problem reported, env secrets.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { generateAssertionKeyPair } from "../core/access-token.ts";
import {
  ConfigError,
  DEFAULTS,
  envName,
  loadConfig,
  POSTGRES_INTAKE_LATENCY_TARGET_MS,
  parseConfig,
  type TalkgateConfig,
} from "./config.ts";

const API_KEY = "tgk_0123456789abcdef0123";
/** The SQLite file a configuration names. */
const sqlitePath = (config: TalkgateConfig) =>
  config.database.kind === "sqlite" ? config.database.path : "";

const OTHER_API_KEY = "tgk_fedcba9876543210fedc";

/** The SPEC §7 example with values that pass validation. */
function specConfig(): Record<string, unknown> {
  return {
    listen: { host: "0.0.0.0", port: 8080 },
    publicBaseUrl: "https://relay.example.com",
    database: "sqlite:./data/talkgate.db",
    mediaDir: "./data/media",
    line: { apiBaseUrl: "https://api.line.me", dataApiBaseUrl: "https://api-data.line.me" },
    partners: [
      {
        id: "jedai",
        receiveUrl: "https://partner.example.com/line",
        apiKeys: [API_KEY],
        signingSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        allowPrivateNetwork: false,
        allowWebhookEndpointChange: false,
        lineEventFields: false,
      },
    ],
    channels: [
      {
        senderKey: "1656168303",
        channelSecret: "8c570fbc8fc3bdb6d5b5c6dfb1ef4d21",
        channelAccessToken: "token-abc",
        partner: "jedai",
        forwardEventTypes: ["message", "postback"],
      },
    ],
  };
}

/** The smallest valid file: one partner, one channel, everything else defaulted. */
function minimalConfig(): Record<string, unknown> {
  return {
    partners: [{ id: "jedai", receiveUrl: "https://partner.example.com/line" }],
    channels: [{ senderKey: "1656168303", channelSecret: "secret", partner: "jedai" }],
  };
}

function problemsOf(action: () => unknown): readonly string[] {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

test("parseConfig accepts the SPEC §7 example, resolves paths against baseDir and fills defaults", () => {
  const config = parseConfig(specConfig(), { baseDir: "/srv/talkgate" });
  assert.deepEqual(config, {
    listen: { host: "0.0.0.0", port: 8080 },
    publicBaseUrl: "https://relay.example.com",
    database: { kind: "sqlite", path: "/srv/talkgate/data/talkgate.db" },
    mediaDir: "/srv/talkgate/data/media",
    mediaDirShared: false,
    line: {
      apiBaseUrl: "https://api.line.me",
      dataApiBaseUrl: "https://api-data.line.me",
      timeoutMs: 10_000,
    },
    logLevel: "info",
    webhook: { ...DEFAULTS.webhook },
    delivery: { ...DEFAULTS.delivery },
    profiles: { ...DEFAULTS.profiles },
    media: { ...DEFAULTS.media },
    longText: { threshold: 1000, previewLength: 300 },
    send: { ...DEFAULTS.send },
    partnerApi: { ...DEFAULTS.partnerApi },
    postgres: { ...DEFAULTS.postgres },
    admin: { ...DEFAULTS.admin },
    tokens: { ...DEFAULTS.tokens },
    retention: { ...DEFAULTS.retention },
    operators: [],
    secretKeys: { current: null, previous: [] },
    partners: [
      {
        id: "jedai",
        receiveUrl: "https://partner.example.com/line",
        apiKeys: [API_KEY],
        signingSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        allowPrivateNetwork: false,
        allowWebhookEndpointChange: false,
        lineEventFields: false,
      },
    ],
    channels: [
      {
        senderKey: "1656168303",
        channelSecret: "8c570fbc8fc3bdb6d5b5c6dfb1ef4d21",
        accessToken: { type: "static", token: "token-abc" },
        partner: "jedai",
        forwardEventTypes: ["message", "postback"],
      },
    ],
  });
});

test("parseConfig fills every default for a minimal file", () => {
  const config = parseConfig(minimalConfig(), { baseDir: "/opt/tg" });
  assert.deepEqual(config.listen, { host: "0.0.0.0", port: 8080 });
  assert.equal(config.publicBaseUrl, "http://127.0.0.1:8080");
  assert.deepEqual(config.database, { kind: "sqlite", path: "/opt/tg/data/talkgate.db" });
  assert.equal(config.mediaDir, "/opt/tg/data/media");
  assert.deepEqual(config.line, DEFAULTS.line);
  assert.equal(config.delivery.timeoutMs, 10_000);
  assert.equal(config.delivery.initialBackoffMs, 1_000);
  assert.equal(config.delivery.maxBackoffMs, 600_000);
  assert.equal(config.delivery.maxAgeMs, 86_400_000);
  assert.equal(config.profiles.waitMs, 1_500);
  assert.equal(config.webhook.bodyLimitBytes, 2_097_152);
  assert.deepEqual(config.longText, { threshold: 1000, previewLength: 300 });
  assert.deepEqual(config.partners[0], {
    id: "jedai",
    receiveUrl: "https://partner.example.com/line",
    apiKeys: [],
    signingSecret: undefined,
    allowPrivateNetwork: false,
    allowWebhookEndpointChange: false,
    lineEventFields: false,
  });
  assert.deepEqual(config.channels[0]?.forwardEventTypes, ["message", "postback"]);
  assert.equal(config.channels[0]?.accessToken, undefined);
});

test("parseConfig merges partial sections with the defaults and keeps absolute paths", () => {
  const file = {
    ...minimalConfig(),
    listen: { port: 9090 },
    database: "sqlite:/var/lib/talkgate/db.sqlite",
    mediaDir: "/var/lib/talkgate/media",
    publicBaseUrl: "https://relay.example.com/base//",
    delivery: { timeoutMs: 3_000 },
    longText: { previewLength: 100 },
    logLevel: "debug",
  };
  const config = parseConfig(file, { baseDir: "/ignored" });
  assert.deepEqual(config.listen, { host: "0.0.0.0", port: 9090 });
  assert.equal(sqlitePath(config), "/var/lib/talkgate/db.sqlite");
  assert.equal(config.mediaDir, "/var/lib/talkgate/media");
  assert.equal(config.publicBaseUrl, "https://relay.example.com/base", "trailing slashes removed");
  assert.equal(config.delivery.timeoutMs, 3_000);
  assert.equal(config.delivery.concurrency, DEFAULTS.delivery.concurrency);
  assert.deepEqual(config.longText, { threshold: 1000, previewLength: 100 });
  assert.equal(config.logLevel, "debug");
});

test("parseConfig returns a deeply frozen object: assignments throw", () => {
  const config = parseConfig(specConfig(), { baseDir: "/srv" });
  // Deliberately writable views of the frozen parts, to show the writes fail.
  type Writable = Record<string, unknown>;
  const channel = config.channels[0] as unknown as Writable;
  const partner = config.partners[0];
  assert.ok(channel && partner);
  const writes: Array<[string, () => void]> = [
    ["top level", () => Object.assign(config, { publicBaseUrl: "https://evil.example" })],
    ["listen", () => Object.assign(config.listen, { port: 1 })],
    ["delivery", () => Object.assign(config.delivery, { timeoutMs: 1 })],
    ["database", () => Object.assign(config.database, { path: "/tmp/x" })],
    ["a channel", () => Object.assign(channel, { channelSecret: "x" })],
    ["a partner's apiKeys", () => (partner.apiKeys as string[]).push("another-key-0123456789")],
    ["channels", () => (config.channels as unknown[]).push({})],
    ["forwardEventTypes", () => (channel.forwardEventTypes as string[]).push("follow")],
  ];
  for (const [name, write] of writes) assert.throws(write, TypeError, name);
  assert.equal(config.listen.port, 8080);
  assert.equal(config.channels[0]?.channelSecret, "8c570fbc8fc3bdb6d5b5c6dfb1ef4d21");
});

test("parseConfig reports every problem of one file together", () => {
  const file = {
    ...minimalConfig(),
    extraKey: true, // extra key
    partners: [{ id: "jedai", receiveUrl: "ftp://partner.example.com" }], // bad URL
    channels: [
      { senderKey: "111", partner: "nobody" }, // unknown partner, missing secret
      { senderKey: "111", channelSecret: "s", partner: "jedai", forwardEventTypes: ["message", "beacon"] }, // duplicate, bad type
    ],
  };
  const problems = problemsOf(() => parseConfig(file, { baseDir: "/srv" })).join("\n");
  for (const expected of [
    /extraKey/,
    /receiveUrl/,
    /channelSecret/,
    /nobody/,
    /"111".*more than once/,
    /forwardEventTypes/,
  ]) {
    assert.match(problems, expected);
  }
});

test("parseConfig reports every cross-field problem together", () => {
  const file = {
    publicBaseUrl: "relay.example.com",
    line: { apiBaseUrl: "not a url" },
    database: "mysql://user:hunter2@db.example.com/talkgate",
    partners: [
      { id: "jedai", receiveUrl: "https://a.example.com", apiKeys: [API_KEY] },
      { id: "jedai", receiveUrl: "mailto:x@example.com", apiKeys: [API_KEY] },
    ],
    channels: [
      { senderKey: "111", partner: "nobody" },
      { senderKey: "111", channelSecret: "s", partner: "jedai" },
    ],
  };
  const problems = problemsOf(() => parseConfig(file, { baseDir: "/srv" }));
  const text = problems.join("\n");
  for (const expected of [
    /publicBaseUrl/,
    /line\.apiBaseUrl/,
    /database/,
    /partners\[1\]\.receiveUrl/,
    /partners\[\]\.id: "jedai" appears more than once/,
    /apiKeys/,
    /channels\[0\]\.channelSecret: missing .*TALKGATE_CHANNEL_111_SECRET/,
    /channels\[0\]\.partner: no partner with id "nobody"/,
    /channels\[\]\.senderKey: "111" appears more than once/,
  ]) {
    assert.match(text, expected);
  }
  assert.equal(problems.length, 9);
  assert.doesNotMatch(text, /hunter2/, "database credentials are not echoed");
  assert.doesNotMatch(text, new RegExp(API_KEY), "API keys are not echoed");
});

const SCHEMA_CASES: Array<{ name: string; patch: (file: Record<string, unknown>) => void; problem: RegExp }> =
  [
    { name: "extra top-level key", patch: (f) => Object.assign(f, { lisen: {} }), problem: /lisen/ },
    { name: "missing partners", patch: (f) => delete f.partners, problem: /partners/ },
    { name: "missing channels", patch: (f) => delete f.channels, problem: /channels/ },
    { name: "not an object", patch: () => undefined, problem: /top level/ },
    {
      name: "port out of range",
      patch: (f) => Object.assign(f, { listen: { port: 70000 } }),
      problem: /listen\.port/,
    },
    {
      name: "short API key",
      patch: (f) =>
        Object.assign(f, { partners: [{ id: "p", receiveUrl: "https://x", apiKeys: ["short"] }] }),
      problem: /apiKeys/,
    },
    {
      name: "bad partner id",
      patch: (f) => Object.assign(f, { partners: [{ id: "-p", receiveUrl: "https://x" }] }),
      problem: /partners\[0\]\.id/,
    },
    {
      name: "bad senderKey",
      patch: (f) =>
        Object.assign(f, { channels: [{ senderKey: "a b", channelSecret: "s", partner: "jedai" }] }),
      problem: /senderKey/,
    },
    {
      name: "unknown forwardEventTypes value",
      patch: (f) =>
        Object.assign(f, {
          channels: [{ senderKey: "1", channelSecret: "s", partner: "jedai", forwardEventTypes: ["things"] }],
        }),
      problem: /forwardEventTypes/,
    },
    {
      name: "unknown delivery option",
      patch: (f) => Object.assign(f, { delivery: { timeout: 5 } }),
      problem: /delivery/,
    },
    {
      name: "zero backoff",
      patch: (f) => Object.assign(f, { delivery: { initialBackoffMs: 0 } }),
      problem: /delivery\.initialBackoffMs/,
    },
    { name: "unknown log level", patch: (f) => Object.assign(f, { logLevel: "loud" }), problem: /logLevel/ },
    {
      name: "a plain-text signing secret",
      patch: (f) =>
        Object.assign(f, {
          partners: [{ id: "jedai", receiveUrl: "https://x", signingSecret: "plain-text" }],
        }),
      problem:
        /partners\[0\]\.signingSecret: must start with "whsec_" \(make one with: npx talkgate secrets signing\)/,
    },
    {
      name: "a URL-safe base64 signing secret",
      patch: (f) =>
        Object.assign(f, {
          partners: [{ id: "jedai", receiveUrl: "https://x", signingSecret: `whsec_${"-_".repeat(22)}` }],
        }),
      problem: /partners\[0\]\.signingSecret: must go on with standard base64/,
    },
    {
      name: "a 1-byte signing secret",
      patch: (f) =>
        Object.assign(f, {
          partners: [{ id: "jedai", receiveUrl: "https://x", signingSecret: "whsec_QQ==" }],
        }),
      problem: /partners\[0\]\.signingSecret: holds 1 byte; at least 24/,
    },
  ];

for (const c of SCHEMA_CASES) {
  test(`parseConfig refuses a file with ${c.name}`, () => {
    let file: unknown = minimalConfig();
    if (c.name === "not an object") file = ["not", "an", "object"];
    else c.patch(file as Record<string, unknown>);
    const problems = problemsOf(() => parseConfig(file, { baseDir: "/srv" }));
    assert.match(problems.join("\n"), c.problem);
  });
}

test("a postgres:// database URL selects PostgreSQL; anything else is refused without its password", () => {
  const postgres = parseConfig(
    { ...minimalConfig(), database: "postgres://talkgate:pw@db.internal:5432/talkgate" },
    { baseDir: "/srv" },
  );
  assert.deepEqual(postgres.database, {
    kind: "postgres",
    url: "postgres://talkgate:pw@db.internal:5432/talkgate",
  });
  assert.deepEqual(postgres.postgres, DEFAULTS.postgres);
  const problems = problemsOf(() =>
    parseConfig({ ...minimalConfig(), database: "mysql://root:secret@db/talkgate" }, { baseDir: "/srv" }),
  );
  assert.match(problems.join("\n"), /database: "mysql:\/\/\*\*\*@db\/talkgate" is not supported/);
  assert.doesNotMatch(problems.join("\n"), /secret/);
});

test("the intake latency target defaults per database, and a set value wins on either", () => {
  const url = "postgres://talkgate:pw@db.internal:5432/talkgate";
  const target = (extra: Record<string, unknown>) =>
    parseConfig({ ...minimalConfig(), ...extra }, { baseDir: "/srv" }).delivery.intakeLatencyTargetMs;
  assert.equal(target({}), DEFAULTS.delivery.intakeLatencyTargetMs);
  assert.equal(target({ database: url }), POSTGRES_INTAKE_LATENCY_TARGET_MS);
  assert.equal(target({ database: url, delivery: { intakeLatencyTargetMs: 40 } }), 40);
  assert.equal(target({ delivery: { intakeLatencyTargetMs: 40 } }), 40);
});

test("a delivery lease too short for one attempt and its margin is refused, naming both settings", () => {
  const lease = (delivery: Record<string, number>) => () =>
    parseConfig({ ...minimalConfig(), delivery }, { baseDir: "/srv" });
  for (const delivery of [
    { timeoutMs: 500, leaseMs: 1_000 }, // twice the deadline, but no room for the margin
    { timeoutMs: 10_000, leaseMs: 15_000 },
  ])
    assert.match(problemsOf(lease(delivery)).join("\n"), /delivery\.leaseMs: .*delivery\.timeoutMs/);
  assert.equal(lease({ timeoutMs: 500, leaseMs: 2_500 })().delivery.leaseMs, 2_500);
  assert.equal(lease({ timeoutMs: 2_000, leaseMs: 4_000 })().delivery.leaseMs, 4_000);
});

test("environment secrets override the file", () => {
  const env = {
    TALKGATE_CHANNEL_1656168303_SECRET: "env-secret",
    TALKGATE_CHANNEL_1656168303_ACCESS_TOKEN: "env-token",
    TALKGATE_PARTNER_JEDAI_API_KEYS: ` ${OTHER_API_KEY} , ${API_KEY}x,, `,
    TALKGATE_PARTNER_JEDAI_SIGNING_SECRET: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3LWVudi1zZWNyZXQ=",
    TALKGATE_DATABASE: "sqlite:/data/env.db",
  };
  const config = parseConfig(specConfig(), { baseDir: "/srv", env });
  assert.equal(config.channels[0]?.channelSecret, "env-secret");
  assert.deepEqual(config.channels[0]?.accessToken, { type: "static", token: "env-token" });
  assert.deepEqual(config.partners[0]?.apiKeys, [OTHER_API_KEY, `${API_KEY}x`]);
  assert.equal(config.partners[0]?.signingSecret, "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3LWVudi1zZWNyZXQ=");
  assert.deepEqual(config.database, { kind: "sqlite", path: "/data/env.db" });
});

test("a bad signing secret from the environment is refused without repeating it", () => {
  const env = { TALKGATE_PARTNER_JEDAI_SIGNING_SECRET: "whsec_c2hvcnQtc2VjcmV0" };
  const problems = problemsOf(() => parseConfig(specConfig(), { baseDir: "/srv", env }));
  assert.match(problems.join("\n"), /partners\[0\]\.signingSecret: holds 12 bytes/);
  assert.doesNotMatch(problems.join("\n"), /c2hvcnQtc2VjcmV0/);
});

test("environment secrets fill what the file leaves out", () => {
  const file = {
    partners: [{ id: "jedai.v2", receiveUrl: "https://partner.example.com" }],
    channels: [{ senderKey: "ch-1", partner: "jedai.v2" }],
  };
  const env = {
    TALKGATE_CHANNEL_CH_1_SECRET: "from-env",
    TALKGATE_PARTNER_JEDAI_V2_API_KEYS: API_KEY,
    TALKGATE_DATABASE: "sqlite:rel/x.db",
  };
  const config = parseConfig(file, { baseDir: "/srv", env });
  assert.equal(config.channels[0]?.channelSecret, "from-env");
  assert.deepEqual(config.partners[0]?.apiKeys, [API_KEY]);
  assert.equal(sqlitePath(config), "/srv/rel/x.db");
  // Without the environment the same file lacks its channel secret.
  assert.match(
    problemsOf(() => parseConfig(file, { baseDir: "/srv" })).join("\n"),
    /TALKGATE_CHANNEL_CH_1_SECRET/,
  );
});

test("environment variables of other channels and partners are ignored", () => {
  const env = { TALKGATE_CHANNEL_999_SECRET: "x", TALKGATE_PARTNER_OTHER_API_KEYS: OTHER_API_KEY };
  const config = parseConfig(specConfig(), { baseDir: "/srv", env });
  assert.equal(config.channels[0]?.channelSecret, "8c570fbc8fc3bdb6d5b5c6dfb1ef4d21");
  assert.deepEqual(config.partners[0]?.apiKeys, [API_KEY]);
});

test("API keys from the environment are held to the same minimum length as keys in the file", () => {
  const env = { TALKGATE_PARTNER_JEDAI_API_KEYS: "short" };
  assert.match(problemsOf(() => parseConfig(specConfig(), { baseDir: "/srv", env })).join("\n"), /apiKeys/);
});

const ENV_NAME_CASES: Array<[string, string]> = [
  ["jedai", "JEDAI"],
  ["jedai.v2", "JEDAI_V2"],
  ["my-partner_1", "MY_PARTNER_1"],
  ["1656168303", "1656168303"],
];

for (const [id, expected] of ENV_NAME_CASES) {
  test(`envName(${JSON.stringify(id)}) is ${expected}`, () => {
    assert.equal(envName(id), expected);
  });
}

const dir = mkdtempSync(join(tmpdir(), "talkgate-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("loadConfig reads a file and resolves paths against its directory", () => {
  const path = join(dir, "talkgate.config.json");
  writeFileSync(path, JSON.stringify(minimalConfig()));
  const config = loadConfig(path, { TALKGATE_CHANNEL_1656168303_SECRET: "env" });
  assert.equal(sqlitePath(config), join(dir, "data", "talkgate.db"));
  assert.equal(config.mediaDir, join(dir, "data", "media"));
  assert.equal(config.channels[0]?.channelSecret, "env");
});

test("loadConfig on a missing file throws a ConfigError naming the file", () => {
  const path = join(dir, "missing.json");
  const problems = problemsOf(() => loadConfig(path, {}));
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? "", /cannot read/);
  assert.throws(
    () => loadConfig(path, {}),
    (error: Error) => error.message.includes(path),
  );
});

test("loadConfig on invalid JSON throws a ConfigError", () => {
  const path = join(dir, "broken.json");
  writeFileSync(path, '{"partners": [}');
  const problems = problemsOf(() => loadConfig(path, {}));
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? "", /not valid JSON/);
});

test("loadConfig reports validation problems with the file as their source", () => {
  const path = join(dir, "invalid.json");
  writeFileSync(
    path,
    JSON.stringify({ partners: [], channels: [{ senderKey: "1", channelSecret: "s", partner: "x" }] }),
  );
  assert.throws(
    () => loadConfig(path, {}),
    (error: unknown) =>
      error instanceof ConfigError && error.message.startsWith(path) && /no partner/.test(error.message),
  );
});

// A channel's accessToken (SPEC §11) in a minimal configuration.
function withAccessToken(channel: Record<string, unknown>): Record<string, unknown> {
  const file = minimalConfig();
  const [first] = file.channels as Array<Record<string, unknown>>;
  return { ...file, channels: [{ ...first, ...channel }] };
}
const SECRET_ENV = { TALKGATE_SECRET_KEY: Buffer.alloc(32, 7).toString("base64") };
const { privateKey } = generateAssertionKeyPair();

test("channels[].accessToken: each type is read, a v2.1 key may come from the environment", () => {
  const read = (channel: Record<string, unknown>, env: NodeJS.ProcessEnv = SECRET_ENV) =>
    parseConfig(withAccessToken(channel), { baseDir: "/srv", env }).channels[0]?.accessToken;
  assert.deepEqual(read({ accessToken: { type: "stateless" } }), { type: "stateless" });
  assert.deepEqual(read({ accessToken: { type: "shortLived" } }), { type: "shortLived" });
  assert.deepEqual(read({ accessToken: { type: "static", token: "t" } }), { type: "static", token: "t" });
  assert.deepEqual(read({ accessToken: { type: "v2.1", kid: "k", privateKey, ttlSeconds: 3600 } }), {
    type: "v2.1",
    kid: "k",
    privateKey,
    ttlSeconds: 3600,
  });
  const fromEnv = read(
    { accessToken: { type: "v2.1", kid: "k" } },
    { ...SECRET_ENV, TALKGATE_CHANNEL_1656168303_PRIVATE_KEY: JSON.stringify(privateKey) },
  );
  assert.deepEqual(fromEnv, { type: "v2.1", kid: "k", privateKey, ttlSeconds: 2_592_000 });
  assert.deepEqual(
    read(
      { accessToken: { type: "static", token: "file" } },
      { TALKGATE_CHANNEL_1656168303_ACCESS_TOKEN: "env" },
    ),
    { type: "static", token: "env" },
  );
});

test("channels[].accessToken: problems name the field and why; issued tokens need TALKGATE_SECRET_KEY", () => {
  const problems = (channel: Record<string, unknown>, env: NodeJS.ProcessEnv = SECRET_ENV) =>
    problemsOf(() => parseConfig(withAccessToken(channel), { baseDir: "/srv", env }));
  assert.deepEqual(problems({ accessToken: { type: "v3" } }), [
    'channels[0].accessToken.type: must be one of "static", "v2.1", "stateless", "shortLived"',
  ]);
  assert.deepEqual(problems({ accessToken: { type: "stateless" }, channelAccessToken: "t" }), [
    "channels[0].channelAccessToken: give either it or accessToken, not both",
  ]);
  const v21 = problems({
    accessToken: { type: "v2.1", privateKey: { ...privateKey, d: undefined }, ttlSeconds: 0 },
  });
  assert.deepEqual(
    v21.map((p) => p.split(":")[0]),
    [
      "channels[0].accessToken.kid",
      "channels[0].accessToken.privateKey",
      "channels[0].accessToken.ttlSeconds",
    ],
  );
  assert.deepEqual(problems({ accessToken: { type: "shortLived" } }, {}), [
    "channels[0].accessToken: talkgate stores the tokens it issues sealed, so a shortLived token needs TALKGATE_SECRET_KEY (openssl rand -base64 32)",
  ]);
  assert.deepEqual(
    parseConfig(withAccessToken({ accessToken: { type: "static", token: "t" } }), { baseDir: "/srv" })
      .channels[0]?.accessToken,
    { type: "static", token: "t" },
    "a static token needs no key",
  );
});

test("retention: days of each kind, whole and positive; attachments are kept no longer than their events", () => {
  const withRetention = (retention: Record<string, unknown>) => ({ ...minimalConfig(), retention });
  assert.deepEqual(parseConfig(withRetention({ mediaDays: 7 }), { baseDir: "/srv" }).retention, {
    ...DEFAULTS.retention,
    mediaDays: 7,
  });
  assert.deepEqual(
    problemsOf(() => parseConfig(withRetention({ eventsDays: 14, mediaDays: 30 }), { baseDir: "/srv" })),
    [
      "retention.mediaDays: 30 is more than retention.eventsDays (14); an attachment goes with its event at the latest",
    ],
  );
  for (const [bad, field] of [
    [{ eventsDays: 0 }, "retention.eventsDays"],
    [{ auditDays: 1.5 }, "retention.auditDays"],
    [{ batchSize: "many" }, "retention.batchSize"],
    [{ keepForever: true }, "retention"],
  ] as const) {
    const problems = problemsOf(() => parseConfig(withRetention(bad), { baseDir: "/srv" }));
    assert.ok(problems.length > 0 && problems.every((p) => p.startsWith(`${field}`)), problems.join("\n"));
  }
});
