// HMAC signatures: LINE's x-line-signature on webhooks in, Standard Webhooks on deliveries out.
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";

/**
 * Checks LINE's `x-line-signature`: base64 HMAC-SHA256 of the exact body bytes keyed with the channel
 * secret, compared in constant time. The bytes must be the ones received, never a re-serialisation.
 */
export function verifyLineSignature(
  channelSecret: string,
  body: Uint8Array,
  signature: string | undefined,
): boolean {
  if (!signature) return false;
  const expected = createHmac("sha256", channelSecret).update(body).digest();
  const given = Buffer.from(signature, "base64");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Computes LINE's signature for a body (used by tests, the emulator and the benchmark's clients). */
export function lineSignature(channelSecret: string, body: string | Uint8Array): string {
  return createHmac("sha256", channelSecret).update(body).digest("base64");
}

/** Fewest random bytes in a signing secret (Standard Webhooks secrets are 24 to 64 bytes). */
export const MIN_SIGNING_SECRET_BYTES = 24;

const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * What is wrong with a partner signing secret, or null when the Standard Webhooks libraries partners
 * verify with (standardwebhooks, svix) can use it: `whsec_` and standard, padded base64 of at least 24 bytes.
 * Those libraries throw on URL-safe base64 and treat anything else as base64 too.
 */
export function signingSecretProblem(secret: string): string | null {
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : null;
  if (encoded === null) return 'must start with "whsec_"';
  if (!STANDARD_BASE64.test(encoded)) return 'must go on with standard base64 (A-Z a-z 0-9 + /, "=" padding)';
  const bytes = Buffer.from(encoded, "base64").length;
  if (bytes < MIN_SIGNING_SECRET_BYTES)
    return `holds ${bytes} byte${bytes === 1 ? "" : "s"}; at least ${MIN_SIGNING_SECRET_BYTES} are needed`;
  return null;
}

/**
 * The HMAC key of a Standard Webhooks secret (`whsec_` + base64, see {@link signingSecretProblem}): the
 * base64-decoded part after the prefix. Made once per partner: a key object is several times cheaper
 * per signature than raw key bytes.
 */
export function standardWebhookKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret.slice("whsec_".length), "base64"));
}

/** Standard Webhooks `webhook-signature` value (`v1,<base64>`), signing `id.timestamp.body`. */
export function standardWebhookSignature(
  secret: string | KeyObject,
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  const key = typeof secret === "string" ? standardWebhookKey(secret) : secret;
  const mac = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}
