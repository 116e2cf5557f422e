// Fuzzing (issue 5): thousands of seeded hostile requests at the webhook, the partner API and the admin API.
// Every one must be answered, in time, below 500, as JSON {code, message} (or the success shape), and
// talkgate must still be alive and relaying afterwards. Each case is made from (seed, case number) alone,
// and the work is a fixed number of cases, never a time budget: every machine runs the same requests.
//   FUZZ_SEED=<n>                    another run (the default seed is fixed, so CI is reproducible)
//   FUZZ_CASES=<n>                   cases per suite (default 3,000 each, the admin API's half of that)
//   FUZZ_CASE=webhook#123            only that case (as named in a failure), to reproduce it
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { Agent, request } from "undici";
import * as ev from "../emulator/events.ts";
import { startLineEmulator } from "../emulator/line-emulator.ts";
import { startPartnerSink } from "../emulator/partner-sink.ts";
import { DEFAULTS, parseConfig } from "../src/config/config.ts";
import { hashPassword } from "../src/core/credentials.ts";
import { ERROR_CODES } from "../src/core/errors.ts";
import { FORWARDABLE_EVENT_TYPES, type PartnerPayload } from "../src/core/partner-payload.ts";
import { lineSignature } from "../src/core/signature.ts";
import { startTalkgate } from "../src/main.ts";
import { adminSession } from "./support/admin-session.ts";
import { answerProblem } from "./support/check-answers.ts";
import { testDatabaseUrl } from "./support/database.ts";
import { type Delivery, listDeliveries, waitingDeliveries } from "./support/deliveries.ts";
import { readRows } from "./support/read-rows.ts";
import {
  ACCESS_TOKEN,
  API_KEY,
  CHANNEL_SECRET,
  OTHER_API_KEY,
  OTHER_SENDER_KEY,
  SENDER_KEY,
  SIGNING_SECRET,
  type Stack,
  stackConfig,
  startStack,
} from "./support/stack.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0x7a1c9a7e) >>> 0;
const OPERATOR_PASSWORD = "fuzz-operator-password";
const CASES = Number(process.env.FUZZ_CASES ?? 3_000);
const ONLY = process.env.FUZZ_CASE;
/** Requests in flight at once (loopback only; talkgate's own limits are not what is measured here). */
const CONCURRENCY = 24;
/** Every request must be answered (headers and body) within this. */
const ANSWER_WITHIN_MS = 5_000;
/** A safety net only: the deliveries the fuzzing queued drain long before this on any machine that runs. */
const DRAIN_SAFETY_MS = 180_000;
/** Once nothing else waits, one new event reaches the partner within this. */
const RELAY_WITHIN_MS = 10_000;
const WEBHOOK_LIMIT = DEFAULTS.webhook.bodyLimitBytes;
const API_LIMIT = 1024 * 1024; // partnerApi.bodyLimitBytes, default 1 MiB (Fastify's default before it)
/** The codes talkgate documents (docs/errors.md), and "0" for success. */
const CODES = new Set(["0", ...Object.keys(ERROR_CODES)]);

// ─── a small seeded PRNG (sfc32, seeded through splitmix32) ────────────────────────────────────────────
class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number, stream: number) {
    let x = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const split = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = split();
    this.#b = split();
    this.#c = split();
    this.#d = split();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (this.#a + this.#b + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }
  float(): number {
    return this.u32() / 2 ** 32;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 255;
    return out;
  }
  hex(n: number): string {
    return this.bytes(Math.ceil(n / 2))
      .toString("hex")
      .slice(0, n);
  }
  /** A string of random code points: ASCII, Hangul, Thai, emoji, controls, lone surrogates. */
  text(max: number): string {
    const length = this.int(max + 1);
    let out = "";
    for (let i = 0; i < length; i++) {
      const range = this.pick([
        [0x20, 0x7e],
        [0x00, 0x1f],
        [0xac00, 0xd7a3],
        [0x0e00, 0x0e7f],
        [0x1f300, 0x1faff],
        [0xd800, 0xdfff],
        [0x200b, 0x202e],
        [0x80, 0x9f],
      ] as const);
      out += String.fromCodePoint(range[0] + this.int(range[1] - range[0] + 1));
    }
    return out;
  }
}

// ─── hostile values ────────────────────────────────────────────────────────────────────────────────────
const HOSTILE_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff\ud800",
  "🍎👨‍👩‍👧🏳️‍🌈",
  "\u202eevil\u202c",
  "../../../../etc/passwd",
  "..\\..\\..\\windows\\win.ini",
  "%2e%2e%2f%2e%2e%2f",
  "%00",
  "\r\nSet-Cookie: a=b",
  "<script>alert(1)</script>",
  "'; DROP TABLE events; --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Log4Shell-style probe, literally
  "${jndi:ldap://127.0.0.1/x}",
  "__proto__",
  "constructor",
  "NaN",
  "-0",
  "1e400",
  "U0000000000000000000000000000000",
  SENDER_KEY,
  "x".repeat(5_001),
  "장".repeat(1_001),
  "😀".repeat(600),
];

