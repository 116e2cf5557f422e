// Unit tests for LINE access-token credentials: signed v2.1 assertions, key pairs, reading, ids, renewal.
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, type JsonWebKey, verify } from "node:crypto";
import { test } from "node:test";
import {
  type AccessTokenCredential,
  ASSERTION_AUDIENCE,
  ASSERTION_LIFETIME_SECONDS,
  credentialId,
  generateAssertionKeyPair,
  isManaged,
  isRevocable,
  MAX_TOKEN_TTL_SECONDS,
  type ManagedTokenType,
  privateKeyProblem,
  publicKeyOf,
  readAccessToken,
  renewalTime,
  signAssertion,
  type V21Credential,
} from "./access-token.ts";

// One key of each kind for the whole file: generating RSA keys is slow-ish.
const pair = generateAssertionKeyPair();
const smallRsaKey = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "jwk" });
const ecKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
const NOW = 1_700_000_000_123;
const FIELD = "channels[0].accessToken";

const decode = (part: string | undefined): unknown =>
  JSON.parse(Buffer.from(part ?? "", "base64url").toString());
const verifies = (jwt: string, publicKey: JsonWebKey): boolean => {
  const [header = "", payload = "", signature = ""] = jwt.split(".");
  return verify(
    "RSA-SHA256",
    Buffer.from(`${header}.${payload}`),
    createPublicKey({ key: publicKey, format: "jwk" }),
    Buffer.from(signature, "base64url"),
  );
};
const v21 = (extra: Partial<V21Credential> = {}): V21Credential => ({
  type: "v2.1",
  kid: "kid-1",
  privateKey: pair.privateKey,
  ttlSeconds: MAX_TOKEN_TTL_SECONDS,
  ...extra,
});

const ASSERTION_CASES: Array<{ name: string; tokenTtlSeconds?: number; tokenExp: number | undefined }> = [
  { name: "asking for a token", tokenTtlSeconds: 86_400, tokenExp: 86_400 },
  {
    name: "asking for a 30-day token",
    tokenTtlSeconds: MAX_TOKEN_TTL_SECONDS,
    tokenExp: MAX_TOKEN_TTL_SECONDS,
  },
  { name: "asking for the key ids (no token_exp)", tokenExp: undefined },
];

for (const c of ASSERTION_CASES) {
  test(`signAssertion ${c.name}: RS256 header, LINE's claims, a signature the public key verifies`, () => {
    const jwt = signAssertion({
      channelId: "1234567890",
      kid: "kid-1",
      privateKey: pair.privateKey,
      now: NOW,
      ...(c.tokenTtlSeconds === undefined ? {} : { tokenTtlSeconds: c.tokenTtlSeconds }),
    });
    const parts = jwt.split(".");
    assert.equal(parts.length, 3);
    for (const part of parts) assert.match(part, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decode(parts[0]), { alg: "RS256", typ: "JWT", kid: "kid-1" });
    const payload = decode(parts[1]) as Record<string, unknown>;
    assert.deepEqual(payload, {
      iss: "1234567890",
      sub: "1234567890",
      aud: ASSERTION_AUDIENCE,
      exp: Math.floor(NOW / 1000) + 1800,
      ...(c.tokenExp === undefined ? {} : { token_exp: c.tokenExp }),
    });
    assert.equal(ASSERTION_AUDIENCE, "https://api.line.me/");
    assert.equal(ASSERTION_LIFETIME_SECONDS, 1800);
    assert.equal("token_exp" in payload, c.tokenExp !== undefined);
    assert.ok(verifies(jwt, pair.publicKey), "with the generated public key");
    assert.ok(
      verifies(jwt, publicKeyOf(pair.privateKey)),
      "with the public key derived from the private one",
    );
  });
}

test("signAssertion: a changed payload (or a signature from another key) no longer verifies", () => {
  const jwt = signAssertion({
    channelId: "1234567890",
    kid: "kid-1",
    privateKey: pair.privateKey,
    now: NOW,
    tokenTtlSeconds: 3_600,
  });
  const [header = "", payload = "", signature = ""] = jwt.split(".");
  const changed = Buffer.from(
    JSON.stringify({ ...(decode(payload) as object), token_exp: MAX_TOKEN_TTL_SECONDS }),
  ).toString("base64url");
  assert.ok(verifies(jwt, pair.publicKey));
  assert.equal(verifies(`${header}.${changed}.${signature}`, pair.publicKey), false);
  const otherChannel = Buffer.from(JSON.stringify({ ...(decode(payload) as object), iss: "999" })).toString(
    "base64url",
  );
  assert.equal(verifies(`${header}.${otherChannel}.${signature}`, pair.publicKey), false);
  assert.equal(verifies(jwt, publicKeyOf(smallRsaKey)), false);
});

