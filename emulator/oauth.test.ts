// Tests of the emulator's channel access token endpoints through the official SDK client: issue, verify,
// revoke and list tokens of each type, JWT assertion checks, expiry on the emulator clock, LINE's limits.
import assert from "node:assert/strict";
import { generateKeyPairSync, type JsonWebKey, type KeyObject, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, beforeEach, describe, test } from "node:test";
import { channelAccessToken, HTTPFetchError } from "@line/bot-sdk";
import { randomUserId } from "./events.ts";
import { type LineEmulator, startLineEmulator } from "./line-emulator.ts";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DAY_MS = 24 * 60 * 60 * 1000;
const A = { channelId: "1656168303", channelSecret: "secret-a", accessToken: "token-a" };
// B has no long-lived token: only issued tokens authenticate it.
const B = { channelId: "2000000001", channelSecret: "secret-b" };

type KeyPair = { privateKey: KeyObject; jwk: JsonWebKey };

function keyPair(kid: string): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" } };
}

const keyA = keyPair("kid-a");
const keyB = keyPair("kid-b");
const stranger = keyPair("kid-a"); // same kid as A's key, but a private key LINE never saw

let clock = 1_700_000_000_000;
let emulator: LineEmulator;
let client: channelAccessToken.ChannelAccessTokenClient;
const userId = randomUserId();

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

// A client assertion as LINE documents it, valid for 10 minutes on the emulator clock; `payload` entries
// override (undefined removes) the claims.
function assertion(
  options: { key?: KeyPair; header?: Record<string, unknown>; payload?: Record<string, unknown> } = {},
): string {
  const key = options.key ?? keyA;
  const channelId = key === keyB ? B.channelId : A.channelId;
  const header = { alg: "RS256", typ: "JWT", kid: key.jwk.kid, ...options.header };
  const payload = {
    iss: channelId,
    sub: channelId,
    aud: "https://api.line.me/",
    exp: Math.floor(clock / 1000) + 10 * 60,
    token_exp: 86_400,
    ...options.payload,
  };
  const signingInput = `${base64url(header)}.${base64url(payload)}`;
  const signature = sign("RSA-SHA256", Buffer.from(signingInput, "ascii"), key.privateKey);
  return `${signingInput}.${signature.toString("base64url")}`;
}

function issueV21(jwt = assertion()) {
  return client.issueChannelTokenByJWT("client_credentials", JWT_BEARER, jwt);
}

// The status and JSON body of the SDK call's HTTP error.
async function refusal(promise: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof HTTPFetchError)) throw error;
    return { status: error.status, body: error.body === "" ? "" : JSON.parse(error.body) };
  }
  assert.fail("the call succeeded");
}

// Asserts an OAuth 400 with this error code (any description).
async function assertOAuthError(promise: Promise<unknown>, error: string): Promise<void> {
  const got = await refusal(promise);
  assert.equal(got.status, 400);
  assert.ok(typeof got.body === "object" && got.body !== null);
  const body = got.body as Record<string, unknown>;
  assert.equal(body.error, error, JSON.stringify(body));
  assert.equal(typeof body.error_description, "string");
}