/** Raw JSON text spliced in where a structural mutation left a placeholder: things JSON.stringify cannot make. */
function rawLiteral(rng: Rng): string {
  const depth = rng.pick([10, 100, 1_000, 3_000, 6_000, 20_000]);
  switch (rng.int(14)) {
    case 0:
      return rng.pick(["1e400", "-1e400", "1E+308", "-0", "0e0", "5e-324", "1e-400"]);
    case 1:
      return "123456789012345678901234567890123456789012345678901234567890";
    case 2:
      return `-${"9".repeat(400)}.${"9".repeat(400)}`;
    case 3:
      return "[".repeat(depth) + "]".repeat(depth);
    case 4:
      return `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    case 5:
      return '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}';
    case 6:
      return '{"type":"text","type":"image","id":"1","id":2}';
    case 7:
      return '"\\ud800\\udc00\\ud800 \\u0000 \\uffff \\ufeff"';
    case 8:
      return `"${"\\u0000".repeat(rng.int(2_000))}"`;
    case 9:
      return `[${Array.from({ length: 1 + rng.int(2_000) }, () => rng.u32()).join(",")}]`;
    case 10:
      return `"${"\\\\".repeat(rng.int(5_000))}"`;
    case 11:
      return `{${Array.from({ length: 1 + rng.int(500) }, (_, i) => `"k${i}":${i}`).join(",")}}`;
    case 12:
      return rng.pick(["true", "false", "null"]);
    default:
      return JSON.stringify(rng.text(40));
  }
}

/** Placeholders of raw literals (replaced in the serialised text). */
const RAW = (i: number) => `@@raw${i}@@`;

function hostileValue(rng: Rng, raws: string[], depth = 0): unknown {
  switch (rng.int(depth > 2 ? 9 : 12)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, 5e-324, rng.u32()]);
    case 3:
    case 4:
      return rng.pick(HOSTILE_STRINGS);
    case 5:
      return rng.text(60);
    case 6:
      return rng.hex(1 + rng.int(40));
    case 7:
    case 8:
      raws.push(rawLiteral(rng));
      return RAW(raws.length - 1);
    case 9:
      return [];
    case 10:
      return Array.from({ length: rng.int(4) }, () => hostileValue(rng, raws, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.int(4) }, () => [rng.text(8), hostileValue(rng, raws, depth + 1)]),
      );
  }
}

type Json = Record<string, unknown> | unknown[];

/** Every (container, key) slot of a JSON tree, the root excepted. */
function slots(root: unknown): Array<{ parent: Json; key: string | number }> {
  const out: Array<{ parent: Json; key: string | number }> = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        out.push({ parent: node, key: i });
        walk(child);
      });
    } else if (node && typeof node === "object") {
      for (const [key, child] of Object.entries(node)) {
        out.push({ parent: node as Record<string, unknown>, key });
        walk(child);
      }
    }
  };
  walk(root);
  return out;
}

function setSlot(slot: { parent: Json; key: string | number }, value: unknown): void {
  (slot.parent as Record<string | number, unknown>)[slot.key] = value;
}

/** One to four structural mutations: wrong types, removed and added fields, raw literals, duplicates. */
function mutateTree(rng: Rng, root: Record<string, unknown>, raws: string[]): void {
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const all = slots(root);
    if (all.length === 0) {
      root[rng.text(4)] = hostileValue(rng, raws);
      continue;
    }
    const slot = rng.pick(all);
    switch (rng.int(8)) {
      case 0:
      case 1:
      case 2:
        setSlot(slot, hostileValue(rng, raws));
        break;
      case 3:
        if (Array.isArray(slot.parent)) slot.parent.splice(Number(slot.key), 1);
        else delete slot.parent[slot.key as string];
        break;
      case 4: {
        const target = rng.pick(all.map((s) => s.parent).filter((p) => !Array.isArray(p)));
        if (target)
          (target as Record<string, unknown>)[rng.pick(["type", "x", rng.text(6)])] = hostileValue(rng, raws);
        break;
      }
      case 5:
        root.events = rng.pick([null, "events", 42, {}, [], [null], [[]], [1, "2"], { 0: {} }]);
        break;
      case 6: {
        const events = Array.isArray(root.events) ? root.events : [];
        const copies = rng.pick([2, 10, 50]);
        root.events = Array.from({ length: copies }, (_, i) => events[i % Math.max(events.length, 1)] ?? {});
        break;
      }
      default: {
        const other = rng.pick(all);
        const value = (other.parent as Record<string | number, unknown>)[other.key];
        setSlot(slot, structuredClone(value));
      }
    }
  }
}

/** Byte-level damage: flips, truncation, insertion, deletion, duplication, BOM, trailing junk. */
function mutateBytes(rng: Rng, body: Buffer): Buffer {
  const at = () => rng.int(body.length + 1);
  switch (rng.int(7)) {
    case 0: {
      const out = Buffer.from(body);
      for (let n = 1 + rng.int(8); n > 0 && out.length > 0; n--) {
        const i = rng.int(out.length);
        out[i] = (out[i] ?? 0) ^ (1 + rng.int(255));
      }
      return out;
    }
    case 1:
      return body.subarray(0, at());
    case 2: {
      const i = at();
      return Buffer.concat([body.subarray(0, i), rng.bytes(1 + rng.int(16)), body.subarray(i)]);
    }
    case 3: {
      const i = at();
      return Buffer.concat([body.subarray(0, i), body.subarray(i + 1 + rng.int(32))]);
    }
    case 4: {
      const i = at();
      const j = Math.min(body.length, i + rng.int(200));
      return Buffer.concat([body.subarray(0, j), body.subarray(i, j), body.subarray(j)]);
    }
    case 5:
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    default:
      return Buffer.concat([body, Buffer.from(rng.pick([" ", "\n", "x", "}", "\u0000", ",{}"]))]);
  }
}

// ─── real LINE bodies (events.ts), with every random part re-drawn from the case's PRNG ────────────────
function corpus(): Array<Record<string, unknown>> {
  const u = ev.randomUserId();
  const user = ev.userSource(u);
  const group = ev.groupSource(ev.randomGroupId(), u);
  const room = ev.roomSource(ev.randomRoomId(), u);
  const events: unknown[] = [
    ev.textEvent(user, {
      text: "hello $ @bob",
      emojis: [{ index: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "001", length: 1 } as never],
      mention: { mentionees: [{ index: 8, length: 4, type: "user", userId: u } as never] },
    }),
    ev.textEvent(group, `${"장문 ".repeat(400)}끝`),
    ev.textEvent(user, "standby", { mode: "standby" }),
    ev.imageEvent(room, { imageSet: { id: "set", index: 1, total: 2 } }),
    ev.imageEvent(user, { contentProvider: { type: "external", originalContentUrl: "https://x/y.jpg" } }),
    ev.videoEvent(user, { duration: 1000 }),
    ev.audioEvent(group, { duration: 1000 }),
    ev.fileEvent(user, { fileName: "보고서.pdf", fileSize: 10 }),
    ev.locationEvent(user, { title: "t", address: "a", latitude: 35.6, longitude: 139.7 }),
    ev.stickerEvent(user, { keywords: ["cony"], text: "hi" }),
    ev.unsendEvent(user, { messageId: "1" }),
    ev.followEvent(user, { isUnblocked: true }),
    ev.unfollowEvent(user),
    ev.joinEvent(group),
    ev.leaveEvent(room),
    ev.memberJoinedEvent(group, { userIds: [u, ev.randomUserId()] }),
    ev.memberLeftEvent(room, { userIds: [u] }),
    ev.postbackEvent(user, { data: "a=1&b=2", params: { datetime: "2026-11-22T10:00" } }),
    ev.postbackEvent(group, { data: "menu", params: { newRichMenuAliasId: "b", status: "SUCCESS" } }),
    ev.videoPlayCompleteEvent(user, { trackingId: "t" }),
    ev.messageEditedEvent(group, { id: "2", text: "edited" }),
    ev.beaconEvent(user),
    ev.accountLinkEvent(user),
    ev.membershipEvent(user),
    ev.moduleEvent({ type: "attached", botId: "U1", scopes: ["message:send"] }),
    ev.activatedEvent(user),
    ev.deactivatedEvent(user),
    ev.botSuspendedEvent(),
    ev.botResumedEvent(),
    ev.deliveryEvent({ data: "hash" }),
    ev.rawEvent({
      type: "somethingNew",
      source: user,
      timestamp: 1,
      webhookEventId: "x",
      what: { ever: [1] },
    }),
  ];
  const bodies = events.map((event) => ev.webhookBody([event]) as unknown as Record<string, unknown>);
  bodies.push(ev.webhookBody(events.slice(0, 8)) as unknown as Record<string, unknown>);
  bodies.push({ destination: ev.DEFAULT_DESTINATION, events: [] });
  return JSON.parse(JSON.stringify(bodies)) as Array<Record<string, unknown>>;
}
const CORPUS = corpus();

const RANDOM_KEYS = new Set([
  "webhookEventId",
  "replyToken",
  "quoteToken",
  "markAsReadToken",
  "id",
  "userId",
  "groupId",
  "roomId",
  "messageId",
  "nonce",
]);
/** Re-draws ids, tokens and times from the case's PRNG: reproducible, and no two cases collide. */
function freshen(rng: Rng, node: unknown): void {
  for (const slot of slots(node)) {
    const value = (slot.parent as Record<string | number, unknown>)[slot.key];
    if (typeof slot.key !== "string") continue;
    if (RANDOM_KEYS.has(slot.key) && typeof value === "string") {
      const prefix = /^[UCR][0-9a-f]{32}$/.test(value) ? value[0] : "";
      setSlot(slot, prefix ? `${prefix}${rng.hex(32)}` : rng.hex(value.length || 16));
    } else if ((slot.key === "timestamp" || slot.key === "expireAt") && typeof value === "number") {
      setSlot(slot, 1_760_000_000_000 + rng.int(2 ** 30));
    }
  }
}

// ─── cases ─────────────────────────────────────────────────────────────────────────────────────────────
interface Case {
  id: string;
  /** What kind of input this is, for the histogram of problems. */
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The answer this input must get (one of these statuses, and of these codes unless null); undefined when
   * any good answer will do. */
  expect?: { status: number[]; codes: string[] | null };
  /** Allowed besides the universal rules (e.g. 503 -407 for the stack's channel without an access token). */
  allow?: (status: number, code: unknown) => boolean;
}

const signatureHeader = (rng: Rng) => rng.pick(["x-line-signature", "X-Line-Signature", "X-LINE-SIGNATURE"]);

function webhookCase(index: number): Case {
  const rng = new Rng(SEED, index * 2);
  const id = `webhook#${index}`;
  const headers: Record<string, string> = {};
  if (rng.chance(0.85)) headers["content-type"] = "application/json; charset=utf-8";
  else if (rng.chance(0.7))
    headers["content-type"] = rng.pick([
      "text/plain",
      "application/octet-stream",
      "multipart/form-data",
      "x/y",
    ]);

  let senderKey = SENDER_KEY;
  let known = true;
  if (rng.chance(0.04)) {
    senderKey = rng.pick([
      "999",
      OTHER_SENDER_KEY,
      "..%2f..%2ftalkgate.db",
      "%2e%2e",
      "%00",
      encodeURIComponent("장"),
      "a".repeat(300),
      "%E0%A4%A",
    ]);
    known = senderKey === OTHER_SENDER_KEY;
  }

  // Unsigned or wrongly signed garbage: random bytes, or a real body, with a missing or wrong signature.
  if (rng.chance(0.12)) {
    const tree = structuredClone(rng.pick(CORPUS));
    freshen(rng, tree);
    const body = rng.chance(0.5) ? rng.bytes(rng.int(4_096)) : Buffer.from(JSON.stringify(tree), "utf8");
    const signature = rng.pick([
      null,
      "",
      "%%%",
      rng.bytes(32).toString("base64"),
      lineSignature("not-the-channel-secret", body),
      "a".repeat(4_000),
    ]);
    if (signature !== null) headers[signatureHeader(rng)] = signature;
    return {
      id,
      kind: known ? "webhook:unsigned" : "webhook:unknown-sender",
      method: "POST",
      path: `/line/webhook/${senderKey}`,
      headers,
      body,
      expect: known ? { status: [401], codes: ["-412"] } : UNKNOWN_SENDER,
    };
  }

  let kind: string;
  let body: Buffer;
  if (rng.chance(0.002)) {
    kind = "webhook:oversized";
    body = Buffer.alloc(WEBHOOK_LIMIT + 1 + rng.int(100_000), 0x20);
    body.write('{"events":[]}');
  } else {
    const tree = structuredClone(rng.pick(CORPUS));
    freshen(rng, tree);
    const raws: string[] = [];
    kind = "webhook:valid";
    if (rng.chance(0.75)) {
      kind = "webhook:mutated";
      mutateTree(rng, tree, raws);
    }
    let text = JSON.stringify(tree);
    raws.forEach((raw, i) => {
      text = text.replace(`"${RAW(i)}"`, () => raw);
    });
    body = Buffer.from(text, "utf8");
    if (rng.chance(0.3)) {
      kind = "webhook:bytes";
      body = mutateBytes(rng, body);
    }
  }
  // Signed with the channel secret, so the body is what is tested, not the signature check.
  const signature = lineSignature(CHANNEL_SECRET, body);
  headers[signatureHeader(rng)] = signature;
  let expect: Case["expect"];
  if (body.length > WEBHOOK_LIMIT) expect = { status: [413], codes: ["-413"] };
  else if (!known) expect = UNKNOWN_SENDER;
  else if (senderKey !== SENDER_KEY) expect = { status: [401], codes: ["-412"] };
  else if (!parses(body)) expect = { status: [400], codes: ["-405"] };
  // Signed JSON is stored; JSON nested deeper than anything LINE sends may be refused as a bad body instead.
  else if (nestingDepth(body) > MAX_PLAIN_DEPTH) expect = { status: [200, 400], codes: ["0", "-405"] };
  else expect = { status: [200], codes: ["0"] };
  return { id, kind, method: "POST", path: `/line/webhook/${senderKey}`, headers, body, expect };
}

// A sender key that is no channel: 404; a path that is no route at all may have its body refused first.
const UNKNOWN_SENDER = { status: [404, 400, 413], codes: ["-406", "-601", "-405", "-413"] };

/** Nesting that LINE's own events never come near (they are a few levels deep). */
const MAX_PLAIN_DEPTH = 64;

/** The deepest nesting of arrays and objects in JSON text (strings skipped). */
function nestingDepth(body: Buffer): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

function parses(body: Buffer): boolean {
  try {
    JSON.parse(body.toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

// ─── the partner API, driven by its OpenAPI document ───────────────────────────────────────────────────
type Schema = Record<string, unknown> & {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
};
interface Operation {
  parameters?: Array<{ name: string; in: string; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
}
const OPENAPI = JSON.parse(readFileSync(new URL("../docs/openapi.json", import.meta.url), "utf8")) as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};
// The partner API's routes (the admin API has operators, not partners, at its door: test/admin.test.ts).
const ROUTES = Object.entries(OPENAPI.paths)
  .filter(([path]) => path.startsWith("/line/"))
  .flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method: method.toUpperCase(), operation })),
  );

