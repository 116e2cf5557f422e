// Passwords (scrypt) and bearer tokens (random, kept as SHA-256): how operators and partners prove who they are.
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** What a token is for, shown in its prefix so that a leaked one can be recognised (and refused early). */
export const TOKEN_PREFIX = {
  "partner-key": "tgk_",
  "operator-token": "tgo_",
  session: "tgs_",
} as const;

/** A new random token of the kind: its prefix and 32 random bytes in base64url. */
export function newToken(kind: keyof typeof TOKEN_PREFIX): string {
  return `${TOKEN_PREFIX[kind]}${randomBytes(32).toString("base64url")}`;
}

/** A token's SHA-256 in hex: what is stored and looked up (tokens are random, so no salt is needed). */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Names a token without revealing it: the first 16 hex digits of its digest. */
export function tokenId(token: string): string {
  return tokenDigest(token).slice(0, 16);
}

/** Whether two digests (hex) are equal, compared in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}

// scrypt's cost: 2^15 × 8 × 128 bytes = 32 MiB and about 0.1 s per hash.
const SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize("NFC"),
      salt,
      KEY_LENGTH,
      { ...cost, maxmem: 128 * cost.N * cost.r * 2 },
      (error, key) => (error ? reject(error) : resolve(key)),
    ),
  );
}

/** A password's hash: `scrypt$N$r$p$<salt>$<key>` (base64url), what `talkgate hash-password` prints. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT);
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64url"), key.toString("base64url")].join(
    "$",
  );
}

/** What is wrong with a password hash, or null when {@link verifyPassword} can use it. */
export function passwordHashProblem(hash: string): string | null {
  const parts = hash.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt")
    return "is not a talkgate password hash (make one with: talkgate hash-password)";
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!Number.isInteger(Math.log2(N)) || N < 1 << 14 || !(r >= 8 && r <= 32) || !(p >= 1 && p <= 16))
    return "has scrypt parameters too weak or out of range (make one with: talkgate hash-password)";
  return null;
}

/** Whether `password` matches `hash` (compared in constant time); false for a hash it cannot read. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (passwordHashProblem(hash)) return false;
  const [, N, r, p, salt, key] = hash.split("$") as [string, string, string, string, string, string];
  const expected = Buffer.from(key, "base64url");
  const derived = await derive(password, Buffer.from(salt, "base64url"), {
    N: Number(N),
    r: Number(r),
    p: Number(p),
  });
  return derived.length === expected.length && timingSafeEqual(derived, expected);
}