test("signAssertion: exp is 30 minutes from the whole second of now", () => {
  for (const [now, exp] of [
    [0, 1800],
    [999, 1800],
    [1_000, 1801],
    [NOW, 1_700_000_000 + 1800],
  ] as const) {
    const jwt = signAssertion({ channelId: "c", kid: "k", privateKey: pair.privateKey, now });
    assert.equal((decode(jwt.split(".")[1]) as { exp: number }).exp, exp, `now ${now}`);
  }
});

test("generateAssertionKeyPair: an RS256 RSA pair, the private one with d, the public one without", () => {
  assert.equal(pair.publicKey.kty, "RSA");
  assert.equal(pair.privateKey.kty, "RSA");
  assert.equal(pair.publicKey.alg, "RS256");
  assert.equal(pair.privateKey.alg, "RS256");
  assert.equal(pair.publicKey.d, undefined);
  assert.equal(typeof pair.privateKey.d, "string");
  assert.equal(pair.publicKey.n, pair.privateKey.n);
  assert.equal(pair.publicKey.e, pair.privateKey.e);
  assert.deepEqual(publicKeyOf(pair.privateKey), pair.publicKey);
  assert.equal(privateKeyProblem(pair.privateKey), null);
});

const KEY_PROBLEM_CASES: Array<{ name: string; key: unknown; problem: RegExp }> = [
  { name: "the public key", key: pair.publicKey, problem: /"d"/ },
  { name: "a string", key: JSON.stringify(pair.privateKey), problem: /must be a JWK object/ },
  { name: "null", key: null, problem: /must be a JWK object/ },
  { name: "an array", key: [pair.privateKey], problem: /must be a JWK object/ },
  { name: "a number", key: 42, problem: /must be a JWK object/ },
  { name: "an EC key", key: ecKey, problem: /must be an RSA key \(kty "RSA"\)/ },
  { name: "a 1024-bit RSA key", key: smallRsaKey, problem: /at least 2048/ },
  { name: "garbage fields", key: { kty: "RSA", d: "x", n: "y", e: "z" }, problem: /not a usable/ },
];

for (const c of KEY_PROBLEM_CASES) {
  test(`privateKeyProblem names ${c.name}`, () => {
    assert.match(privateKeyProblem(c.key) ?? "", c.problem);
  });
}

const READ_OK_CASES: Array<{ name: string; value: unknown; credential: AccessTokenCredential }> = [
  {
    name: "a static token",
    value: { type: "static", token: "abc" },
    credential: { type: "static", token: "abc" },
  },
  {
    name: "v2.1 with the private key as an object (30 days by default)",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey },
    credential: v21({ ttlSeconds: 2_592_000 }),
  },
  {
    name: "v2.1 with the private key as its JSON text",
    value: { type: "v2.1", kid: "kid-1", privateKey: JSON.stringify(pair.privateKey) },
    credential: v21({ ttlSeconds: 2_592_000 }),
  },
  {
    name: "v2.1 with the shortest ttl",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, ttlSeconds: 60 },
    credential: v21({ ttlSeconds: 60 }),
  },
  {
    name: "v2.1 with the longest ttl",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, ttlSeconds: 2_592_000 },
    credential: v21({ ttlSeconds: 2_592_000 }),
  },
  { name: "stateless", value: { type: "stateless" }, credential: { type: "stateless" } },
  { name: "shortLived", value: { type: "shortLived" }, credential: { type: "shortLived" } },
];

for (const c of READ_OK_CASES) {
  test(`readAccessToken reads ${c.name}`, () => {
    assert.deepEqual(readAccessToken(c.value, FIELD), { ok: true, credential: c.credential });
  });
}