// The admin API's routes: every read, and every change as a viewer makes it (refused 403 whatever it carries).
// Changes as an admin are left to test/admin.test.ts: deleted channels and revoked tokens would end the fuzzing.
const ADMIN_ROUTES = Object.entries(OPENAPI.paths)
  .filter(
    ([path]) => path.startsWith("/admin/") && path !== "/admin/sign-in" && path !== "/admin/audit/export",
  )
  .flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method: method.toUpperCase(), operation })),
  );

/** The admin API's tokens for the fuzzing: an admin's and a viewer's. */
interface OperatorTokens {
  admin: string;
  viewer: string;
}

/** What the API fuzz aims at, so that most cases get past validation into the handlers. */
interface Known {
  serials: string[];
  users: string[];
}

/** A value that fits `schema` (mostly), with real sender keys, users and serial numbers preferred. */
function fromSchema(rng: Rng, schema: Schema, known: Known, name = "", depth = 0): unknown {
  if (schema.$ref) {
    const ref = OPENAPI.components.schemas[schema.$ref.split("/").pop() ?? ""];
    return ref && depth < 6 ? fromSchema(rng, ref, known, name, depth + 1) : {};
  }
  if (schema.anyOf) return fromSchema(rng, rng.pick(schema.anyOf), known, name, depth + 1);
  if (schema.enum) return rng.pick(schema.enum);
  if (name === "sender_key") return rng.chance(0.9) ? SENDER_KEY : OTHER_SENDER_KEY;
  if (name === "serial_number" && rng.chance(0.6)) return rng.pick(known.serials);
  if ((name === "user_key" || name === "to") && rng.chance(0.8)) return rng.pick(known.users);
  switch (schema.type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key) || (rng.chance(0.3) && depth < 5))
          out[key] = fromSchema(rng, child, known, key, depth + 1);
      }
      return out;
    }
    case "array": {
      const length = 1 + rng.int(Math.min(schema.maxItems ?? 3, 3));
      return Array.from({ length }, () => fromSchema(rng, schema.items ?? {}, known, name, depth + 1));
    }
    case "integer":
    case "number": {
      const lo = schema.minimum ?? 0;
      const hi = schema.maximum ?? lo + 100;
      const step = schema.multipleOf ?? 1;
      return lo + step * rng.int(Math.floor((hi - lo) / step) + 1);
    }
    case "boolean":
      return rng.chance(0.5);
    case "string": {
      if (schema.pattern === "^https://") return `https://example.com/${rng.hex(8)}.jpg`;
      if (name === "serial_number") return `fz-${rng.hex(12)}`;
      const length = Math.max(schema.minLength ?? 0, 1 + rng.int(Math.min(schema.maxLength ?? 20, 20)));
      return rng.text(length).slice(0, schema.maxLength ?? 20) || "x";
    }
    default:
      return rng.pick([1, "x", null, {}]);
  }
}

