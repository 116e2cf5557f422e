// A channel's LINE credential (SPEC §11): a static token, or how talkgate issues its own (v2.1 with a signed JWT
// assertion, stateless, short-lived), and when an issued token is renewed.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  sign,
} from "node:crypto";

/** LINE's longest token lifetime: 30 days, for v2.1 (`token_exp`) and short-lived tokens. */
export const MAX_TOKEN_TTL_SECONDS = 30 * 24 * 60 * 60;
/** The audience of every assertion (LINE's reference). */
export const ASSERTION_AUDIENCE = "https://api.line.me/";
/** How long an assertion is good for: LINE takes at most 30 minutes. */
export const ASSERTION_LIFETIME_SECONDS = 30 * 60;
/** LINE keeps at most this many v2.1 (or short-lived) tokens of a channel alive. */
export const LINE_TOKEN_LIMIT = 30;

export interface V21Credential {
  type: "v2.1";
  /** The key id LINE gave when the public key was registered. */
  kid: string;
  privateKey: JsonWebKey;
  /** The lifetime asked for each token (`token_exp`). */
  ttlSeconds: number;
}

/** A token talkgate issues and renews by itself. */
export type ManagedCredential = V21Credential | { type: "stateless" } | { type: "shortLived" };
export type AccessTokenCredential = { type: "static"; token: string } | ManagedCredential;
export type ManagedTokenType = ManagedCredential["type"];

export const isManaged = (credential: AccessTokenCredential): credential is ManagedCredential =>
  credential.type !== "static";

/**
 * Names the credential an issued token came from without revealing it: a token issued under another type
 * or key is not used (and is re-issued) once the channel's credential changes.
 */
export function credentialId(credential: ManagedCredential): string {
  if (credential.type !== "v2.1") return credential.type;
  const modulus = typeof credential.privateKey.n === "string" ? credential.privateKey.n : "";
  const digest = createHash("sha256").update(`${credential.kid}\n${modulus}`).digest("hex").slice(0, 16);
  return `v2.1:${digest}`;
}

/** Why a JWK cannot sign v2.1 assertions, or null when it can. */
export function privateKeyProblem(jwk: unknown): string | null {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) return "must be a JWK object";
  const key = jwk as Record<string, unknown>;
  if (key.kty !== "RSA") return 'must be an RSA key (kty "RSA")';
  if (typeof key.d !== "string")
    return 'must be the private key (it has no "d"; the public one goes to LINE)';
  try {
    const details = createPrivateKey({ key: key as JsonWebKey, format: "jwk" }).asymmetricKeyDetails;
    if ((details?.modulusLength ?? 0) < 2048) return "must be an RSA key of at least 2048 bits";
  } catch (error) {
    return `is not a usable RSA private key (${(error as Error).message})`;
  }
  return null;
}

/**
 * The signed JWT (RS256) that asks LINE for a v2.1 token, or for the list of live key ids
 * (`tokenTtlSeconds` omitted). LINE: iss and sub are the channel ID, aud is api.line.me, exp at most 30 min on.
 */
export function signAssertion(input: {
  channelId: string;
  kid: string;
  privateKey: JsonWebKey;
  now: number;
  tokenTtlSeconds?: number;
}): string {
  const issuedAt = Math.floor(input.now / 1000);
  const header = { alg: "RS256", typ: "JWT", kid: input.kid };
  const payload = {
    iss: input.channelId,
    sub: input.channelId,
    aud: ASSERTION_AUDIENCE,
    exp: issuedAt + ASSERTION_LIFETIME_SECONDS,
    ...(input.tokenTtlSeconds === undefined ? {} : { token_exp: input.tokenTtlSeconds }),
  };
  const signed = `${base64url(header)}.${base64url(payload)}`;
  const key = createPrivateKey({ key: input.privateKey, format: "jwk" });
  return `${signed}.${sign("RSA-SHA256", Buffer.from(signed), key).toString("base64url")}`;
}

const base64url = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A new 2048-bit RSA key pair for v2.1 assertions, as JWKs: the public one for LINE, the private one for talkgate. */
export function generateAssertionKeyPair(): { publicKey: JsonWebKey; privateKey: JsonWebKey } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    publicKey: { ...createPublicKey(privateKey).export({ format: "jwk" }), alg: "RS256", use: "sig" },
    privateKey: { ...privateKey.export({ format: "jwk" }), alg: "RS256", use: "sig" },
  };
}