async function profileStatus(token: string): Promise<number> {
  const response = await fetch(`${emulator.url}/v2/bot/profile/${userId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
  return response.status;
}

async function postForm(
  path: string,
  fields: Record<string, string>,
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${emulator.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? "" : JSON.parse(text) };
}

before(async () => {
  emulator = await startLineEmulator({
    channels: [A, { ...B, assertionKeys: [keyB.jwk] }],
    now: () => clock,
  });
  emulator.registerAssertionKey(A.channelId, keyA.jwk);
  emulator.setProfile(userId, { displayName: "토큰" });
  client = new channelAccessToken.ChannelAccessTokenClient({ baseURL: emulator.url });
});

after(async () => {
  await emulator.close();
});

beforeEach(() => {
  // A month later every token of the previous test has expired, so each test starts with none live.
  clock += 31 * DAY_MS;
  emulator.clearRecords();
  emulator.clearFaults();
});

describe("channel access token v2.1", () => {
  test("a JWT assertion issues a token that authenticates, verifies and is listed by kid", async () => {
    const issued = await issueV21();
    assert.equal(issued.token_type, "Bearer");
    assert.equal(issued.expires_in, 86_400);
    assert.match(issued.access_token, /^[A-Za-z0-9_-]{40,}$/);
    assert.match(issued.key_id, /^[A-Za-z0-9_-]{16,}$/);
    assert.equal(await profileStatus(issued.access_token), 200);

    assert.deepEqual(await client.verifyChannelTokenByJWT(issued.access_token), {
      client_id: A.channelId,
      expires_in: 86_400,
      scope: "profile chat_message.write",
    });
    clock += 1_000;
    assert.equal((await client.verifyChannelTokenByJWT(issued.access_token)).expires_in, 86_399);

    const second = await issueV21();
    const { kids } = await client.getsAllValidChannelAccessTokenKeyIds(JWT_BEARER, assertion());
    assert.deepEqual(kids, [issued.key_id, second.key_id]);
    assert.deepEqual(emulator.issuedTokens(A.channelId).slice(-2), [
      {
        token: issued.access_token,
        channelId: A.channelId,
        type: "v2.1",
        keyId: issued.key_id,
        issuedAt: clock - 1_000,
        expiresAt: clock - 1_000 + 86_400_000,
        revokedAt: null,
      },
      {
        token: second.access_token,
        channelId: A.channelId,
        type: "v2.1",
        keyId: second.key_id,
        issuedAt: clock,
        expiresAt: clock + 86_400_000,
        revokedAt: null,
      },
    ]);
  });

  test("flawed assertions are refused with LINE's OAuth errors and issue nothing", async () => {
    const issuedBefore = emulator.issuedTokens().length;
    const now = Math.floor(clock / 1000);
    const cases: [string, () => Promise<unknown>, string, RegExp][] = [
      ["bad signature", () => issueV21(assertion({ key: stranger })), "invalid_client", /signature/],
      [
        "wrong aud",
        () => issueV21(assertion({ payload: { aud: "https://api.line.biz/" } })),
        "invalid_client",
        /aud/,
      ],
      ["expired", () => issueV21(assertion({ payload: { exp: now } })), "invalid_client", /expired/],
      [
        "exp too late",
        () => issueV21(assertion({ payload: { exp: now + 31 * 60 } })),
        "invalid_client",
        /30 minutes/,
      ],
      ["unknown kid", () => issueV21(assertion({ header: { kid: "kid-unknown" } })), "invalid_client", /kid/],
      [
        "another channel's kid",
        () => issueV21(assertion({ key: keyB, header: { kid: "kid-a" } })),
        "invalid_client",
        /kid/,
      ],
      ["alg", () => issueV21(assertion({ header: { alg: "HS256" } })), "invalid_client", /RS256/],
      ["sub", () => issueV21(assertion({ payload: { sub: B.channelId } })), "invalid_client", /iss and sub/],
      [
        "unknown channel",
        () => issueV21(assertion({ payload: { iss: "999", sub: "999" } })),
        "invalid_client",
        /iss/,
      ],
      ["not a JWT", () => issueV21("not.a-jwt"), "invalid_client", /JWT/],
      [
        "token_exp > 30 days",
        () => issueV21(assertion({ payload: { token_exp: 30 * 86_400 + 1 } })),
        "invalid_request",
        /token_exp/,
      ],
      [
        "token_exp 0",
        () => issueV21(assertion({ payload: { token_exp: 0 } })),
        "invalid_request",
        /token_exp/,
      ],
      [
        "token_exp 1.5",
        () => issueV21(assertion({ payload: { token_exp: 1.5 } })),
        "invalid_request",
        /token_exp/,
      ],
      [
        "no token_exp",
        () => issueV21(assertion({ payload: { token_exp: undefined } })),
        "invalid_request",
        /token_exp/,
      ],
      [
        "assertion type",
        () => client.issueChannelTokenByJWT("client_credentials", "urn:other", assertion()),
        "invalid_request",
        /client_assertion_type/,
      ],
      [
        "grant type",
        () => client.issueChannelTokenByJWT("authorization_code", JWT_BEARER, assertion()),
        "unsupported_grant_type",
        /client_credentials/,
      ],
    ];
    // One at a time, so a refusal is always awaited as it happens.
    for (const [name, attempt, error, description] of cases) {
      const got = await refusal(attempt());
      assert.equal(got.status, 400, name);
      const body = got.body as { error: string; error_description: string };
      assert.equal(body.error, error, name);
      assert.match(body.error_description, description, name);
    }
    assert.equal(emulator.issuedTokens().length, issuedBefore);
    // The longest allowed lifetimes pass.
    const longest = await issueV21(assertion({ payload: { exp: now + 30 * 60, token_exp: 30 * 86_400 } }));
    assert.equal(longest.expires_in, 30 * 86_400);
  });

  test("the key-id listing checks its assertion too, without token_exp", async () => {
    await assertOAuthError(
      client.getsAllValidChannelAccessTokenKeyIds(JWT_BEARER, assertion({ key: stranger })),
      "invalid_client",
    );
    const jwt = assertion({ payload: { token_exp: undefined } });
    assert.deepEqual(await client.getsAllValidChannelAccessTokenKeyIds(JWT_BEARER, jwt), { kids: [] });
  });

  test("tokens expire on the emulator clock", async () => {
    const issued = await issueV21(assertion({ payload: { token_exp: 60 } }));
    clock += 59_999;
    assert.equal(await profileStatus(issued.access_token), 200);
    clock += 1;
    assert.equal(await profileStatus(issued.access_token), 401);
    const call = emulator.calls.at(-1);
    assert.deepEqual([call?.status, call?.channelId], [401, null]);
    await assertOAuthError(client.verifyChannelTokenByJWT(issued.access_token), "invalid_request");
    const expired = await refusal(client.verifyChannelTokenByJWT(issued.access_token));
    assert.deepEqual(expired.body, { error: "invalid_request", error_description: "access token expired" });
    assert.deepEqual(await client.getsAllValidChannelAccessTokenKeyIds(JWT_BEARER, assertion()), {
      kids: [],
    });
  });

  test("revocation needs the channel's id and secret, and answers 200 for tokens it does not know", async () => {
    const issued = await issueV21();
    await assertOAuthError(
      client.revokeChannelTokenByJWT(A.channelId, "wrong", issued.access_token),
      "invalid_client",
    );
    await assertOAuthError(
      client.revokeChannelTokenByJWT("999", A.channelSecret, issued.access_token),
      "invalid_client",
    );
    // Another channel's credentials leave the token alone.
    assert.equal(
      await client.revokeChannelTokenByJWT(B.channelId, B.channelSecret, issued.access_token),
      null,
    );
    assert.equal(await profileStatus(issued.access_token), 200);

    assert.equal(
      await client.revokeChannelTokenByJWT(A.channelId, A.channelSecret, issued.access_token),
      null,
    );
    assert.equal(await profileStatus(issued.access_token), 401);
    const invalid = await refusal(client.verifyChannelTokenByJWT(issued.access_token));
    assert.deepEqual(invalid.body, { error: "invalid_request", error_description: "invalid access token" });
    assert.equal(
      await client.revokeChannelTokenByJWT(A.channelId, A.channelSecret, issued.access_token),
      null,
    );
    assert.equal(await client.revokeChannelTokenByJWT(A.channelId, A.channelSecret, "never-issued"), null);
    assert.equal(emulator.issuedTokens(A.channelId).at(-1)?.revokedAt, clock);
  });

  test("a channel holds at most 30 live v2.1 tokens: the 31st is refused until one goes", async () => {
    const issued = [];
    for (let i = 0; i < 30; i += 1) issued.push(await issueV21());
    const refused = await refusal(issueV21());
    assert.equal(refused.status, 400);
    assert.equal((refused.body as { error: string }).error, "invalid_request");
    assert.match(String((refused.body as { error_description: string }).error_description), /30/);
    // Another channel has its own count.
    assert.ok((await issueV21(assertion({ key: keyB }))).access_token);

    await client.revokeChannelTokenByJWT(A.channelId, A.channelSecret, issued[0]?.access_token ?? "");
    assert.ok((await issueV21()).access_token);
    await assertOAuthError(issueV21(), "invalid_request");
  });

  test("a channel without a long-lived token is authenticated by its issued tokens only", async () => {
    assert.equal(emulator.channel(B.channelId)?.accessToken, undefined);
    const issued = await issueV21(assertion({ key: keyB }));
    assert.equal(await profileStatus(issued.access_token), 200);
    assert.equal(emulator.calls.at(-1)?.channelId, B.channelId);
    assert.equal(await profileStatus(A.accessToken), 200); // A's static token still works
  });

  test("registerAssertionKey refuses what LINE would, and replaces a key by kid", async () => {
    const { kid: _kid, ...withoutKid } = keyA.jwk;
    assert.throws(() => emulator.registerAssertionKey(A.channelId, withoutKid), /kid/);
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const privateJwk = { ...privateKey.export({ format: "jwk" }), kid: "kid-private" };
    assert.throws(() => emulator.registerAssertionKey(A.channelId, privateJwk), /public key/);
    assert.throws(() => emulator.registerAssertionKey("999", keyA.jwk), /unknown channel/);
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" });
    assert.throws(() => emulator.registerAssertionKey(A.channelId, { ...small, kid: "kid-small" }), /2048/);

    const first = keyPair("kid-c");
    const second = keyPair("kid-c");
    emulator.registerAssertionKey(A.channelId, first.jwk);
    assert.ok((await issueV21(assertion({ key: first }))).access_token);
    emulator.registerAssertionKey(A.channelId, second.jwk);
    await assertOAuthError(issueV21(assertion({ key: first })), "invalid_client");
    assert.ok((await issueV21(assertion({ key: second }))).access_token);
    assert.deepEqual(
      emulator.channel(A.channelId)?.assertionKeys?.map((k) => k.kid),
      ["kid-a", "kid-c"],
    );
  });
});

describe("stateless channel access tokens", () => {
  test("issued by secret or assertion for 15 minutes; revocation does not touch them", async () => {
    const bySecret = await client.issueStatelessChannelTokenByClientSecret(A.channelId, A.channelSecret);
    assert.deepEqual(Object.keys(bySecret).sort(), ["access_token", "expires_in", "token_type"]);
    assert.deepEqual([bySecret.token_type, bySecret.expires_in], ["Bearer", 900]);
    const byJwt = await client.issueStatelessChannelTokenByJWTAssertion(
      assertion({ key: keyB, payload: { token_exp: undefined } }),
    );
    assert.equal(emulator.issuedTokens(B.channelId).at(-1)?.type, "stateless");
    assert.equal(await profileStatus(byJwt.access_token), 200);

    await client.revokeChannelToken(bySecret.access_token);
    await client.revokeChannelTokenByJWT(A.channelId, A.channelSecret, bySecret.access_token);
    assert.equal(await profileStatus(bySecret.access_token), 200);
    assert.equal(emulator.issuedTokens(A.channelId).at(-1)?.revokedAt, null);

    clock += 15 * 60 * 1000;
    assert.equal(await profileStatus(bySecret.access_token), 401);
    assert.equal(await profileStatus(byJwt.access_token), 401);
  });

  test("wrong credentials are invalid_client; there is no count limit", async () => {
    await assertOAuthError(
      client.issueStatelessChannelTokenByClientSecret(A.channelId, "wrong"),
      "invalid_client",
    );
    await assertOAuthError(
      client.issueStatelessChannelTokenByJWTAssertion(assertion({ key: stranger })),
      "invalid_client",
    );
    for (let i = 0; i < 31; i += 1)
      await client.issueStatelessChannelTokenByClientSecret(B.channelId, B.channelSecret);
    assert.equal(
      emulator.issuedTokens(B.channelId).filter((t) => t.revokedAt === null && t.expiresAt > clock).length,
      31,
    );
  });
});

describe("short-lived channel access tokens", () => {
  test("issue, verify and revoke", async () => {
    const issued = await client.issueChannelToken("client_credentials", A.channelId, A.channelSecret);
    assert.deepEqual([issued.token_type, issued.expires_in], ["Bearer", 2_592_000]);
    assert.equal(await profileStatus(issued.access_token), 200);
    assert.deepEqual(await client.verifyChannelToken(issued.access_token), {
      client_id: A.channelId,
      expires_in: 2_592_000,
      scope: "profile chat_message.write",
    });
    assert.equal(await client.revokeChannelToken(issued.access_token), null);
    assert.equal(await profileStatus(issued.access_token), 401);
    await assertOAuthError(client.verifyChannelToken(issued.access_token), "invalid_request");
    assert.equal(await client.revokeChannelToken("never-issued"), null);
    await assertOAuthError(
      client.issueChannelToken("client_credentials", A.channelId, "nope"),
      "invalid_client",
    );
    await assertOAuthError(
      client.issueChannelToken("password", A.channelId, A.channelSecret),
      "unsupported_grant_type",
    );
  });

  test("the 31st live short-lived token revokes the oldest", async () => {
    const issued = [];
    for (let i = 0; i < 31; i += 1) {
      issued.push(await client.issueChannelToken("client_credentials", A.channelId, A.channelSecret));
    }
    assert.equal(await profileStatus(issued[0]?.access_token ?? ""), 401);
    assert.equal(await profileStatus(issued[1]?.access_token ?? ""), 200);
    assert.equal(await profileStatus(issued[30]?.access_token ?? ""), 200);
    const mine = emulator.issuedTokens(A.channelId).slice(-31);
    assert.deepEqual(
      mine.map((t) => t.revokedAt !== null),
      [true, ...Array(30).fill(false)],
    );
  });

  test("the v2 revoke endpoint revokes v2.1 tokens too", async () => {
    const issued = await issueV21();
    await client.revokeChannelToken(issued.access_token);
    assert.equal(await profileStatus(issued.access_token), 401);
  });
});

describe("test controls and recording", () => {
  test("revokeToken ends an issued token as if someone else had", async () => {
    const issued = await issueV21();
    assert.equal(emulator.revokeToken(issued.access_token), true);
    assert.equal(emulator.revokeToken(issued.access_token), false);
    assert.equal(emulator.revokeToken("never-issued"), false);
    assert.equal(await profileStatus(issued.access_token), 401);
    assert.deepEqual(await client.getsAllValidChannelAccessTokenKeyIds(JWT_BEARER, assertion()), {
      kids: [],
    });
    // Unlike LINE's revoke endpoints, the control reaches stateless tokens too.
    const stateless = await client.issueStatelessChannelTokenByClientSecret(A.channelId, A.channelSecret);
    assert.equal(emulator.revokeToken(stateless.access_token), true);
    assert.equal(await profileStatus(stateless.access_token), 401);
  });

  test("calls record token requests with their channel and masked credentials; clearRecords keeps tokens", async () => {
    const jwt = assertion();
    const issued = await issueV21(jwt);
    await client.revokeChannelTokenByJWT(A.channelId, A.channelSecret, issued.access_token);
    await client.issueChannelToken("client_credentials", B.channelId, "wrong").catch(() => undefined);
    await client.verifyChannelTokenByJWT(issued.access_token).catch(() => undefined);
    assert.deepEqual(
      emulator.calls.map((c) => [c.method, c.path, c.channelId, c.status, c.body]),
      [
        [
          "POST",
          "/oauth2/v2.1/token",
          A.channelId,
          200,
          { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: "***" },
        ],
        [
          "POST",
          "/oauth2/v2.1/revoke",
          A.channelId,
          200,
          { client_id: A.channelId, client_secret: "***", access_token: "***" },
        ],
        [
          "POST",
          "/v2/oauth/accessToken",
          B.channelId,
          400,
          { grant_type: "client_credentials", client_id: B.channelId, client_secret: "***" },
        ],
        ["GET", "/oauth2/v2.1/verify", A.channelId, 400, undefined],
      ],
    );
    const recorded = JSON.stringify(emulator.calls);
    for (const secret of [jwt, A.channelSecret, issued.access_token]) assert.ok(!recorded.includes(secret));

    const count = emulator.issuedTokens().length;
    emulator.clearRecords();
    assert.equal(emulator.calls.length, 0);
    assert.equal(emulator.issuedTokens().length, count);
  });

  test("failNext and setDelay apply to the token endpoints", async () => {
    const issuedBefore = emulator.issuedTokens().length;
    emulator.failNext("/oauth2/v2.1/token", { status: 500 });
    assert.deepEqual(await refusal(issueV21()), { status: 500, body: { message: "Internal server error" } });
    assert.equal(emulator.issuedTokens().length, issuedBefore);
    assert.deepEqual(
      emulator.calls.map((c) => [c.channelId, c.status]),
      [[A.channelId, 500]],
    );
    assert.ok((await issueV21()).access_token);

    emulator.setDelay("/v2/oauth/accessToken", 120);
    const started = performance.now();
    await client.issueChannelToken("client_credentials", A.channelId, A.channelSecret);
    assert.ok(performance.now() - started >= 110);
  });

  test("requests the SDK would never send get OAuth errors too", async () => {
    const json = await fetch(`${emulator.url}/v2/oauth/accessToken`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        grant_type: "client_credentials",
        client_id: A.channelId,
        client_secret: A.channelSecret,
      }),
    });
    assert.deepEqual(
      [json.status, ((await json.json()) as { error: string }).error],
      [400, "invalid_request"],
    );
    assert.deepEqual((await postForm("/v2/oauth/accessToken", { client_id: A.channelId })).json, {
      error: "invalid_request",
      error_description: "grant_type is required",
    });
    const noSecret = await postForm("/v2/oauth/accessToken", {
      grant_type: "client_credentials",
      client_id: "1",
    });
    assert.deepEqual([noSecret.status, (noSecret.json as { error: string }).error], [400, "invalid_request"]);
    const noToken = await postForm("/v2/oauth/revoke", {});
    assert.deepEqual([noToken.status, (noToken.json as { error: string }).error], [400, "invalid_request"]);
    const noAssertion = await postForm("/oauth2/v3/token", {
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
    });
    assert.deepEqual(
      [noAssertion.status, (noAssertion.json as { error: string }).error],
      [400, "invalid_request"],
    );
  });
});

test("docs/emulator.md lists exactly the token routes oauth.ts serves", () => {
  const page = readFileSync("docs/emulator.md", "utf8");
  const source = readFileSync("emulator/oauth.ts", "utf8");
  const section = page.slice(
    page.indexOf("## Channel access tokens (OAuth)"),
    page.indexOf("## The control API"),
  );
  const documented = [...section.matchAll(/^\| `(\/[^`]+)` \| (GET|POST) \|/gm)].map(
    (m) => `${m[2]} ${m[1]}`,
  );
  const served = [...source.matchAll(/route\("(GET|POST)", "([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.equal(served.length, 8);
  assert.deepEqual(documented.sort(), served.sort());
});
