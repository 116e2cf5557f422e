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

/**
 * The HMAC key of a Standard Webhooks secret: a `whsec_` secret carries it base64-encoded after the
 * prefix, as the specification says; any other secret is its UTF-8 bytes. Made once per partner: a
 * key object is several times cheaper per signature than raw key bytes.
 */
export function standardWebhookKey(secret: string): KeyObject {
  const bytes = secret.startsWith("whsec_")
    ? Buffer.from(secret.slice(6), "base64")
    : Buffer.from(secret, "utf8");
  return createSecretKey(bytes);
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