const KEY_VARIANTS = (key: string) => [`Bearer ${key}`, `bearer ${key}`, `Bearer   ${key}`, `BEARER ${key}`];
const BAD_AUTH = [
  "",
  "Bearer",
  "Bearer ",
  `Basic ${Buffer.from(`user:${API_KEY}`).toString("base64")}`,
  `Token ${API_KEY}`,
  `Bearer ${API_KEY}x`,
  `Bearer ${API_KEY.slice(0, -1)}`,
  `Bearer ${API_KEY} ${API_KEY}`,
  `Bearer ${"A".repeat(8_000)}`,
  `Bearer\t${API_KEY}`,
  `${API_KEY}`,
  "Bearer null",
  "Bearer undefined",
  "Bearer %00",
];

function queryString(rng: Rng, operation: Operation, known: Known): string {
  const pairs: Array<[string, string]> = [];
  for (const param of operation.parameters ?? []) {
    if (param.in !== "query" || rng.chance(0.05)) continue;
    // Capped so the URL stays within Node's 16 KiB header limit (the "api:huge-header" cases go past it).
    const value = (
      rng.chance(0.8)
        ? String(fromSchema(rng, param.schema, known, param.name))
        : String(rng.pick(HOSTILE_STRINGS))
    ).slice(0, 600);
    pairs.push([param.name, value]);
    if (rng.chance(0.05)) pairs.push([param.name, value]); // repeated: an array
  }
  if (rng.chance(0.1))
    pairs.push([rng.pick(["x", "__proto__", "constructor", "sender_key[]", ""]), rng.text(10)]);
  let query = pairs
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "?"))}`)
    .join("&");
  if (rng.chance(0.08))
    query = rng.pick([
      `${query}&%`,
      `${query}&a=%zz`,
      `${query}&%E0%A4%A=1`,
      "&&&===",
      `${query}#frag`,
      `sender_key=${SENDER_KEY}&serial_number=${"%00".repeat(10)}`,
      rng
        .bytes(rng.int(60))
        .toString("latin1")
        .replace(/[^\x21-\x7e]/g, "%"),
    ]);
  return query ? `?${query}` : "";
}

/** A multipart body for POST /line/media: real-looking parts, often broken on purpose. */
function multipart(rng: Rng): { body: Buffer; contentType: string; broken: boolean } {
  const boundary = `----fz${rng.hex(16)}`;
  const parts: Buffer[] = [];
  for (let n = rng.int(4); n > 0; n--) {
    const field = rng.pick(["file", "file", "preview", "other", rng.text(5)]).replace(/["\r\n]/g, "");
    const name = rng.pick(["a.png", "../../x.png", "a\u0000.jpg", "", "장.mp4"]);
    const head = rng.pick([
      Buffer.from("\x89PNG\r\n\x1a\n", "latin1"),
      Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
      Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from("ftypisom")]),
      Buffer.from("ID3"),
      Buffer.alloc(0),
    ]);
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${name}"\r\n` +
          `Content-Type: ${rng.pick(["image/png", "application/octet-stream", "text/plain"])}\r\n\r\n`,
        "utf8",
      ),
      head,
      rng.bytes(rng.int(3_000)),
      Buffer.from("\r\n"),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  let body: Buffer = Buffer.concat(parts);
  let contentType = `multipart/form-data; boundary=${boundary}`;
  let broken = false;
  if (rng.chance(0.5)) {
    broken = true;
    switch (rng.int(4)) {
      case 0:
        body = body.subarray(0, rng.int(body.length + 1));
        break;
      case 1:
        contentType = rng.pick(["multipart/form-data", "multipart/form-data; boundary=", "multipart/mixed"]);
        break;
      case 2:
        contentType = `multipart/form-data; boundary=other${rng.hex(4)}`;
        break;
      default:
        body = mutateBytes(rng, body);
    }
  }
  return { body, contentType, broken };
}

