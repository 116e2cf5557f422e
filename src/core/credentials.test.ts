// Unit tests for operator passwords (scrypt) and bearer tokens (prefix, digest, id).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  hashPassword,
  newToken,
  passwordHashProblem,
  sameDigest,
  tokenDigest,
  tokenId,
  verifyPassword,
} from "./credentials.ts";

test("a password verifies against its hash, a wrong one does not, and each hash has its own salt", async () => {
  const hash = await hashPassword("correct horse");
  assert.match(hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.equal(passwordHashProblem(hash), null);
  assert.equal(await verifyPassword("correct horse", hash), true);
  assert.equal(await verifyPassword("correct horsE", hash), false);
  assert.notEqual(await hashPassword("correct horse"), hash);
});

test("hashes talkgate cannot use, or too weak, are named as such and never verify", async () => {
  for (const bad of [
    "plain",
    "$2b$10$abcdefghijklmnopqrstuv",
    "scrypt$1024$8$1$c2FsdA$a2V5",
    "scrypt$32768$1$1$c2FsdA$a2V5",
  ]) {
    assert.match(passwordHashProblem(bad) ?? "", /talkgate hash-password/);
    assert.equal(await verifyPassword("x", bad), false);
  }
});

test("tokens: a prefix per kind, 32 random bytes, named by the start of their digest", () => {
  const token = newToken("operator-token");
  assert.match(token, /^tgo_[A-Za-z0-9_-]{43}$/);
  assert.match(newToken("partner-key"), /^tgk_/);
  assert.notEqual(newToken("operator-token"), token);
  assert.equal(tokenId(token), tokenDigest(token).slice(0, 16));
  assert.equal(sameDigest(tokenDigest(token), tokenDigest(token)), true);
  assert.equal(sameDigest(tokenDigest(token), tokenDigest(`${token}x`)), false);
  assert.equal(sameDigest(tokenDigest(token), "ab"), false);
});
