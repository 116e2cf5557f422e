// LINE's channel access token API for the emulator: it issues, verifies and revokes v2.1 (JWT assertion),
// stateless and short-lived tokens, which then authenticate Messaging API calls like a configured token.
import { createPublicKey, type JsonWebKey, type KeyObject, randomBytes, verify } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/** A channel access token the OAuth endpoints issued; times are ms on the emulator's clock. */
export type IssuedToken = {
  token: string;
  channelId: string;
  type: "v2.1" | "stateless" | "shortLived";
  /** The `key_id` LINE answers for a v2.1 token; null for the other types. */
  keyId: string | null;
  issuedAt: number;
  expiresAt: number;
  revokedAt: number | null;
};

const MINUTE_S = 60;
const DAY_S = 24 * 60 * MINUTE_S;
// LINE's limits: a JWT assertion lives at most 30 minutes, a v2.1 token at most 30 days.
const ASSERTION_MAX_LIFETIME_S = 30 * MINUTE_S;
const TOKEN_EXP_MAX_S = 30 * DAY_S;
const STATELESS_TTL_S = 15 * MINUTE_S;
const SHORT_LIVED_TTL_S = 30 * DAY_S;
const MAX_LIVE_TOKENS = 30;
const AUDIENCE = "https://api.line.me/";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SCOPE = "profile chat_message.write";
const SECRET_FIELDS = ["client_secret", "client_assertion", "access_token"];
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const FORM = /^application\/x-www-form-urlencoded\s*(;|$)/i;

/** Issued tokens and the channels' assertion signing keys, on the emulator's clock. */
export class TokenRegistry {
  readonly #now: () => number;
  // Insertion order is issue order: issuedTokens lists oldest first and the short-lived limit drops the oldest.
  readonly #tokens = new Map<string, IssuedToken>();
  readonly #keys = new Map<string, Map<string, KeyObject>>();

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Registers (or replaces, by `kid`) a channel's public assertion key; throws for keys LINE would refuse. */
  addKey(channelId: string, jwk: JsonWebKey): void {
    if (typeof jwk.kid !== "string" || jwk.kid === "")
      throw new Error("line emulator: an assertion key needs a kid");
    if (jwk.d !== undefined) throw new Error("line emulator: register the public key, not the private one");
    const key = createPublicKey({ key: jwk, format: "jwk" });
    if (key.asymmetricKeyType !== "rsa" || key.asymmetricKeyDetails?.modulusLength !== 2048) {
      throw new Error("line emulator: an assertion key must be a 2048-bit RSA key");
    }
    const keys = this.#keys.get(channelId) ?? new Map<string, KeyObject>();
    keys.set(jwk.kid, key);
    this.#keys.set(channelId, keys);
  }

  key(channelId: string, kid: unknown): KeyObject | undefined {
    return typeof kid === "string" ? this.#keys.get(channelId)?.get(kid) : undefined;
  }

  issue(channelId: string, type: IssuedToken["type"], ttlSeconds: number): IssuedToken {
    const issuedAt = this.#now();
    const token: IssuedToken = {
      token: randomBytes(64).toString("base64url"),
      channelId,
      type,
      keyId: type === "v2.1" ? randomBytes(16).toString("base64url") : null,
      issuedAt,
      expiresAt: issuedAt + ttlSeconds * 1000,
      revokedAt: null,
    };
    this.#tokens.set(token.token, token);
    return token;
  }

  find(token: string): IssuedToken | undefined {
    return this.#tokens.get(token);
  }

  isLive(token: IssuedToken): boolean {
    return token.revokedAt === null && this.#now() < token.expiresAt;
  }

  /** The channel a live issued token authenticates. */
  channelOf(token: string): string | undefined {
    const issued = this.#tokens.get(token);
    return issued !== undefined && this.isLive(issued) ? issued.channelId : undefined;
  }