function apiCase(index: number, known: Known): Case {
  const rng = new Rng(SEED, index * 2 + 1);
  const id = `api#${index}`;
  const route = rng.pick(ROUTES);
  let { method, path } = route;
  let kind = `api:${method} ${path}`;
  let knownRoute = true;
  if (rng.chance(0.03)) {
    method = rng.pick(["PUT", "DELETE", "PATCH", "OPTIONS", method === "GET" ? "POST" : "GET"]);
    knownRoute = ROUTES.some((r) => r.path === path && r.method === method);
    kind = "api:wrong-method";
  }
  if (rng.chance(0.02)) {
    path = rng.pick([
      "/line/nope",
      "/line/message",
      "/line/message/long/..",
      "/line//message/long",
      "/line/%2e%2e/x",
    ]);
    knownRoute = false;
    kind = "api:unknown-route";
  }

  const headers: Record<string, string> = {};
  let goodKey = true;
  const roll = rng.float();
  if (roll < 0.8) headers.authorization = rng.pick(KEY_VARIANTS(API_KEY));
  else if (roll < 0.88) headers.authorization = rng.pick(KEY_VARIANTS(OTHER_API_KEY));
  else {
    goodKey = false;
    const bad = rng.pick(BAD_AUTH);
    if (bad !== "" || rng.chance(0.5)) headers.authorization = bad;
  }
  let hugeHeader = false;
  if (rng.chance(0.004)) {
    // Past Node's 16 KiB limit on the request line and headers: refused by the HTTP parser itself.
    hugeHeader = true;
    kind = "api:huge-header";
    if (rng.chance(0.5)) headers.authorization = `Bearer ${"A".repeat(17_000)}`;
    else headers["x-padding"] = "p".repeat(17_000);
  }

  let body: Buffer | undefined;
  let oversized = false;
  if (path === "/line/media" && method === "POST") {
    const form = multipart(rng);
    headers["content-type"] = form.contentType;
    body = form.body;
    if (form.broken) kind = "api:media:broken";
  } else if (method === "POST" || method === "PUT" || method === "PATCH") {
    const schema = route.operation.requestBody?.content["application/json"]?.schema;
    const raws: string[] = [];
    const wrapper: Record<string, unknown> = { body: schema ? fromSchema(rng, schema, known) : {} };
    if (rng.chance(0.6)) mutateTree(rng, wrapper, raws);
    let value = wrapper.body;
    if (rng.chance(0.05)) value = hostileValue(rng, raws);
    let text = JSON.stringify(value) ?? "null";
    raws.forEach((raw, i) => {
      text = text.replace(`"${RAW(i)}"`, () => raw);
    });
    body = Buffer.from(text, "utf8");
    if (rng.chance(0.15)) {
      body = mutateBytes(rng, body);
      kind = `${kind} (bytes)`;
    }
    if (rng.chance(0.003)) {
      oversized = true;
      kind = "api:oversized";
      body = Buffer.from(JSON.stringify({ sender_key: SENDER_KEY, pad: "x".repeat(API_LIMIT) }));
    }
    if (!oversized && rng.chance(0.03)) body = Buffer.alloc(0);
    // An oversized body is sent as JSON: with another type its type may be refused (415) before its size.
    headers["content-type"] =
      oversized || rng.chance(0.85)
        ? rng.pick(["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"])
        : rng.pick([
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/json; charset=utf-16",
            "application/xml",
            "application/vnd.api+json",
            "*/*",
            "",
          ]);
  } else if (rng.chance(0.05)) {
    body = rng.bytes(rng.int(200)); // a GET with a body
    headers["content-type"] = "application/json";
  }

  let expect: Case["expect"];
  if (hugeHeader) expect = undefined;
  else if (knownRoute && !goodKey) expect = { status: [401], codes: ["-401"] };
  else if (knownRoute && oversized) expect = { status: [413], codes: ["-413"] };
  // No such route: 404, unless its body is refused first (Fastify reads bodies before routing to 404).
  else if (!knownRoute) expect = { status: [404, 400, 413, 415], codes: ["-601", "-405", "-413", "-415"] };
  return {
    id,
    kind,
    method,
    path: `${path}${path.startsWith("/line/media") ? "" : queryString(rng, route.operation, known)}`,
    headers,
    ...(body ? { body } : {}),
    ...(expect ? { expect } : {}),
    // The second channel of the test stack has no channel access token: 503 -407 is its documented answer.
    allow: (status, code) => status === 503 && code === "-407",
  };
}

/** A path parameter that exists (or could), by its name. */
function realPathValue(rng: Rng, name: string, known: Known): string {
  const real: Record<string, string[]> = {
    senderKey: [SENDER_KEY, OTHER_SENDER_KEY, "1999999999"],
    userId: known.users,
    id: ["jedai", "other", "nobody", rng.hex(16)],
  };
  return rng.pick(real[name] ?? [rng.hex(16)]);
}

function adminCase(index: number, known: Known, tokens: OperatorTokens): Case {
  const rng = new Rng(SEED, 1_000_000 + index);
  const route = rng.pick(ADMIN_ROUTES);
  const { method, operation } = route;
  // Mostly parameters that exist; sometimes a hostile one, which Fastify may refuse before any route (a
  // parameter over 100 characters: 400 -405), so that such a case is held to the universal rules only.
  let hostilePath = false;
  const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (!rng.chance(0.15)) return encodeURIComponent(realPathValue(rng, name, known));
    hostilePath = true;
    return encodeURIComponent(
      String(rng.pick(HOSTILE_STRINGS))
        .slice(0, 200)
        .replace(/[\ud800-\udfff]/g, "?"),
    );
  });
  const headers: Record<string, string> = {};
  const read = method === "GET";
  const roll = rng.float();
  let who: "admin" | "viewer" | "nobody" = "nobody";
  if (roll < 0.9) {
    who = read && roll < 0.6 ? "admin" : "viewer";
    headers.authorization = rng.pick(KEY_VARIANTS(tokens[who]));
  } else {
    const bad = rng.pick([...BAD_AUTH, `Bearer ${API_KEY}`, `Bearer ${tokens.admin}x`]);
    if (bad !== "" || rng.chance(0.5)) headers.authorization = bad;
  }
  let body: Buffer | undefined;
  if (!read) {
    const schema = operation.requestBody?.content["application/json"]?.schema;
    const raws: string[] = [];
    const wrapper: Record<string, unknown> = { body: schema ? fromSchema(rng, schema, known) : {} };
    if (rng.chance(0.6)) mutateTree(rng, wrapper, raws);
    let text = JSON.stringify(wrapper.body) ?? "null";
    raws.forEach((raw, i) => {
      text = text.replace(`"${RAW(i)}"`, () => raw);
    });
    body = rng.chance(0.15) ? mutateBytes(rng, Buffer.from(text, "utf8")) : Buffer.from(text, "utf8");
    headers["content-type"] = rng.pick(["application/json", "text/plain", "application/json; charset=utf-8"]);
  }
  let expect: Case["expect"];
  if (hostilePath) expect = undefined;
  else if (who === "nobody") expect = { status: [401], codes: ["-801"] };
  // Who may not change anything is refused before the body is even read.
  else if (who === "viewer" && !read) expect = { status: [403], codes: ["-803"] };
  return {
    id: `admin#${index}`,
    kind: `admin:${method} ${route.path} as ${who}`,
    method,
    path: `${path}${queryString(rng, operation, known)}`,
    headers,
    ...(body ? { body } : {}),
    ...(expect ? { expect } : {}),
    // The channel without a token cannot ask LINE for its webhook endpoint: 503 -407, as documented.
    allow: (status, code) => status === 503 && code === "-407",
  };
}