const READ_PROBLEM_CASES: Array<{ name: string; value: unknown; problems: Array<string | RegExp> }> = [
  {
    name: "not an object",
    value: "static",
    problems: ["channels[0].accessToken: must be an object with a type"],
  },
  { name: "null", value: null, problems: ["channels[0].accessToken: must be an object with a type"] },
  { name: "an array", value: [], problems: ["channels[0].accessToken: must be an object with a type"] },
  {
    name: "an unknown type (the message lists the types)",
    value: { type: "v3" },
    problems: ['channels[0].accessToken.type: must be one of "static", "v2.1", "stateless", "shortLived"'],
  },
  {
    name: "no type",
    value: { token: "abc" },
    problems: [/^channels\[0\]\.accessToken\.type: must be one of /],
  },
  {
    name: "an inherited name as the type",
    value: { type: "toString" },
    problems: [/^channels\[0\]\.accessToken\.type: must be one of /],
  },
  {
    name: "static without a token",
    value: { type: "static" },
    problems: ["channels[0].accessToken.token: must be the channel access token (a non-empty string)"],
  },
  {
    name: "static with an empty token",
    value: { type: "static", token: "" },
    problems: [/^channels\[0\]\.accessToken\.token: /],
  },
  {
    name: "a field of another type",
    value: { type: "stateless", kid: "kid-1" },
    problems: ["channels[0].accessToken.kid: not a field of a stateless token"],
  },
  {
    name: "an unknown field of a static token",
    value: { type: "static", token: "abc", ttlSeconds: 60 },
    problems: ["channels[0].accessToken.ttlSeconds: not a field of a static token"],
  },
  {
    name: "an unknown field of a v2.1 token",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, keyId: "x" },
    problems: ["channels[0].accessToken.keyId: not a field of a v2.1 token"],
  },
  {
    name: "v2.1 without kid",
    value: { type: "v2.1", privateKey: pair.privateKey },
    problems: [/^channels\[0\]\.accessToken\.kid: must be the key id LINE showed/],
  },
  {
    name: "v2.1 with a blank kid",
    value: { type: "v2.1", kid: "  ", privateKey: pair.privateKey },
    problems: [/^channels\[0\]\.accessToken\.kid: /],
  },
  {
    name: "v2.1 with the public key",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.publicKey },
    problems: [/^channels\[0\]\.accessToken\.privateKey: must be the private key \(it has no "d"/],
  },
  {
    name: "v2.1 with a private key that is not JSON",
    value: { type: "v2.1", kid: "kid-1", privateKey: "-----BEGIN PRIVATE KEY-----" },
    problems: ["channels[0].accessToken.privateKey: must be a JWK object"],
  },
  {
    name: "v2.1 without a private key",
    value: { type: "v2.1", kid: "kid-1" },
    problems: ["channels[0].accessToken.privateKey: must be a JWK object"],
  },
  {
    name: "v2.1 with an EC key",
    value: { type: "v2.1", kid: "kid-1", privateKey: ecKey },
    problems: ['channels[0].accessToken.privateKey: must be an RSA key (kty "RSA")'],
  },
  {
    name: "ttlSeconds 59",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, ttlSeconds: 59 },
    problems: ["channels[0].accessToken.ttlSeconds: must be an integer from 60 to 2592000 (30 days)"],
  },
  {
    name: "ttlSeconds 2592001",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, ttlSeconds: 2_592_001 },
    problems: [/^channels\[0\]\.accessToken\.ttlSeconds: /],
  },
  {
    name: "ttlSeconds 1.5",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, ttlSeconds: 1.5 },
    problems: [/^channels\[0\]\.accessToken\.ttlSeconds: /],
  },
  {
    name: "ttlSeconds as text",
    value: { type: "v2.1", kid: "kid-1", privateKey: pair.privateKey, ttlSeconds: "3600" },
    problems: [/^channels\[0\]\.accessToken\.ttlSeconds: /],
  },
  {
    name: "several problems, all together",
    value: { type: "v2.1", privateKey: pair.publicKey, ttlSeconds: 0, token: "abc" },
    problems: [
      "channels[0].accessToken.token: not a field of a v2.1 token",
      /^channels\[0\]\.accessToken\.kid: /,
      /^channels\[0\]\.accessToken\.privateKey: .*"d"/,
      /^channels\[0\]\.accessToken\.ttlSeconds: /,
    ],
  },
  {
    name: "a static token with an unknown field and no token",
    value: { type: "static", kid: "kid-1" },
    problems: [
      "channels[0].accessToken.kid: not a field of a static token",
      /^channels\[0\]\.accessToken\.token: /,
    ],
  },
];