  /** Live tokens of a type for a channel, oldest first. */
  live(channelId: string, type: IssuedToken["type"]): IssuedToken[] {
    return [...this.#tokens.values()].filter(
      (t) => t.channelId === channelId && t.type === type && this.isLive(t),
    );
  }

  /** Revokes a token, whatever its type; true when it was live. */
  revoke(token: string): boolean {
    const issued = this.#tokens.get(token);
    if (issued === undefined || !this.isLive(issued)) return false;
    issued.revokedAt = this.#now();
    return true;
  }

  /** Copies of the issued tokens, oldest first. */
  list(channelId?: string): IssuedToken[] {
    return [...this.#tokens.values()]
      .filter((t) => channelId === undefined || t.channelId === channelId)
      .map((t) => ({ ...t }));
  }
}

/** An answer of the OAuth routes. */
export type OAuthAnswer = { status: number; body?: unknown };
type OAuthErrorCode = "invalid_request" | "invalid_client" | "invalid_grant" | "unsupported_grant_type";
type Params = Record<string, string>;

function oauthError(error: OAuthErrorCode, description: string): OAuthAnswer {
  return { status: 400, body: { error, error_description: description } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// The string parameters of a form body or query (a repeated query parameter is ignored).
function paramsOf(source: unknown): Params {
  const params: Params = {};
  if (!isRecord(source)) return params;
  for (const [name, value] of Object.entries(source)) if (typeof value === "string") params[name] = value;
  return params;
}

// What `calls` records: the body with every credential masked.
function redact(body: unknown): unknown {
  if (!isRecord(body)) return body;
  const copy = { ...body };
  for (const field of SECRET_FIELDS) if (field in copy) copy[field] = "***";
  return copy;
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

// The JWT's claimed issuer, unverified: only to say which channel a call concerns.
function claimedIssuer(jwt: string | undefined): string | undefined {
  const payload = jwt === undefined ? undefined : decodeJson(jwt.split(".")[1] ?? "");
  return typeof payload?.iss === "string" ? payload.iss : undefined;
}

/**
 * Checks a client assertion as LINE does (RFC 7523 client authentication, so every flaw of the JWT itself
 * is `invalid_client`) and answers the channel it authenticates and its payload, or the error.
 */
export function verifyAssertion(
  jwt: string,
  registry: TokenRegistry,
  isChannel: (channelId: string) => boolean,
  nowMs: number,
): { channelId: string; payload: Record<string, unknown> } | OAuthAnswer {
  const parts = jwt.split(".");
  const [encodedHeader = "", encodedPayload = "", encodedSignature = ""] = parts;
  const header = decodeJson(encodedHeader);
  const payload = decodeJson(encodedPayload);
  if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p)) || !header || !payload) {
    return oauthError("invalid_client", "client_assertion is not a well-formed JWT");
  }
  if (header.alg !== "RS256" || header.typ !== "JWT") {
    return oauthError("invalid_client", "the JWT header must have alg RS256 and typ JWT");
  }
  const channelId = payload.iss;
  if (typeof channelId !== "string" || payload.sub !== channelId || !isChannel(channelId)) {
    return oauthError("invalid_client", "iss and sub must both be the channel ID");
  }
  const key = registry.key(channelId, header.kid);
  if (key === undefined) return oauthError("invalid_client", "unknown kid");
  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`, "ascii");
  if (!verify("RSA-SHA256", signed, key, Buffer.from(encodedSignature, "base64url"))) {
    return oauthError("invalid_client", "invalid signature");
  }
  if (payload.aud !== AUDIENCE) return oauthError("invalid_client", `aud must be ${AUDIENCE}`);
  const exp = payload.exp;
  if (typeof exp !== "number" || exp * 1000 <= nowMs) return oauthError("invalid_client", "the JWT expired");
  if (exp * 1000 > nowMs + ASSERTION_MAX_LIFETIME_S * 1000) {
    return oauthError("invalid_client", "exp must be at most 30 minutes from now");
  }
  return { channelId, payload };
}

/** What the OAuth routes need from the emulator. */
export interface OAuthHost {
  app: FastifyInstance;
  tokens: TokenRegistry;
  now: () => number;
  /** The channel's secret, or undefined for a channel the emulator does not have. */
  channel(channelId: string): { channelSecret: string } | undefined;
  /**
   * Answers like every LINE API route: notes the channel and the (masked) body for `calls`, applies
   * failNext and setDelay, then sends `run`'s answer.
   */
  serve(
    req: FastifyRequest,
    reply: FastifyReply,
    note: { channelId: string | null; redact: (body: unknown) => unknown },
    run: () => OAuthAnswer,
  ): Promise<FastifyReply>;
}

/** Serves LINE's channel access token endpoints (`/oauth2/v2.1/*`, `/oauth2/v3/token`, `/v2/oauth/*`). */
export function registerOAuthRoutes(host: OAuthHost): void {
  const { app, tokens, now } = host;

  // LINE's token endpoints take form bodies, as OAuth does.
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  // The channel a call names (client_id, the assertion's iss, or the token's channel), for `calls`.
  function concerns(params: Params): string | null {
    const named =
      params.client_id ??
      claimedIssuer(params.client_assertion) ??
      (params.access_token === undefined ? undefined : tokens.find(params.access_token)?.channelId);
    return named !== undefined && host.channel(named) !== undefined ? named : null;
  }

  function route(method: "GET" | "POST", url: string, handle: (params: Params) => OAuthAnswer): void {
    app.route({
      method,
      url,
      handler: (req, reply) => {
        const params = paramsOf(method === "GET" ? req.query : req.body);
        // A JSON body would parse too, but LINE only reads forms: catch a client that sends anything else.
        const form = method === "GET" || FORM.test(req.headers["content-type"] ?? "");
        return host.serve(req, reply, { channelId: concerns(params), redact }, () =>
          form
            ? handle(params)
            : oauthError("invalid_request", "the body must be application/x-www-form-urlencoded"),
        );
      },
    });
  }

  function grantError(params: Params): OAuthAnswer | undefined {
    if (params.grant_type === undefined) return oauthError("invalid_request", "grant_type is required");
    if (params.grant_type !== "client_credentials") {
      return oauthError("unsupported_grant_type", "grant_type must be client_credentials");
    }
    return undefined;
  }

  // The channel a client assertion authenticates, or the error.
  function assertedChannel(
    params: Params,
  ): { channelId: string; payload: Record<string, unknown> } | OAuthAnswer {
    if (params.client_assertion_type !== JWT_BEARER) {
      return oauthError("invalid_request", `client_assertion_type must be ${JWT_BEARER}`);
    }
    if (params.client_assertion === undefined || params.client_assertion === "") {
      return oauthError("invalid_request", "client_assertion is required");
    }
    return verifyAssertion(params.client_assertion, tokens, (id) => host.channel(id) !== undefined, now());
  }

  // The channel a client id and secret authenticate, or the error.
  function secretChannel(params: Params): string | OAuthAnswer {
    const { client_id: clientId, client_secret: clientSecret } = params;
    if (clientId === undefined || clientSecret === undefined) {
      return oauthError("invalid_request", "client_id and client_secret are required");
    }
    if (host.channel(clientId)?.channelSecret !== clientSecret) {
      return oauthError("invalid_client", "invalid client_id or client_secret");
    }
    return clientId;
  }

  function verifyAnswer(params: Params): OAuthAnswer {
    if (params.access_token === undefined) return oauthError("invalid_request", "access_token is required");
    const issued = tokens.find(params.access_token);
    if (issued === undefined || issued.revokedAt !== null) {
      return oauthError("invalid_request", "invalid access token");
    }
    const left = issued.expiresAt - now();
    if (left <= 0) return oauthError("invalid_request", "access token expired");
    return {
      status: 200,
      body: { client_id: issued.channelId, expires_in: Math.floor(left / 1000), scope: SCOPE },
    };
  }

  // Revocation answers 200 for tokens that are unknown or already invalid (RFC 7009); stateless tokens
  // cannot be revoked at all.
  function revoke(token: string, channelId?: string): OAuthAnswer {
    const issued = tokens.find(token);
    if (
      issued !== undefined &&
      issued.type !== "stateless" &&
      (channelId ?? issued.channelId) === issued.channelId
    ) {
      tokens.revoke(token);
    }
    return { status: 200, body: "" };
  }

  route("POST", "/oauth2/v2.1/token", (params) => {
    const refused = grantError(params);
    if (refused !== undefined) return refused;
    const asserted = assertedChannel(params);
    if ("status" in asserted) return asserted;
    const tokenExp = asserted.payload.token_exp;
    if (!Number.isInteger(tokenExp) || (tokenExp as number) < 1 || (tokenExp as number) > TOKEN_EXP_MAX_S) {
      return oauthError(
        "invalid_request",
        `token_exp must be an integer from 1 to ${TOKEN_EXP_MAX_S} seconds`,
      );
    }
    if (tokens.live(asserted.channelId, "v2.1").length >= MAX_LIVE_TOKENS) {
      return oauthError("invalid_request", "the channel already has 30 valid channel access tokens v2.1");
    }
    const issued = tokens.issue(asserted.channelId, "v2.1", tokenExp as number);
    return {
      status: 200,
      body: { access_token: issued.token, token_type: "Bearer", expires_in: tokenExp, key_id: issued.keyId },
    };
  });

  route("GET", "/oauth2/v2.1/verify", verifyAnswer);

  route("POST", "/oauth2/v2.1/revoke", (params) => {
    const channelId = secretChannel(params);
    if (typeof channelId !== "string") return channelId;
    if (params.access_token === undefined) return oauthError("invalid_request", "access_token is required");
    return revoke(params.access_token, channelId);
  });

  route("GET", "/oauth2/v2.1/tokens/kid", (params) => {
    const asserted = assertedChannel(params);
    if ("status" in asserted) return asserted;
    return { status: 200, body: { kids: tokens.live(asserted.channelId, "v2.1").map((t) => t.keyId) } };
  });

  route("POST", "/oauth2/v3/token", (params) => {
    const refused = grantError(params);
    if (refused !== undefined) return refused;
    const byAssertion = params.client_assertion_type !== undefined || params.client_assertion !== undefined;
    const asserted = byAssertion ? assertedChannel(params) : secretChannel(params);
    if (typeof asserted !== "string" && "status" in asserted) return asserted;
    const channelId = typeof asserted === "string" ? asserted : asserted.channelId;
    const issued = tokens.issue(channelId, "stateless", STATELESS_TTL_S);
    return {
      status: 200,
      body: { token_type: "Bearer", access_token: issued.token, expires_in: STATELESS_TTL_S },
    };
  });

  route("POST", "/v2/oauth/accessToken", (params) => {
    const refused = grantError(params);
    if (refused !== undefined) return refused;
    const channelId = secretChannel(params);
    if (typeof channelId !== "string") return channelId;
    // LINE keeps at most 30 short-lived tokens a channel: a new one revokes the oldest.
    const live = tokens.live(channelId, "shortLived");
    const excess = live.length - (MAX_LIVE_TOKENS - 1);
    for (const old of live.slice(0, Math.max(0, excess))) tokens.revoke(old.token);
    const issued = tokens.issue(channelId, "shortLived", SHORT_LIVED_TTL_S);
    return {
      status: 200,
      body: { access_token: issued.token, expires_in: SHORT_LIVED_TTL_S, token_type: "Bearer" },
    };
  });

  route("POST", "/v2/oauth/verify", verifyAnswer);

  route("POST", "/v2/oauth/revoke", (params) => {
    if (params.access_token === undefined) return oauthError("invalid_request", "access_token is required");
    return revoke(params.access_token);
  });
}