// ─── the runner ────────────────────────────────────────────────────────────────────────────────────────
interface Outcome {
  histogram: Map<string, number>;
  problems: Map<string, { count: number; example: string }>;
  cases: number;
  ms: number;
}

async function run(baseUrl: string, count: number, make: (index: number) => Case, prefix: string) {
  const agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const outcome: Outcome = { histogram: new Map(), problems: new Map(), cases: 0, ms: 0 };
  const started = performance.now();
  const only = ONLY?.startsWith(`${prefix}#`) ? Number(ONLY.slice(prefix.length + 1)) : undefined;
  if (ONLY && only === undefined) return outcome;
  let next = only ?? 0;
  const end = only === undefined ? count : only + 1;

  const problem = (c: Case, what: string, detail: string) => {
    const key = `${c.kind}: ${what}`;
    const entry = outcome.problems.get(key);
    if (entry) entry.count++;
    else {
      const sent = c.body
        ? `${c.body.length} bytes ${JSON.stringify(c.body.subarray(0, 160).toString("utf8"))}`
        : "no body";
      outcome.problems.set(key, {
        count: 1,
        example: `${c.id} ${c.method} ${c.path.slice(0, 120)} [${sent}] → ${detail.slice(0, 240)}`,
      });
    }
  };

  async function one(c: Case) {
    let status: number;
    let text: string;
    let type: string;
    try {
      const response = await request(`${baseUrl}${c.path}`, {
        method: c.method as "GET",
        headers: c.headers,
        ...(c.body ? { body: c.body } : {}),
        dispatcher: agent,
        headersTimeout: ANSWER_WITHIN_MS,
        bodyTimeout: ANSWER_WITHIN_MS,
        // The whole exchange, sending included (a server that neither reads nor answers stalls the upload).
        signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
      status = response.statusCode;
      type = String(response.headers["content-type"] ?? "");
      text = await response.body.text();
    } catch (error) {
      const name = (error as Error).name;
      const code = (error as { code?: string }).code ?? "";
      const what = /Timeout|Abort/.test(name) ? "no answer in time (hang)" : `no answer (${code || name})`;
      // An oversized body is refused while it is still being sent, and the refusal must still reach the client.
      problem(c, what, (error as Error).message);
      outcome.histogram.set("(connection closed)", (outcome.histogram.get("(connection closed)") ?? 0) + 1);
      return;
    }
    let answer: Record<string, unknown> | undefined;
    if (c.method !== "HEAD" && type.startsWith("application/json")) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
          answer = parsed as Record<string, unknown>;
      } catch {
        // reported below
      }
    }
    const code = answer?.code;
    const label = `${status} ${c.method === "HEAD" ? "(HEAD)" : answer ? String(code) : `(${type.split(";")[0] || "no type"})`}`;
    outcome.histogram.set(label, (outcome.histogram.get(label) ?? 0) + 1);
    const wrong = judge(c, status, answer);
    if (wrong) problem(c, wrong, `${status} ${type.split(";")[0]} ${text.slice(0, 200)}`);
    // Its own agent bypasses the check every other test gets: the fuzzer asks the document itself.
    const undocumented = answerProblem(c.method, c.path.split("?")[0] ?? "", status, type, text);
    if (undocumented) problem(c, "answered not as docs/openapi.json says", undocumented);
  }

  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < end) {
        const index = next++;
        await one(make(index));
        outcome.cases++;
      }
    }),
  );
  outcome.ms = performance.now() - started;
  await agent.close();
  return outcome;
}

/** What is wrong with an answer, or undefined when it is a good one. */
function judge(c: Case, status: number, answer: Record<string, unknown> | undefined): string | undefined {
  const code = answer?.code;
  if (status >= 500 && !c.allow?.(status, code)) return `${status} ${String(code)}`;
  // HEAD answers have no body; a stored attachment answers its bytes; every other answer is JSON. The admin
  // API answers its reads in their own shapes (docs/openapi.json holds them to it), its errors as {code, message}.
  const success = status >= 200 && status < 300;
  const bytes = success && c.path.startsWith("/line/message/attachment");
  const adminRead = success && c.path.startsWith("/admin/");
  if (c.method !== "HEAD" && !bytes && !adminRead) {
    if (!answer) return `${status} not a JSON object`;
    if (typeof code !== "string" || !CODES.has(code)) return `${status} code ${String(code)} not documented`;
    if (code !== "0" && typeof answer.message !== "string") return `${status} ${code} without message`;
    if ((code === "0") !== (status >= 200 && status < 300)) return `status ${status} with code ${code}`;
  }
  const { expect } = c;
  if (!expect) return undefined;
  if (
    !expect.status.includes(status) ||
    (expect.codes && c.method !== "HEAD" && !expect.codes.includes(String(code)))
  )
    return `expected ${expect.status.join("|")} ${expect.codes?.join("|") ?? ""}, got ${status} ${String(code)}`;
  return undefined;
}

function report(t: { diagnostic(message: string): void }, name: string, outcome: Outcome): void {
  t.diagnostic(`${name}: ${outcome.cases} cases in ${(outcome.ms / 1000).toFixed(1)} s (seed ${SEED})`);
  const rows = [...outcome.histogram].sort(([a], [b]) => a.localeCompare(b));
  t.diagnostic(`${name} status histogram: ${rows.map(([label, n]) => `${label}: ${n}`).join(", ")}`);
}

function assertNoProblems(outcome: Outcome): void {
  const lines = [...outcome.problems].map(
    ([key, { count, example }]) => `${count}× ${key}\n    e.g. ${example}`,
  );
  assert.equal(
    lines.length,
    0,
    `hostile inputs got bad answers (reproduce one with FUZZ_SEED=${SEED} FUZZ_CASE=<id>):\n  ${lines.join("\n  ")}`,
  );
}

