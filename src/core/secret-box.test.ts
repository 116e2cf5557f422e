// Unit tests for sealed secrets: round trips, binding to their context, key ids, rotation, and refusals.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { parseSecretKey, SecretBox, sealedKeyId } from "./secret-box.ts";

const keyA = parseSecretKey("K", randomBytes(32).toString("base64"));
const keyB = parseSecretKey("K", randomBytes(32).toString("base64"));

test("a sealed secret opens in its own context only, and never shows the secret", () => {
  const box = new SecretBox(keyA);
  const sealed = box.seal("channel-secret-123", "channel/1/channelSecret");
  assert.ok(!sealed.includes("channel-secret-123"));
  assert.equal(sealedKeyId(sealed), keyA.id);
  assert.equal(box.open(sealed, "channel/1/channelSecret"), "channel-secret-123");
  assert.throws(() => box.open(sealed, "channel/2/channelSecret"), /does not open with key/);
  assert.notEqual(box.seal("x", "c"), box.seal("x", "c"), "a fresh IV each time");
});

test("an altered value does not open", () => {
  const box = new SecretBox(keyA);
  const sealed = box.seal("token", "c");
  const parts = sealed.split(".");
  const body = Buffer.from(parts[3] ?? "", "base64url");
  body[0] = (body[0] ?? 0) ^ 1;
  parts[3] = body.toString("base64url");
  assert.throws(() => box.open(parts.join("."), "c"), /altered/);
});

test("rotation: a box with the previous key opens the old values and seals with the new one", () => {
  const old = new SecretBox(keyA).seal("s", "c");
  const rotated = new SecretBox(keyB, [keyA]);
  assert.ok(rotated.canOpen(old));
  assert.equal(rotated.open(old, "c"), "s");
  assert.equal(sealedKeyId(rotated.seal("s", "c")), keyB.id);
  assert.equal(new SecretBox(keyB).canOpen(old), false);
  assert.throws(() => new SecretBox(keyB).open(old, "c"), new RegExp(`sealed under key ${keyA.id}`));
});

test("keys must be 32 bytes of standard base64, and the message names the variable", () => {
  for (const bad of [
    "",
    "short",
    randomBytes(16).toString("base64"),
    `${randomBytes(32).toString("base64url")}-_`,
  ])
    assert.throws(
      () => parseSecretKey("TALKGATE_SECRET_KEY", bad),
      /^Error: TALKGATE_SECRET_KEY must be 32 random bytes/,
    );
  assert.match(keyA.id, /^[0-9a-f]{8}$/);
  assert.equal(sealedKeyId("plain text"), null);
});
