// Unit tests for partner API keys: the Bearer header, -401 for missing or unknown keys, -406 outside a key's channels.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TalkgateError } from "../core/errors.ts";
import { PartnerKeys } from "./partner-auth.ts";

const JEDAI_KEY = "tg_live_jedai_0123456789abcdef";
const JEDAI_OLD_KEY = "tg_live_jedai_rotated_fedcba9876";
const SITH_KEY = "tg_live_sith_aaaaaaaaaaaaaaaaaaaa";
const IDLE_KEY = "tg_live_idle_bbbbbbbbbbbbbbbbbbbb";

const keys = new PartnerKeys(
  [
    { id: "jedai", apiKeys: [JEDAI_KEY, JEDAI_OLD_KEY] },
    { id: "sith", apiKeys: [SITH_KEY] },
    { id: "idle", apiKeys: [IDLE_KEY] },
  ],
  [
    { senderKey: "1656168303", partner: "jedai" },
    { senderKey: "1656168304", partner: "jedai" },
    { senderKey: "2000000001", partner: "sith" },
  ],
);

/** Runs `fn` and returns the TalkgateError it throws (failing when it throws nothing or something else). */
function thrown(fn: () => unknown): TalkgateError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TalkgateError, `not a TalkgateError: ${String(error)}`);
    return error;
  }
  assert.fail("did not throw");
}

const ACCEPTED: Array<{ header: string; partnerId: string }> = [
  { header: `Bearer ${JEDAI_KEY}`, partnerId: "jedai" },
  { header: `Bearer ${JEDAI_OLD_KEY}`, partnerId: "jedai" },
  { header: `Bearer ${SITH_KEY}`, partnerId: "sith" },
  { header: `Bearer ${IDLE_KEY}`, partnerId: "idle" },
  // The auth scheme is case-insensitive (RFC 9110 §11.1).
  { header: `bearer ${JEDAI_KEY}`, partnerId: "jedai" },
  { header: `BEARER ${SITH_KEY}`, partnerId: "sith" },
  { header: `Bearer   ${JEDAI_KEY}`, partnerId: "jedai" },
  { header: `Bearer ${JEDAI_KEY}  `, partnerId: "jedai" },
];

for (const c of ACCEPTED) {
  test(`authenticate accepts ${JSON.stringify(c.header.replace(/tg_live_\w+/, "<key>"))} as ${c.partnerId}`, () => {
    assert.equal(keys.authenticate(c.header).partnerId, c.partnerId);
  });
}

const REFUSED: Array<{ name: string; header: string | undefined }> = [
  { name: "no header", header: undefined },
  { name: "empty header", header: "" },
  { name: "Bearer without a key", header: "Bearer" },
  { name: "Bearer and spaces only", header: "Bearer   " },
  { name: "the key alone", header: JEDAI_KEY },
  { name: "another scheme", header: `Basic ${JEDAI_KEY}` },
  { name: "no space after Bearer", header: `Bearer${JEDAI_KEY}` },
  { name: "leading space", header: ` Bearer ${JEDAI_KEY}` },
  { name: "wrong key", header: "Bearer tg_live_jedai_0123456789abcdeX" },
  { name: "key prefix", header: `Bearer ${JEDAI_KEY.slice(0, -1)}` },
  { name: "key with a suffix", header: `Bearer ${JEDAI_KEY}0` },
  { name: "key in upper case", header: `Bearer ${JEDAI_KEY.toUpperCase()}` },
  { name: "two keys", header: `Bearer ${JEDAI_KEY} ${SITH_KEY}` },
  { name: "key in quotes", header: `Bearer "${JEDAI_KEY}"` },
  { name: "partner id as key", header: "Bearer jedai" },
];

for (const c of REFUSED) {
  test(`authenticate refuses ${c.name} with -401`, () => {
    const error = thrown(() => keys.authenticate(c.header));
    assert.equal(error.code, "-401");
    assert.equal(error.status, 401);
    // The key itself is never echoed back.
    assert.ok(!error.message.includes(JEDAI_KEY.slice(8)), error.message);
  });
}

test("requireChannel passes for each of the partner's own channels, with either of its keys", () => {
  for (const key of [JEDAI_KEY, JEDAI_OLD_KEY]) {
    const access = keys.authenticate(`Bearer ${key}`);
    assert.doesNotThrow(() => access.requireChannel("1656168303"));
    assert.doesNotThrow(() => access.requireChannel("1656168304"));
  }
  assert.doesNotThrow(() => keys.authenticate(`Bearer ${SITH_KEY}`).requireChannel("2000000001"));
});

test("requireChannel answers -406 alike for another partner's channel and for an unknown one", () => {
  const jedai = keys.authenticate(`Bearer ${JEDAI_KEY}`);
  const foreign = thrown(() => jedai.requireChannel("2000000001"));
  const unknown = thrown(() => jedai.requireChannel("2000000009"));
  for (const error of [foreign, unknown]) {
    assert.equal(error.code, "-406");
    assert.equal(error.status, 404);
  }
  // Same shape: only the sender_key asked about differs, so a foreign channel cannot be told from a missing one.
  assert.equal(foreign.message.replace("2000000001", "<k>"), unknown.message.replace("2000000009", "<k>"));
  assert.ok(!/sith|jedai|partner|another/i.test(foreign.message), foreign.message);
});

test("requireChannel confines each key to its own partner, both ways", () => {
  const sith = keys.authenticate(`Bearer ${SITH_KEY}`);
  assert.equal(thrown(() => sith.requireChannel("1656168303")).code, "-406");
  assert.equal(thrown(() => sith.requireChannel("1656168304")).code, "-406");
  // A partner without channels reaches none.
  const idle = keys.authenticate(`Bearer ${IDLE_KEY}`);
  for (const senderKey of ["1656168303", "2000000001", ""]) {
    assert.equal(thrown(() => idle.requireChannel(senderKey)).code, "-406");
  }
});

test("the keys of one partner share one access, distinct from other partners'", () => {
  const a = keys.authenticate(`Bearer ${JEDAI_KEY}`);
  const b = keys.authenticate(`Bearer ${JEDAI_OLD_KEY}`);
  assert.equal(a.partnerId, b.partnerId);
  assert.notEqual(keys.authenticate(`Bearer ${SITH_KEY}`).partnerId, a.partnerId);
});

test("no partners: every key is refused", () => {
  const none = new PartnerKeys([], [{ senderKey: "1656168303", partner: "jedai" }]);
  assert.equal(thrown(() => none.authenticate(`Bearer ${JEDAI_KEY}`)).code, "-401");
});