// ─── the stack ─────────────────────────────────────────────────────────────────────────────────────────
/** Emulator, sink and talkgate as test/support/stack.ts makes them, with talkgate's warnings and errors kept. */
async function startFuzzStack() {
  const dir = mkdtempSync(join(tmpdir(), "talkgate-fuzz-"));
  const emulator = await startLineEmulator({
    channels: [{ channelId: SENDER_KEY, channelSecret: CHANNEL_SECRET, accessToken: ACCESS_TOKEN }],
  });
  const sink = await startPartnerSink({ signingSecret: SIGNING_SECRET });
  const raw = stackConfig(emulator.url, sink.url, {
    forwardEventTypes: [...FORWARDABLE_EVENT_TYPES],
    // Thousands of calls with one key: lift the per-key rate limit (tested in security.test.ts).
    config: {
      partnerApi: { rateLimitMax: 10_000_000 },
      operators: [
        { name: "fuzz-admin", role: "admin", passwordHash: await hashPassword(OPERATOR_PASSWORD) },
        { name: "fuzz-viewer", role: "viewer", passwordHash: await hashPassword(OPERATOR_PASSWORD) },
      ],
    },
  });
  raw.database = await testDatabaseUrl(dir);
  const config = parseConfig(raw, { baseDir: dir });
  const logs: Array<{
    level: number;
    msg: string;
    code?: string;
    reason?: string;
    err?: { message?: string };
  }> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const talkgate = await startTalkgate(config, { logger: pino({ level: "warn" }, stream) });
  emulator.setWebhookUrl(SENDER_KEY, `${talkgate.url}/line/webhook/${SENDER_KEY}`);
  const session = await adminSession(talkgate.url, "fuzz-admin", OPERATOR_PASSWORD);
  const token = async (operator: string) =>
    (await session("POST", "/admin/tokens", { operator, name: "fuzz" })).body.token as string;
  return {
    url: talkgate.url,
    tokens: { admin: await token("fuzz-admin"), viewer: await token("fuzz-viewer") },
    emulator,
    sink,
    logs,
    async close() {
      await talkgate.close();
      await emulator.close();
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ─── the hostile inputs the fuzzing found, one by one (each a precise reproduction) ────────────────────
describe("hostile inputs, one by one", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      config: { delivery: { initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 20 } },
    });
  });
  after(() => stack.close());

  async function answer(
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: string },
  ) {
    const response = await request(`${stack.talkgate.url}${path}`, {
      method: (init.method ?? "POST") as "POST",
      headers: init.headers ?? {},
      ...(init.body === undefined ? {} : { body: init.body }),
      headersTimeout: ANSWER_WITHIN_MS,
      bodyTimeout: ANSWER_WITHIN_MS,
    });
    const text = await response.body.text();
    return { status: response.statusCode, text, json: parseObject(text) };
  }
  const signed = (body: string) => ({
    "x-line-signature": lineSignature(CHANNEL_SECRET, body),
    "content-type": "application/json",
  });
  /** A 4xx JSON answer with a code docs/errors.md lists and a message. */
  function assertCleanRefusal(
    result: { status: number; text: string; json?: Record<string, unknown> },
    what: string,
  ) {
    assert.ok(
      result.status >= 400 && result.status < 500,
      `${what}: ${result.status} ${result.text.slice(0, 200)}`,
    );
    assert.ok(
      CODES.has(String(result.json?.code)),
      `${what}: code not documented: ${result.text.slice(0, 200)}`,
    );
    assert.equal(typeof result.json?.message, "string", what);
  }

  test("a signed event nested 10,000 deep is stored or refused 400, never answered 5xx (LINE would redeliver it for ever)", async () => {
    const deep = "[".repeat(10_000) + "]".repeat(10_000);
    for (const event of [
      `{"type":"message","webhookEventId":"deep-1","timestamp":1,"x":${deep}}`,
      `{"type":"message","timestamp":1,"x":${deep}}`, // no webhookEventId: deduped on a hash of the event
    ]) {
      const body = `{"destination":"U0","events":[${event}]}`;
      const result = await answer(`/line/webhook/${SENDER_KEY}`, { headers: signed(body), body });
      assert.ok(
        (result.status === 200 && result.json?.code === "0") ||
          (result.status === 400 && result.json?.code === "-405"),
        `${event.slice(0, 60)}…: ${result.status} ${result.text}`,
      );
    }
  });

  test("broken multipart uploads are refused 4xx with a code, not 500 -699", async () => {
    for (const [contentType, body] of [
      [
        "multipart/form-data; boundary=xx",
        '--xx\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
      ],
      ["multipart/form-data", "abc"],
      ["multipart/form-data; boundary=xx", "--xx\r\nno headers at all"],
    ] as const) {
      const result = await answer("/line/media", {
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": contentType },
        body,
      });
      assertCleanRefusal(result, `${contentType} ${JSON.stringify(body)}`);
    }
  });

  test("a path Fastify itself refuses (bad %-encoding, a parameter over 100 characters) answers {code, message}", async () => {
    for (const path of ["/line/webhook/%E0%A4%A", `/line/webhook/${"1".repeat(101)}`, "/media/%E0%A4%A"]) {
      const body = '{"events":[]}';
      assertCleanRefusal(await answer(path, { headers: signed(body), body }), path);
    }
  });

  test("requests the HTTP parser refuses (malformed, headers over 16 KiB) answer {code, message}", async () => {
    for (const raw of [
      "GARBAGE\r\n\r\n",
      `GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n`,
      `GET /line/message/long HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${"A".repeat(17_000)}\r\n\r\n`,
    ]) {
      const reply = await rawExchange(stack.talkgate.url, raw);
      const [head = "", body = ""] = reply.split("\r\n\r\n");
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
      assertCleanRefusal({ status, text: reply, json: parseObject(body) }, raw.slice(0, 40));
    }
  });

  test("signed events whose ids are no valid header value cannot wedge delivery; serial numbers are header-safe", async () => {
    // serial_number starts with the user id's first 12 characters and goes out as the webhook-id header.
    const ids = [
      "U\r\nX-Evil: 1",
      "U\u0000\u0000\u0000\u0000",
      "U장장장장장장장장장장",
      "U\u007f\u007f",
      "U\nnewline",
    ];
    const events = Array.from({ length: 40 }, (_, i) =>
      ev.textEvent(ev.userSource(`${ids[i % ids.length]}${String(i).padStart(32, "0")}`), "hostile id"),
    );
    const body = JSON.stringify(ev.webhookBody(events));
    const stored = await answer(`/line/webhook/${SENDER_KEY}`, { headers: signed(body), body });
    assert.equal(stored.status, 200, stored.text);
    // Long enough for the failing ones to be retried past undici's 128 connections per origin.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const user = ev.randomUserId();
    assert.equal(
      (await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "after")])).status,
      200,
    );
    let relayed = true;
    await stack.sink
      .waitFor((all) => all.some((p) => (p as PartnerPayload).user_key === user), 4_000)
      .catch(() => {
        relayed = false;
      });
    // Every event's serial number, relayed or not (no API lists the events that are not relayed).
    const serials = (
      await readRows<{ serial_number: string }>(stack.config.database, "SELECT serial_number FROM events")
    ).map((row) => row.serial_number);
    const failures = countBy(
      (await listDeliveries(stack.talkgate)).filter((d) => d.state !== "delivered"),
      (d) => String(d.last_error),
    );
    const unsafe = serials.filter((serial) => !/^[\x21-\x7e]{1,30}$/.test(serial));
    assert.ok(
      relayed,
      `an ordinary event was not relayed within 4 s; undelivered: ${JSON.stringify(failures)}`,
    );
    assert.deepEqual(
      unsafe.map((serial) => JSON.stringify(serial)),
      [],
      "serial numbers that are no valid header value",
    );
  });
});

