// Unit tests for LINE webhook signatures and Standard Webhooks signatures over exact bytes.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import {
  lineSignature,
  signingSecretProblem,
  standardWebhookSignature,
  verifyLineSignature,
} from "./signature.ts";

const SECRET = "8c570fbc8fc3bdb6d5b5c6dfb1ef4d21";
const BODY = '{"destination":"U1234","events":[{"type":"message","message":{"type":"text","text":"hi"}}]}';
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const hmac = (key: string | Buffer, data: string | Uint8Array): string =>
  createHmac("sha256", key).update(data).digest("base64");

test("lineSignature is base64 HMAC-SHA256 of the body keyed with the channel secret", () => {
  assert.equal(lineSignature(SECRET, BODY), hmac(SECRET, Buffer.from(BODY, "utf8")));
  assert.equal(lineSignature(SECRET, bytes(BODY)), lineSignature(SECRET, BODY));
});

const VALID = hmac(SECRET, bytes(BODY));
const VERIFY_CASES: Array<{
  name: string;
  secret: string;
  body: string;
  signature: string | undefined;
  ok: boolean;
}> = [
  { name: "valid signature", secret: SECRET, body: BODY, signature: VALID, ok: true },
  { name: "tampered body", secret: SECRET, body: BODY.replace("hi", "ho"), signature: VALID, ok: false },
  { name: "body with one extra space", secret: SECRET, body: `${BODY} `, signature: VALID, ok: false },
  { name: "wrong secret", secret: `${SECRET}x`, body: BODY, signature: VALID, ok: false },
  { name: "missing header", secret: SECRET, body: BODY, signature: undefined, ok: false },
  { name: "empty header", secret: SECRET, body: BODY, signature: "", ok: false },
  { name: "garbage header", secret: SECRET, body: BODY, signature: "not a signature at all!", ok: false },
  { name: "short base64", secret: SECRET, body: BODY, signature: "AAAA", ok: false },
  { name: "truncated valid signature", secret: SECRET, body: BODY, signature: VALID.slice(0, 20), ok: false },
  {
    name: "hex digest instead of base64",
    secret: SECRET,
    body: BODY,
    signature: createHmac("sha256", SECRET).update(BODY).digest("hex"),
    ok: false,
  },
  {
    name: "right length, wrong bytes",
    secret: SECRET,
    body: BODY,
    signature: Buffer.alloc(32, 7).toString("base64"),
    ok: false,
  },
  { name: "empty body signed", secret: SECRET, body: "", signature: hmac(SECRET, ""), ok: true },
];

for (const c of VERIFY_CASES) {
  test(`verifyLineSignature: ${c.name}`, () => {
    assert.equal(verifyLineSignature(c.secret, bytes(c.body), c.signature), c.ok);
  });
}

test("verifyLineSignature is over the exact bytes: \\uD83D\\uDE00 escapes and raw UTF-8 differ", () => {
  const escaped = '{"events":[{"message":{"text":"\\uD83D\\uDE00"}}]}';
  const raw = '{"events":[{"message":{"text":"😀"}}]}';
  // Both parse to the same value, and re-serialising the escaped form yields the raw form.
  assert.deepEqual(JSON.parse(escaped), JSON.parse(raw));
  assert.equal(JSON.stringify(JSON.parse(escaped)), raw);

  const escapedSignature = hmac(SECRET, bytes(escaped));
  const rawSignature = hmac(SECRET, bytes(raw));
  assert.notEqual(escapedSignature, rawSignature);
  assert.equal(verifyLineSignature(SECRET, bytes(escaped), escapedSignature), true);
  assert.equal(verifyLineSignature(SECRET, bytes(raw), rawSignature), true);
  assert.equal(verifyLineSignature(SECRET, bytes(raw), escapedSignature), false);
  assert.equal(verifyLineSignature(SECRET, bytes(escaped), rawSignature), false);
});

test("verifyLineSignature accepts non-UTF-8 bytes signed as they are", () => {
  const body = new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x80]);
  assert.equal(verifyLineSignature(SECRET, body, hmac(SECRET, body)), true);
  assert.equal(verifyLineSignature(SECRET, body.subarray(1), hmac(SECRET, body)), false);
});

test("verifyLineSignature keys the HMAC with the UTF-8 bytes of a non-ASCII secret", () => {
  const secret = "비밀-ซีเคร็ต";
  assert.equal(
    verifyLineSignature(secret, bytes(BODY), hmac(Buffer.from(secret, "utf8"), bytes(BODY))),
    true,
  );
});

const KEY_BYTES = Buffer.from("0123456789abcdef0123456789abcdef", "utf8");
const SW_CASES: Array<{ name: string; secret: string; key: Buffer }> = [
  {
    name: "whsec_ secret: key is the base64 after the prefix",
    secret: `whsec_${KEY_BYTES.toString("base64")}`,
    key: KEY_BYTES,
  },
];

for (const c of SW_CASES) {
  test(`standardWebhookSignature, ${c.name}`, () => {
    const id = "Uae87c693e28-0001-6156B47C";
    const timestamp = 1633072251;
    const body = '{"chat_type":"LINE","content":{"text":"안녕 😀"}}';
    const expected = `v1,${createHmac("sha256", c.key).update(`${id}.${timestamp}.${body}`, "utf8").digest("base64")}`;
    assert.equal(standardWebhookSignature(c.secret, id, timestamp, body), expected);
    assert.notEqual(standardWebhookSignature(c.secret, id, timestamp + 1, body), expected);
    assert.notEqual(standardWebhookSignature(c.secret, `${id}x`, timestamp, body), expected);
    assert.notEqual(standardWebhookSignature(c.secret, id, timestamp, `${body} `), expected);
  });
}

test("standardWebhookSignature: a whsec_ secret is not used as its literal text", () => {
  const secret = `whsec_${KEY_BYTES.toString("base64")}`;
  const literal = `v1,${hmac(secret, "id.1.{}")}`;
  assert.notEqual(standardWebhookSignature(secret, "id", 1, "{}"), literal);
});

test("signingSecretProblem takes only what the Standard Webhooks libraries can use", () => {
  const ok = (bytes: number) => `whsec_${Buffer.alloc(bytes, 0xfb).toString("base64")}`;
  const cases: Array<[string, RegExp | null]> = [
    [ok(24), null],
    [ok(32), null],
    [ok(64), null],
    [ok(23), /holds 23 bytes; at least 24/],
    ["whsec_", /holds 0 bytes/],
    ["x", /must start with "whsec_"/],
    ["plain-text-secret-that-is-long-enough", /must start with "whsec_"/],
    [ok(32).replaceAll("+", "-").replaceAll("/", "_"), /standard base64/],
    [ok(32).replace(/=+$/, ""), /standard base64/],
    [`${ok(32)} `, /standard base64/],
    [`whsec_${"A".repeat(42)}=x`, /standard base64/],
  ];
  for (const [secret, problem] of cases) {
    const found = signingSecretProblem(secret);
    if (problem === null) assert.equal(found, null, secret);
    else assert.match(found ?? "", problem, secret);
  }
});