/** The public half of a private JWK: what is registered at LINE (which then names its `kid`). */
export function publicKeyOf(privateKey: JsonWebKey): JsonWebKey {
  const key = createPublicKey(createPrivateKey({ key: privateKey, format: "jwk" })).export({ format: "jwk" });
  return { ...key, alg: "RS256", use: "sig" };
}

/** When issued tokens are renewed. */
export interface RenewalPolicy {
  /** The fraction of a token's lifetime after which it is renewed (0.8: a 30-day token on day 24). */
  renewAfterFraction: number;
  /** A stateless token (15 minutes) is renewed this long after it was issued, if that comes first. */
  statelessRenewAfterMs: number;
}

/** When a token issued at `issuedAt`, good until `expiresAt`, is to be renewed. */
export function renewalTime(
  type: ManagedTokenType,
  token: { issuedAt: number; expiresAt: number },
  policy: RenewalPolicy,
): number {
  const lifetime = Math.max(token.expiresAt - token.issuedAt, 0);
  let after = lifetime * policy.renewAfterFraction;
  if (type === "stateless") after = Math.min(after, policy.statelessRenewAfterMs);
  return token.issuedAt + Math.floor(after);
}

/** Whether a token replaced by a newer one is revoked (stateless tokens cannot be, and simply expire). */
export const isRevocable = (type: ManagedTokenType): type is RevocableTokenType => type !== "stateless";
export type RevocableTokenType = Exclude<ManagedTokenType, "stateless">;

const FIELDS: Record<AccessTokenCredential["type"], readonly string[]> = {
  static: ["type", "token"],
  "v2.1": ["type", "kid", "privateKey", "ttlSeconds"],
  stateless: ["type"],
  shortLived: ["type"],
};

/**
 * Reads an `accessToken` object (configuration file or admin API): the credential, or every problem, each
 * naming its field under `field`. A v2.1 `privateKey` may be given as its JSON text.
 */
export function readAccessToken(
  value: unknown,
  field: string,
): { ok: true; credential: AccessTokenCredential } | { ok: false; problems: string[] } {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { ok: false, problems: [`${field}: must be an object with a type`] };
  const input = value as Record<string, unknown>;
  const type = input.type as AccessTokenCredential["type"];
  if (typeof type !== "string" || !Object.hasOwn(FIELDS, type))
    return {
      ok: false,
      problems: [
        `${field}.type: must be one of ${Object.keys(FIELDS)
          .map((t) => JSON.stringify(t))
          .join(", ")}`,
      ],
    };
  const problems = Object.keys(input)
    .filter((key) => !FIELDS[type].includes(key))
    .map((key) => `${field}.${key}: not a field of a ${type} token`);
  if (type === "static") {
    if (typeof input.token !== "string" || input.token === "")
      problems.push(`${field}.token: must be the channel access token (a non-empty string)`);
    return problems.length > 0
      ? { ok: false, problems }
      : { ok: true, credential: { type, token: input.token as string } };
  }
  if (type !== "v2.1")
    return problems.length > 0 ? { ok: false, problems } : { ok: true, credential: { type } };
  if (typeof input.kid !== "string" || input.kid.trim() === "")
    problems.push(`${field}.kid: must be the key id LINE showed when the public key was registered`);
  let privateKey = input.privateKey;
  if (typeof privateKey === "string") {
    try {
      privateKey = JSON.parse(privateKey);
    } catch {
      privateKey = undefined;
    }
  }
  const keyProblem = privateKeyProblem(privateKey);
  if (keyProblem) problems.push(`${field}.privateKey: ${keyProblem}`);
  const ttlSeconds = input.ttlSeconds === undefined ? MAX_TOKEN_TTL_SECONDS : input.ttlSeconds;
  if (
    !Number.isInteger(ttlSeconds) ||
    (ttlSeconds as number) < 60 ||
    (ttlSeconds as number) > MAX_TOKEN_TTL_SECONDS
  )
    problems.push(`${field}.ttlSeconds: must be an integer from 60 to ${MAX_TOKEN_TTL_SECONDS} (30 days)`);
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    credential: {
      type,
      kid: input.kid as string,
      privateKey: privateKey as JsonWebKey,
      ttlSeconds: ttlSeconds as number,
    },
  };
}