// ─── the fuzzing ───────────────────────────────────────────────────────────────────────────────────────
describe("fuzzing: hostile input gets a clean answer, and talkgate keeps working", () => {
  let stack: Awaited<ReturnType<typeof startFuzzStack>>;
  const known: Known = { serials: [], users: [] };

  before(async () => {
    stack = await startFuzzStack();
    // Real data for the partner API to find: a text, a long text, an image and a file, relayed.
    const user = ev.randomUserId();
    const events = [
      ev.textEvent(ev.userSource(user), "short"),
      ev.textEvent(ev.userSource(user), "long ".repeat(300)),
      ev.imageEvent(ev.userSource(user)),
      ev.fileEvent(ev.userSource(user), { fileName: "../../a.pdf", fileSize: 3 }),
    ];
    for (const e of events.slice(2)) stack.emulator.setContent(e.message.id, { body: "abc" });
    assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, events)).status, 200);
    const payloads = (await stack.sink.waitFor(
      (all) => all.length >= events.length,
      20_000,
    )) as PartnerPayload[];
    known.serials.push(...payloads.map((p) => p.serial_number), "no-such-serial");
    known.users.push(user, ev.randomUserId());
  });
  let closing: Promise<void> | undefined;
  after(() => closing ?? stack?.close());

  test(`the webhook: ${CASES} signed mutations of real LINE bodies, and unsigned garbage`, async (t) => {
    const outcome = await run(stack.url, CASES, webhookCase, "webhook");
    report(t, "webhook", outcome);
    if (!ONLY) assert.equal(outcome.cases, CASES, "every case was run");
    assertNoProblems(outcome);
  });

  test(`the partner API: ${CASES} hostile queries, bodies, content types and keys on every route`, async (t) => {
    const outcome = await run(stack.url, CASES, (i) => apiCase(i, known), "api");
    report(t, "partner API", outcome);
    if (!ONLY) assert.equal(outcome.cases, CASES, "every case was run");
    assertNoProblems(outcome);
  });

  test(`the admin API: ${CASES / 2} hostile queries, path parameters and credentials on every read, and viewers' changes`, async (t) => {
    const outcome = await run(stack.url, CASES / 2, (i) => adminCase(i, known, stack.tokens), "admin");
    report(t, "admin API", outcome);
    if (!ONLY) assert.equal(outcome.cases, CASES / 2, "every case was run");
    assertNoProblems(outcome);
  });

  test("afterwards talkgate is alive, its store answers, its backlog drains, a new event is still relayed, no internal errors", async (t) => {
    const health = await fetch(`${stack.url}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${stack.url}/readyz`);
    assert.equal(ready.status, 200);

    // The fuzzing queued a few thousand deliveries; how fast they go depends on the machine. Wait for
    // every one of them (a fixed amount of work); the time limit only stops a wedged outbox hanging the run.
    const backlog = async () => {
      const waiting = await waitingDeliveries(stack.url);
      return waiting.pending + waiting.retrying;
    };
    const before = await backlog();
    const drainStarted = performance.now();
    while ((await backlog()) > 0 && performance.now() - drainStarted < DRAIN_SAFETY_MS) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const left = await backlog();
    t.diagnostic(
      `backlog after the fuzzing: ${before} deliveries, ${left} left after ${((performance.now() - drainStarted) / 1000).toFixed(1)} s`,
    );
    const now = Date.now();
    const waiting = countBy(
      (await everyDelivery(stack.url)).filter((d) => d.state === "pending" || d.state === "retrying"),
      (d) => `${d.state}${d.next_attempt_at > now ? " later" : ""}: ${d.last_error}`,
    );
    assert.equal(
      left,
      0,
      `the deliveries the fuzzing queued did not drain within ${DRAIN_SAFETY_MS / 1000} s: ${JSON.stringify(waiting)}`,
    );

    const user = ev.randomUserId();
    const body = JSON.stringify(ev.webhookBody([ev.textEvent(ev.userSource(user), "still here")]));
    const answer = await fetch(`${stack.url}/line/webhook/${SENDER_KEY}`, {
      method: "POST",
      body,
      headers: {
        "x-line-signature": lineSignature(CHANNEL_SECRET, body),
        "content-type": "application/json",
      },
    });
    assert.equal(answer.status, 200);
    let relayed = true;
    await stack.sink
      .waitFor((all) => all.some((p) => (p as PartnerPayload).user_key === user), RELAY_WITHIN_MS)
      .catch(() => {
        relayed = false;
      });

    const deliveries = countBy(await everyDelivery(stack.url), (d) => d.state);
    t.diagnostic(
      `deliveries by state: ${Object.entries(deliveries)
        .sort()
        .map(([state, n]) => `${state}: ${n}`)
        .join(", ")}`,
    );
    // Warnings and errors talkgate logged, by message (5xx answers are logged as http:error too).
    const logged = new Map<string, number>();
    for (const line of stack.logs) {
      // 503 -407 is the documented answer of the stack's channel without an access token.
      if (line.code === "-407") continue;
      const key = `${line.level >= 50 ? "error" : "warn"} ${line.msg}${line.err?.message ? `: ${line.err.message.slice(0, 120)}` : ""}${line.reason ? ` (${line.reason.slice(0, 80)})` : ""}`;
      logged.set(key, (logged.get(key) ?? 0) + 1);
    }
    t.diagnostic(`logged: ${[...logged].map(([key, n]) => `${n}× ${key}`).join("; ") || "nothing"}`);
    assert.ok(
      relayed,
      `a new event was not relayed within ${RELAY_WITHIN_MS / 1000} s of an empty outbox after the fuzzing`,
    );
    const errors = [...logged].filter(([key]) => key.startsWith("error"));
    assert.deepEqual(errors, [], "talkgate logged internal errors");
  });

  test("and it stops within 5 s", async () => {
    let stopped = false;
    closing = stack.close().then(() => {
      stopped = true;
    });
    await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    if (!stopped) {
      // Its servers stay open and would keep this test file running for ever: end it once this is reported.
      setTimeout(() => process.exit(1), 2_000).unref();
      assert.fail("talkgate did not stop within 5 s: deliveries in flight never finish");
    }
  });
});

/** How many of `items` have each key. */
function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** The deliveries of both partners' channels. */
async function everyDelivery(url: string): Promise<Delivery[]> {
  return [...(await listDeliveries(url)), ...(await listDeliveries(url, {}, OTHER_API_KEY))];
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Writes raw bytes to talkgate's socket (for requests no HTTP client would send) and returns the reply. */
function rawExchange(base: string, bytes: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    let reply = "";
    socket.on("data", (data) => {
      reply += data;
    });
    socket.on("close", () => resolve(reply));
    socket.on("error", () => resolve(reply));
    socket.write(bytes);
    setTimeout(() => socket.end(), 500).unref();
  });
}