for (const c of READ_PROBLEM_CASES) {
  test(`readAccessToken refuses ${c.name}`, () => {
    const read = readAccessToken(c.value, FIELD);
    assert.equal(read.ok, false);
    if (read.ok) return;
    assert.equal(read.problems.length, c.problems.length, read.problems.join("\n"));
    c.problems.forEach((expected, i) => {
      const problem = read.problems[i] ?? "";
      if (typeof expected === "string") assert.equal(problem, expected);
      else assert.match(problem, expected);
    });
    for (const problem of read.problems) assert.ok(!problem.includes(pair.privateKey.d ?? "?"), problem);
  });
}

test("credentialId: stable per credential, another kid or key gives another id, no secret shown", () => {
  const id = credentialId(v21());
  assert.match(id, /^v2\.1:[0-9a-f]{16}$/);
  assert.equal(credentialId(v21()), id);
  assert.equal(credentialId(v21({ privateKey: { ...pair.privateKey } })), id);
  assert.equal(credentialId(v21({ ttlSeconds: 60 })), id, "the ttl does not change which key issued");
  assert.notEqual(credentialId(v21({ kid: "kid-2" })), id);
  const other = smallRsaKey;
  assert.notEqual(credentialId(v21({ privateKey: other })), id);
  for (const credential of [v21(), v21({ kid: "kid-2" }), v21({ privateKey: other })]) {
    const shown = credentialId(credential);
    assert.ok(!shown.includes(String(credential.privateKey.d)));
    assert.ok(!shown.includes(String(credential.privateKey.d).slice(0, 16)));
  }
  assert.equal(credentialId({ type: "stateless" }), "stateless");
  assert.equal(credentialId({ type: "shortLived" }), "shortLived");
});

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const ISSUED = 1_700_000_000_000;
const POLICY = { renewAfterFraction: 0.8, statelessRenewAfterMs: 10 * MINUTE };

const RENEWAL_CASES: Array<{
  name: string;
  type: ManagedTokenType;
  lifetime: number;
  policy?: { renewAfterFraction: number; statelessRenewAfterMs: number };
  after: number;
}> = [
  { name: "a 30-day v2.1 token on day 24", type: "v2.1", lifetime: 30 * DAY, after: 24 * DAY },
  { name: "a 1-day v2.1 token at 80%", type: "v2.1", lifetime: DAY, after: 0.8 * DAY },
  {
    name: "a 15-minute stateless token after 10 minutes (before 80%)",
    type: "stateless",
    lifetime: 15 * MINUTE,
    after: 10 * MINUTE,
  },
  {
    name: "a 15-minute stateless token at half its life, when that comes first",
    type: "stateless",
    lifetime: 15 * MINUTE,
    policy: { renewAfterFraction: 0.5, statelessRenewAfterMs: 10 * MINUTE },
    after: 7.5 * MINUTE,
  },
  {
    name: "a 30-day short-lived token on day 24 (the stateless limit does not apply)",
    type: "shortLived",
    lifetime: 30 * DAY,
    after: 24 * DAY,
  },
  {
    name: "a v2.1 token with an odd lifetime, to the whole millisecond",
    type: "v2.1",
    lifetime: 1_001,
    after: 800,
  },
  { name: "a token expiring when issued", type: "v2.1", lifetime: 0, after: 0 },
  { name: "a v2.1 token expiring before it was issued", type: "v2.1", lifetime: -DAY, after: 0 },
  { name: "a stateless token expiring before it was issued", type: "stateless", lifetime: -MINUTE, after: 0 },
];

for (const c of RENEWAL_CASES) {
  test(`renewalTime: ${c.name}`, () => {
    const token = { issuedAt: ISSUED, expiresAt: ISSUED + c.lifetime };
    assert.equal(renewalTime(c.type, token, c.policy ?? POLICY), ISSUED + c.after);
  });
}

test("isRevocable: stateless tokens only expire; isManaged: every type but static", () => {
  assert.deepEqual(
    (["v2.1", "stateless", "shortLived"] as const).map((type) => isRevocable(type)),
    [true, false, true],
  );
  const credentials: Array<[AccessTokenCredential, boolean]> = [
    [{ type: "static", token: "abc" }, false],
    [v21(), true],
    [{ type: "stateless" }, true],
    [{ type: "shortLived" }, true],
  ];
  for (const [credential, managed] of credentials)
    assert.equal(isManaged(credential), managed, credential.type);
});
