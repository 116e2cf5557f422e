// Security (issue 5, docs/security.md): body limits, path traversal, SSRF, secrets and message text kept
// out of logs, and the partner API's rate limit. Each test names the threat it shows mitigated.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Readable, Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { parse as parseDisposition } from "content-disposition";
import pino from "pino";
import { request } from "undici";
import * as ev from "../emulator/events.ts";
import { type LineEmulator, startLineEmulator } from "../emulator/line-emulator.ts";
import { type PartnerSink, startPartnerSink } from "../emulator/partner-sink.ts";
import { parseConfig, type TalkgateConfig } from "../src/config/config.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { lineSignature } from "../src/core/signature.ts";
import { startTalkgate } from "../src/main.ts";
import { TEST_DATABASE, testDatabaseUrl } from "./support/database.ts";
import { deliveriesByState } from "./support/deliveries.ts";
import { png as pngImage } from "./support/media-fixtures.ts";
import { readCount, readRows } from "./support/read-rows.ts";
import {
  ACCESS_TOKEN,
  API_KEY,
  CHANNEL_SECRET,
  OTHER_API_KEY,
  SENDER_KEY,
  SIGNING_SECRET,
  stackConfig,
} from "./support/stack.ts";

// ─── a stack whose configuration, secrets and logger the test chooses ─────────────────────────────────
interface Channel {
  senderKey: string;
  channelSecret: string;
  channelAccessToken?: string;
  partner: string;
}
interface SecurityStack {
  url: string;
  emulator: LineEmulator;
  sink: PartnerSink;
  config: TalkgateConfig;
  dir: string;
  close(): Promise<void>;
}

/**
 * Emulator, sink and talkgate as test/support/stack.ts makes them, except that `partners` and `channels`
 * (with their secrets) replace the defaults when given, and talkgate logs to `logger` (silent by default).
 */
async function startSecurityStack(
  options: {
    config?: Record<string, unknown>;
    line?: Record<string, unknown>;
    partners?: (sinkUrl: string, sinkPort: number) => Array<Record<string, unknown>>;
    channels?: Channel[];
    signingSecret?: string;
    logger?: pino.Logger;
  } = {},
): Promise<SecurityStack> {
  const dir = mkdtempSync(join(tmpdir(), "talkgate-security-"));
  const channels = options.channels ?? [
    {
      senderKey: SENDER_KEY,
      channelSecret: CHANNEL_SECRET,
      channelAccessToken: ACCESS_TOKEN,
      partner: "partner",
    },
  ];
  const emulator = await startLineEmulator({
    channels: channels.flatMap((c) =>
      c.channelAccessToken
        ? [{ channelId: c.senderKey, channelSecret: c.channelSecret, accessToken: c.channelAccessToken }]
        : [],
    ),
  });
  const signingSecret = options.signingSecret ?? SIGNING_SECRET;
  const sink = await startPartnerSink({ signingSecret });
  const raw = stackConfig(emulator.url, sink.url, {
    ...(options.config ? { config: options.config } : {}),
    ...(options.line ? { line: options.line } : {}),
  });
  if (options.partners) raw.partners = options.partners(sink.url, sink.port) as typeof raw.partners;
  if (options.channels) raw.channels = options.channels as typeof raw.channels;
  raw.database = await testDatabaseUrl(dir);
  const config = parseConfig(raw, { baseDir: dir });
  const talkgate = await startTalkgate(config, { logger: options.logger ?? pino({ level: "silent" }) });
  for (const c of channels) {
    if (emulator.channel(c.senderKey))
      emulator.setWebhookUrl(c.senderKey, `${talkgate.url}/line/webhook/${c.senderKey}`);
  }
  return {
    url: talkgate.url,
    emulator,
    sink,
    config,
    dir,
    async close() {
      await talkgate.close();
      await emulator.close();
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Answers as status, headers and text (undici: the path is sent exactly as given, never normalised). */
async function call(
  base: string,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: string | Buffer | Readable; key?: string | null } = {},
) {
  const headers: Record<string, string> = { ...init.headers };
  const key = init.key === undefined ? API_KEY : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const response = await request(`${base}${path}`, {
    method: method as "GET",
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await response.body.text();
  let json: { code?: string; message?: string } & Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    // left empty: the assertions say what was expected
  }
  return { status: response.statusCode, headers: response.headers, text, json };
}

function assertRefused(answer: Awaited<ReturnType<typeof call>>, status: number, code: string, what: string) {
  assert.equal(answer.status, status, `${what}: ${answer.text.slice(0, 300)}`);
  assert.equal(answer.json.code, code, `${what}: ${answer.text.slice(0, 300)}`);
  assert.equal(typeof answer.json.message, "string", what);
}

/** Every file under `root`, as paths relative to it. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(root, path));
    }
  };
  walk(root);
  return out.sort();
}

/** A body of `size` bytes sent chunked (no Content-Length), so the limit must be enforced while reading. */
function chunked(size: number, fill = 0x20): Readable {
  const chunk = Buffer.alloc(64 * 1024, fill);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const next = chunk.subarray(0, Math.min(left, chunk.length));
      left -= next.length;
      this.push(next);
    },
  });
}

/** The attachment and upload files talkgate keeps: in mediaDir on SQLite, in the database on PostgreSQL. */
async function mediaFiles(stack: SecurityStack): Promise<string[]> {
  if (TEST_DATABASE === "sqlite") return filesUnder(stack.config.mediaDir);
  const names = await readRows<{ name: string }>(
    stack.config.database,
    "SELECT name FROM files ORDER BY name",
  );
  return names.map((row) => row.name);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// ─── body limits ───────────────────────────────────────────────────────────────────────────────────────
describe("request body limits, everywhere", () => {
  const PARTNER_LIMIT = 64 * 1024;
  let stack: SecurityStack;
  before(async () => {
    stack = await startSecurityStack({ config: { partnerApi: { bodyLimitBytes: PARTNER_LIMIT } } });
  });
  after(() => stack.close());
  // Every event stored, relayed or not.
  const countEvents = () => readCount(stack.config.database, "SELECT count(*) AS n FROM events");

  test("a webhook over 2 MiB answers 413 -413, with or without Content-Length, and stores nothing", async () => {
    const before = await countEvents();
    const limit = stack.config.webhook.bodyLimitBytes;
    assert.equal(limit, 2 * 1024 * 1024);
    const body = Buffer.alloc(limit + 1, 0x20);
    body.write(JSON.stringify({ events: [ev.textEvent(ev.userSource(ev.randomUserId()), "big")] }));
    const signed = {
      "x-line-signature": lineSignature(CHANNEL_SECRET, body),
      "content-type": "application/json",
    };
    const webhook = `/line/webhook/${SENDER_KEY}`;
    assertRefused(
      await call(stack.url, "POST", webhook, { headers: signed, body, key: null }),
      413,
      "-413",
      "sized",
    );
    const streamed = await call(stack.url, "POST", webhook, {
      headers: { "content-type": "application/json", "x-line-signature": "x" },
      body: chunked(limit + 1),
      key: null,
    });
    assertRefused(streamed, 413, "-413", "chunked");
    // Exactly at the limit is read (and refused for its signature, not its size).
    const atLimit = await call(stack.url, "POST", webhook, {
      headers: { "x-line-signature": "x" },
      body: Buffer.alloc(limit, 0x20),
      key: null,
    });
    assertRefused(atLimit, 401, "-412", "at the limit");
    assert.equal(await countEvents(), before);
  });

  test("a partner API JSON body over partnerApi.bodyLimitBytes answers 413 -413 on every JSON route", async () => {
    for (const path of [
      "/line/message/send",
      "/line/chat/loading",
      "/line/chat/read",
      "/line/user",
      "/line/channel/webhook/endpoint/set",
      "/line/deliveries/replay",
    ]) {
      const json = JSON.stringify({ sender_key: SENDER_KEY, pad: "x".repeat(PARTNER_LIMIT) });
      const headers = { "content-type": "application/json" };
      assertRefused(await call(stack.url, "POST", path, { headers, body: json }), 413, "-413", path);
      const streamed = await call(stack.url, "POST", path, { headers, body: chunked(PARTNER_LIMIT + 1) });
      assertRefused(streamed, 413, "-413", `${path} (chunked)`);
    }
    // Under the limit the same route reads the body (and names the bad field).
    const small = await call(stack.url, "POST", "/line/user", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sender_key: SENDER_KEY, pad: "x" }),
    });
    assertRefused(small, 400, "-405", "small");
  });

  test("uploads: more files than allowed answer 413 and leave no file behind (sizes: test/upload.test.ts)", async () => {
    // Files over LINE's size limits (an image over 10 MB → 413 -413) are covered in test/upload.test.ts.
    const png = pngImage();
    const before = await mediaFiles(stack);
    const form = new FormData();
    for (const field of ["file", "preview", "file"]) form.append(field, new Blob([png]), "a.png");
    const response = await fetch(`${stack.url}/line/media`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const answer = (await response.json()) as { code: string };
    assert.equal(response.status, 413, JSON.stringify(answer));
    assert.equal(answer.code, "-413");
    // Not even the two parts stored before the third was refused.
    assert.deepEqual(await mediaFiles(stack), before, "nothing stays behind");
  });
});

// ─── path traversal ────────────────────────────────────────────────────────────────────────────────────
describe("path traversal", () => {
  let stack: SecurityStack;
  const user = ev.randomUserId();
  const HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "C:\\Windows\\System32\\evil.dll",
    "a\u0000b/../../../nul-escape",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//dots-escape",
    "..",
    ".",
    "",
    "..\u0000",
    "\r\nContent-Type: text/html\r\n\r\n<b>x</b>",
    `${"../".repeat(50)}deep-escape`,
  ];
  before(async () => {
    stack = await startSecurityStack();
  });
  after(() => stack.close());

  test("file names in file messages never escape mediaDir nor reach Content-Disposition as paths", async () => {
    const outside = tmpdir();
    const escapes = ["passwd", "win.ini", "evil.dll", "nul-escape", "dots-escape", "deep-escape"];
    const before = new Set(readdirSync(outside));
    const events = HOSTILE_NAMES.map((fileName) =>
      ev.fileEvent(ev.userSource(user), { fileName, fileSize: 3 }),
    );
    for (const e of events) stack.emulator.setContent(e.message.id, { body: "abc" });
    assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, events)).status, 200);
    const ids = events.map((e) => e.message.id);
    const payloads = (
      (await stack.sink.waitFor(
        (all) => ids.every((id) => all.some((p) => (p as PartnerPayload).content.id === id)),
        20_000,
      )) as PartnerPayload[]
    ).filter((p) => ids.includes(String(p.content.id)));

    for (const payload of payloads) {
      const name = String((payload.content as { fileName?: unknown }).fileName);
      const answer = await call(
        stack.url,
        "GET",
        `/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${payload.serial_number}`,
      );
      assert.equal(answer.status, 200, `${JSON.stringify(name)}: ${answer.text}`);
      assert.equal(answer.text, "abc");
      const disposition = String(answer.headers["content-disposition"] ?? "");
      assert.match(disposition, /^attachment;/, disposition);
      // The name a client takes (filename*, else filename), and the plain fallback old clients take.
      const served = String(parseDisposition(disposition).parameters.filename ?? "");
      const fallback = /(?:^|;)\s*filename=(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(disposition);
      const plain = fallback?.[1] ?? fallback?.[2] ?? "";
      for (const shown of [served, plain]) {
        assert.ok(shown.length > 0 && shown.length <= 255, `${JSON.stringify(name)} → ${disposition}`);
        assert.ok(!/[/\\]/.test(shown), `${JSON.stringify(name)} is served with a path: ${disposition}`);
        assert.ok(
          ![...shown].some((c) => (c.codePointAt(0) ?? 0) < 0x20 || c === "\u007f"),
          `${JSON.stringify(name)} → ${JSON.stringify(disposition)}`,
        );
        assert.ok(shown !== "." && shown !== "..", `${JSON.stringify(name)} → ${disposition}`);
      }
    }

    // Stored: only talkgate's own names, under <sender_key>/ (of mediaDir, or in the database); nothing anywhere
    // else (on PostgreSQL the data directory holds the name of the test's database).
    const media = await mediaFiles(stack);
    assert.equal(media.length, HOSTILE_NAMES.length, media.join(", "));
    for (const file of media) assert.match(file, new RegExp(`^${SENDER_KEY}/\\d+-[0-9a-f]{8}$`), file);
    for (const file of filesUnder(stack.dir)) {
      assert.ok(
        file.startsWith("media/") ||
          (TEST_DATABASE === "sqlite" ? /^talkgate\.db(-wal|-shm|-lock)?$/ : /^database-url$/).test(file),
        `unexpected file ${file} in the data directory`,
      );
    }
    const appeared = readdirSync(outside).filter((f) => !before.has(f) && escapes.includes(f));
    assert.deepEqual(appeared, [], `files escaped into ${outside}`);
    for (const name of escapes) assert.ok(!existsSync(join(stack.dir, "..", name)), name);
    if (existsSync("/etc/passwd"))
      assert.ok(statSync("/etc/passwd").mtimeMs < Date.now() - 60_000, "/etc/passwd untouched");
  });

  test("serial_number and sender_key with ../, %2e%2e/ or NUL answer 4xx with a code; nothing is read or written outside", async () => {
    const before = filesUnder(stack.dir).filter((f) => !f.startsWith("talkgate.db"));
    const HOSTILE = [
      "../../talkgate.db",
      "..%2f..%2ftalkgate.db",
      "%2e%2e/%2e%2e/talkgate.db",
      "..\\..\\talkgate.db",
      "/etc/passwd",
      "media/../talkgate.db",
      "a\u0000b",
      "\u0000",
      `${SENDER_KEY}/../${SENDER_KEY}`,
    ];
    const encode = (value: string) => encodeURIComponent(value);
    const queries: Array<[string, string]> = [];
    for (const value of HOSTILE) {
      queries.push([
        `sender_key=${SENDER_KEY}&serial_number=${encode(value)}`,
        `serial_number ${JSON.stringify(value)}`,
      ]);
      queries.push([`sender_key=${encode(value)}&serial_number=x`, `sender_key ${JSON.stringify(value)}`]);
    }
    // Sent raw too, so that talkgate itself decodes %2e%2e%2f and %00.
    queries.push([`sender_key=${SENDER_KEY}&serial_number=%2e%2e%2f%2e%2e%2ftalkgate.db`, "raw %2e%2e%2f"]);
    queries.push([`sender_key=%2e%2e%2f${SENDER_KEY}&serial_number=x`, "raw sender %2e%2e%2f"]);
    queries.push([`sender_key=${SENDER_KEY}&serial_number=..%00`, "raw %00"]);

    for (const [query, what] of queries) {
      for (const [method, path] of [
        ["GET", "/line/message/long"],
        ["GET", "/line/message/attachment"],
        ["HEAD", "/line/message/attachment"],
      ] as const) {
        const answer = await call(stack.url, method, `${path}?${query}`);
        assert.ok(answer.status >= 400 && answer.status < 500, `${method} ${path} ${what}: ${answer.status}`);
        if (method === "GET") {
          assert.ok(
            ["-405", "-406", "-508"].includes(String(answer.json.code)),
            `${path} ${what}: ${answer.text}`,
          );
          assert.ok(!answer.text.includes("SQLite format"), `${path} ${what} served the database`);
        }
      }
    }
    for (const value of HOSTILE) {
      for (const [path, body] of [
        ["/line/chat/read", { sender_key: SENDER_KEY, serial_number: value }],
        ["/line/chat/read", { sender_key: value, serial_number: "x" }],
        ["/line/user", { sender_key: value, user_key: user }],
        ["/line/chat/loading", { sender_key: value, user_key: user, seconds: 5 }],
      ] as const) {
        const answer = await call(stack.url, "POST", path, {
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        assert.ok(
          answer.status >= 400 && answer.status < 500,
          `${path} ${JSON.stringify(body)}: ${answer.text}`,
        );
        assert.ok(["-405", "-406", "-508"].includes(String(answer.json.code)), `${path}: ${answer.text}`);
      }
      const profile = await call(
        stack.url,
        "GET",
        `/line/user/profile?sender_key=${encode(value)}&user_key=${user}`,
      );
      assert.ok(["-405", "-406"].includes(String(profile.json.code)), profile.text);
    }
    const after = filesUnder(stack.dir).filter((f) => !f.startsWith("talkgate.db"));
    assert.deepEqual(after, before, "no file was created or removed");
  });

  test("GET /media/<name> with traversal answers 404 and never serves a file outside uploads", async () => {
    for (const path of [
      "/media/..%2f..%2ftalkgate.db",
      "/media/..%2ftalkgate.db",
      "/media/%2e%2e%2f%2e%2e%2ftalkgate.db",
      "/media/%2E%2E%2F%2E%2E%2Ftalkgate.db",
      "/media/..%5c..%5ctalkgate.db",
      "/media/....%2f%2ftalkgate.db",
      "/media/uploads%2f..%2f..%2ftalkgate.db",
      "/media/talkgate.db",
      "/media/.incoming",
      "/media/%2e%2e",
      "/media/..",
      "/media/../talkgate.db",
      "/media/%00",
      `/media/${"A".repeat(43)}.png%00.db`,
      `/media/${"A".repeat(43)}.png%2f..%2f..%2f..%2ftalkgate.db`,
      "/line/docs/static/..%2f..%2f..%2fpackage.json",
      "/line/docs/static/../../../package.json",
    ]) {
      const answer = await call(stack.url, "GET", path, { key: null });
      assert.equal(answer.status, 404, `${path}: ${answer.status} ${answer.text.slice(0, 200)}`);
      assert.ok(["-508", "-601"].includes(String(answer.json.code)), `${path}: ${answer.text.slice(0, 200)}`);
      assert.ok(!answer.text.includes("SQLite format") && !answer.text.includes('"dependencies"'), path);
    }
  });
});

// ─── SSRF ──────────────────────────────────────────────────────────────────────────────────────────────
describe("SSRF: deliveries never reach private, loopback or link-local addresses unless allowed", () => {
  let stack: SecurityStack;
  // Each target is one partner with one channel; the sink listens on 127.0.0.1.
  const targets = (port: number): Array<[id: string, receiveUrl: string]> => [
    ["loopback-v4", `http://127.0.0.1:${port}/loopback-v4`],
    ["localhost", `http://localhost:${port}/localhost`], // a DNS name resolving to 127.0.0.1 (and ::1)
    ["loopback-v6", `http://[::1]:${port}/loopback-v6`],
    ["mapped-v4", `http://[::ffff:127.0.0.1]:${port}/mapped-v4`],
    ["nat64-v4", `http://[64:ff9b::7f00:1]:${port}/nat64-v4`],
    ["decimal-v4", `http://2130706433:${port}/decimal-v4`],
    ["short-v4", `http://127.1:${port}/short-v4`],
    ["unspecified", `http://0.0.0.0:${port}/unspecified`],
    ["metadata", "http://169.254.169.254/latest/meta-data"],
    ["rfc1918", `http://10.0.0.1:${port}/rfc1918`],
    ["carrier-nat", `http://100.64.0.1:${port}/carrier-nat`],
    ["ula-v6", `http://[fd00::1]:${port}/ula-v6`],
    ["compat-v4", `http://[::127.0.0.1]:${port}/compat-v4`], // IPv4-compatible ::/96
    ["translated-v4", `http://[::ffff:0:7f00:1]:${port}/translated-v4`], // RFC 6145
    ["nat64-local", `http://[64:ff9b:1::7f00:1]:${port}/nat64-local`], // RFC 8215 local-use prefix
    ["6to4-metadata", "http://[2002:a9fe:a9fe::1]/latest/meta-data"], // 6to4 embedding 169.254.169.254
  ];
  const senderKeyOf = (i: number) => `30000000${String(i).padStart(2, "0")}`;
  const ids = targets(0).map(([id]) => id);

  before(async () => {
    stack = await startSecurityStack({
      config: { delivery: { timeoutMs: 1_000, initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 50 } },
      partners: (_url, port) => [
        ...targets(port).map(([id, receiveUrl]) => ({ id, receiveUrl, allowPrivateNetwork: false })),
        // The control: the same loopback name, allowed by the operator, is delivered to.
        { id: "allowed", receiveUrl: `http://localhost:${port}/allowed`, allowPrivateNetwork: true },
      ],
      channels: [...ids, "allowed"].map((partner, i) => ({
        senderKey: senderKeyOf(i),
        channelSecret: `secret-${partner}`,
        partner,
      })),
    });
  });
  after(() => stack.close());

  test("private, loopback and link-local receiveUrls are refused, the reason recorded in deliveries.last_error", async (t) => {
    for (const [i, partner] of [...ids, "allowed"].entries()) {
      const body = JSON.stringify(
        ev.webhookBody([ev.textEvent(ev.userSource(ev.randomUserId()), `to ${partner}`)]),
      );
      const answer = await call(stack.url, "POST", `/line/webhook/${senderKeyOf(i)}`, {
        headers: {
          "x-line-signature": lineSignature(`secret-${partner}`, body),
          "content-type": "application/json",
        },
        body,
        key: null,
      });
      assert.equal(answer.status, 200, answer.text);
    }
    // By partner, and these partners have no API key: the deliveries' rows (on PostgreSQL, the events' rows).
    type Row = { partner_id: string; state: string; attempts: number; last_error: string | null };
    const read = () =>
      readRows<Row>(stack.config.database, {
        sqlite: "SELECT partner_id, state, attempts, last_error FROM deliveries ORDER BY partner_id",
        postgres: `SELECT partner_id, state, attempts, last_error FROM events WHERE state IS NOT NULL
          ORDER BY partner_id`,
      });
    await until("every delivery attempted", async () => {
      const all = await read();
      return all.length === ids.length + 1 && all.every((r) => r.attempts >= 1 || r.state === "delivered");
    });
    const byPartner = new Map((await read()).map((r) => [r.partner_id, r]));
    t.diagnostic(
      [...byPartner]
        .map(([id, r]) => `${id}: ${r.state}${r.last_error ? ` (${r.last_error})` : ""}`)
        .join(", "),
    );
    assert.equal(
      byPartner.get("allowed")?.state,
      "delivered",
      "allowPrivateNetwork lets the operator allow it",
    );
    for (const id of ids) {
      const row = byPartner.get(id);
      assert.notEqual(row?.state, "delivered", id);
      assert.match(String(row?.last_error), /private/i, `${id}: ${row?.last_error}`);
    }
    assert.deepEqual(
      stack.sink.received.map((r) => r.path),
      ["/allowed/message"],
      "only the allowed partner was reached",
    );
  });
});

// ─── secrets and message text in logs ──────────────────────────────────────────────────────────────────
describe("secrets and message text never reach the logs, even at trace level", () => {
  const SECRETS = {
    channelSecret: "chsec-3f9d1c7e5b2a",
    accessToken: "acctok-8a1b2c3d4e5f",
    partnerKey: "pkey-5e6f7a8b9c0d-partner",
    otherPartnerKey: "pkey-0c1d2e3f4a5b-other",
    signingSecretRaw: "sigsec-9a8b7c6d5e4f-0123456",
    wrongKey: "pkey-wrong-77aa88bb99cc",
  };
  const SIGNING = `whsec_${Buffer.from(SECRETS.signingSecretRaw).toString("base64")}`;
  const TEXTS = {
    webhook: "msgtext-webhook-4471",
    long: "msgtext-long-5582",
    refused: "msgtext-badsignature-6693",
    unknownChannel: "msgtext-unknownchannel-6694",
    notJson: "msgtext-notjson-7704",
    send: "msgtext-send-8815",
    sendFailed: "msgtext-sendfailed-9926",
    brokenJson: "msgtext-brokenjson-9927",
    fileName: "filename-1037-secret.pdf",
    postback: "postback-data-2148",
    address: "address-text-2149",
    upload: "upload-name-3259.png",
    rawSocket: "msgtext-rawsocket-4360",
  };
  const lines: string[] = [];
  let stack: SecurityStack;
  const user = ev.randomUserId();
  const CHANNEL = "1656168399";

  before(async () => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    stack = await startSecurityStack({
      logger: pino({ level: "trace" }, stream),
      line: { timeoutMs: 300 },
      signingSecret: SIGNING,
      config: { send: { attempts: 2, retryDelayMs: 10 } },
      partners: (url) => [
        {
          id: "partner",
          receiveUrl: `${url}/line`,
          apiKeys: [SECRETS.partnerKey],
          signingSecret: SIGNING,
          allowPrivateNetwork: true,
        },
        {
          id: "other",
          receiveUrl: `${url}/other`,
          apiKeys: [SECRETS.otherPartnerKey],
          allowPrivateNetwork: true,
        },
      ],
      channels: [
        {
          senderKey: CHANNEL,
          channelSecret: SECRETS.channelSecret,
          channelAccessToken: SECRETS.accessToken,
          partner: "partner",
        },
      ],
    });
  });
  after(() => stack.close());

  test("every route, success and error paths, at trace level: no secret, key or message text is logged", async () => {
    const { emulator, sink } = stack;
    const api = (method: string, path: string, body?: unknown, key: string | null = SECRETS.partnerKey) =>
      call(stack.url, method, path, {
        key,
        ...(body === undefined
          ? {}
          : {
              headers: { "content-type": "application/json" },
              body: typeof body === "string" ? body : JSON.stringify(body),
            }),
      });
    const source = ev.userSource(user);

    // Webhooks: stored (text, long text, file, postback, location), refused, unknown channel, not JSON, too big.
    const text = ev.textEvent(source, `hello ${TEXTS.webhook}`);
    const long = ev.textEvent(source, `${TEXTS.long} `.repeat(80));
    const file = ev.fileEvent(source, { fileName: TEXTS.fileName, fileSize: 3 });
    emulator.setContent(file.message.id, { body: "abc" });
    const events = [
      text,
      long,
      file,
      ev.postbackEvent(source, { data: TEXTS.postback }),
      ev.locationEvent(source, { title: TEXTS.address, address: TEXTS.address, latitude: 1, longitude: 2 }),
    ];
    sink.failNext(500); // one failed delivery attempt, logged, then retried
    assert.equal((await emulator.sendWebhook(CHANNEL, events)).status, 200);
    const refused = [ev.textEvent(source, TEXTS.refused)];
    assert.equal((await emulator.sendWebhook(CHANNEL, refused, { signature: "bm9wZQ==" })).status, 401);
    const unknown = JSON.stringify(ev.webhookBody([ev.textEvent(source, TEXTS.unknownChannel)]));
    assert.equal(
      (await call(stack.url, "POST", "/line/webhook/999", { body: unknown, key: null })).status,
      404,
    );
    assert.equal(
      (await emulator.sendWebhook(CHANNEL, [], { rawBody: `{"text":"${TEXTS.notJson}"` })).status,
      400,
    );
    const payloads = (await sink.waitFor((all) => all.length >= events.length, 20_000)) as PartnerPayload[];
    const serialOf = (id: string) => payloads.find((p) => p.content.id === id)?.serial_number ?? "";

    // Reading: long text, attachment; chat, user and channel calls.
    const q = (serial: string) => `sender_key=${CHANNEL}&serial_number=${encodeURIComponent(serial)}`;
    assert.equal((await api("GET", `/line/message/long?${q(serialOf(long.message.id))}`)).status, 200);
    assert.equal((await api("GET", `/line/message/attachment?${q(serialOf(file.message.id))}`)).status, 200);
    assert.equal(
      (
        await api("POST", "/line/chat/read", {
          sender_key: CHANNEL,
          serial_number: serialOf(text.message.id),
        })
      ).status,
      200,
    );
    assert.equal(
      (await api("POST", "/line/chat/loading", { sender_key: CHANNEL, user_key: user, seconds: 5 })).status,
      200,
    );
    await api("GET", `/line/user/profile?sender_key=${CHANNEL}&user_key=${user}`);
    assert.equal(
      (await api("POST", "/line/user", { sender_key: CHANNEL, user_key: user, e164: "01012345678" })).status,
      200,
    );
    await api("POST", "/line/channel/webhook/endpoint/set", {
      sender_key: CHANNEL,
      endpoint: "https://example.com/hook",
    });
    await api("GET", `/line/channel/webhook/endpoint/info?sender_key=${CHANNEL}`);
    await api("GET", `/line/deliveries?sender_key=${CHANNEL}`);

    // Sending: by reply, LINE's 400, LINE's 500 (after retries), LINE not answering, a repeat.
    const send = (serial: string, message: string) =>
      api("POST", "/line/message/send", {
        sender_key: CHANNEL,
        user_key: user,
        serial_number: serial,
        messages: [{ type: "text", text: message }],
      });
    assert.equal((await send("log-1", TEXTS.send)).status, 200);
    assert.equal((await send("log-1", TEXTS.send)).status, 200);
    emulator.failNext("/v2/bot/message/push", {
      status: 400,
      body: {
        message: "The request body has 1 error(s)",
        details: [{ message: "bad", property: "messages[0].text" }],
      },
    });
    assert.equal((await send("log-2", TEXTS.sendFailed)).status, 400);
    emulator.failNext("/v2/bot/message/push", { status: 500 }, 5);
    assert.equal((await send("log-3", TEXTS.sendFailed)).status, 500);
    emulator.clearFaults();
    emulator.failNext("/v2/bot/message/push", { status: 200, delayMs: 1_000 }, 5);
    assert.equal((await send("log-4", TEXTS.sendFailed)).status, 502);
    emulator.clearFaults();

    // Refusals: no key, a wrong key, another partner's key, broken JSON, a wrong content type.
    assert.equal((await send("log-5", TEXTS.send)).status, 200);
    assert.equal((await api("GET", `/line/message/long?${q("x")}`, undefined, null)).status, 401);
    assert.equal((await api("GET", `/line/message/long?${q("x")}`, undefined, SECRETS.wrongKey)).status, 401);
    assert.equal(
      (await api("GET", `/line/message/long?${q("x")}`, undefined, SECRETS.otherPartnerKey)).status,
      404,
    );
    const broken = `{"sender_key":"${CHANNEL}","messages":[{"type":"text","text":"${TEXTS.brokenJson}"`;
    assert.equal((await api("POST", "/line/message/send", broken)).status, 400);
    const wrongType = await call(stack.url, "POST", "/line/message/send", {
      key: SECRETS.partnerKey,
      headers: { "content-type": "text/plain" },
      body: TEXTS.brokenJson,
    });
    assert.equal(wrongType.status, 400); // text/plain is read as a string: "body must be object"

    // Uploads: a good one, and a broken multipart body naming the file.
    const form = new FormData();
    form.append("file", new Blob([pngImage()]), TEXTS.upload);
    const uploaded = await fetch(`${stack.url}/line/media`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${SECRETS.partnerKey}` },
    });
    assert.equal(uploaded.status, 200);
    const cut = `--b\r\nContent-Disposition: form-data; name="file"; filename="${TEXTS.upload}"\r\n\r\n${TEXTS.send}`;
    await call(stack.url, "POST", "/line/media", {
      key: SECRETS.partnerKey,
      headers: { "content-type": "multipart/form-data; boundary=b" },
      body: cut,
    });

    // A request the HTTP parser refuses (a malformed header), carrying a key and text.
    await rawRequest(
      stack.url,
      `POST /line/message/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRETS.partnerKey}\r\n` +
        `Content-Type: application/json\r\nBad Header: 1\r\nContent-Length: 40\r\n\r\n{"text":"${TEXTS.rawSocket}"}`,
    );
    await stack.sink.waitFor((all) => all.length >= events.length, 5_000);
    await stack.close();
    stack.close = async () => {};

    const log = lines.join("");
    assert.ok(log.includes("webhook:stored") && log.includes("http:error"), "the log was captured");
    const readable = `${log}\n${decodedBuffers(log)}`;
    const found = Object.entries({ ...SECRETS, signingSecret: SIGNING, ...TEXTS }).filter(([, needle]) =>
      readable.includes(needle),
    );
    const where = found.map(([name, needle]) => {
      const line =
        lines.find((l) => l.includes(needle)) ?? lines.find((l) => decodedBuffers(l).includes(needle));
      return `${name} (${needle}) in: ${(line ?? "").slice(0, 300)}`;
    });
    assert.deepEqual(where, [], "secrets or message text in the log");
  });
});

describe("a delivery that goes dead logs none of its message text, even at trace level", () => {
  const TEXTS = {
    text: "msgtext-dead-text-5127",
    long: "msgtext-dead-long-6238",
    postback: "postback-dead-7349",
    address: "address-dead-8450",
    fileName: "filename-dead-9561.pdf",
  };
  const MAX_AGE_MS = 400;
  const lines: string[] = [];
  let stack: SecurityStack;

  before(async () => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    stack = await startSecurityStack({
      logger: pino({ level: "trace" }, stream),
      // A delivery is dead once it has failed for MAX_AGE_MS; retries come every 50 to 100 ms until then.
      config: { delivery: { maxAgeMs: MAX_AGE_MS, initialBackoffMs: 50, maxBackoffMs: 100, pollMs: 20 } },
    });
  });
  after(() => stack.close());

  test("delivery:dead (and every failed attempt before it) names the delivery, never what it carried", async () => {
    const { emulator, sink } = stack;
    // The partner fails every time, and echoes what it got in its answer (a log of the answer would leak it).
    sink.respondWith((req) => ({ status: 500, body: JSON.stringify({ code: "500", message: req.raw }) }));
    const user = ev.randomUserId();
    const source = ev.userSource(user);
    const file = ev.fileEvent(source, { fileName: TEXTS.fileName, fileSize: 3 });
    emulator.setContent(file.message.id, { body: "abc" });
    const events = [
      ev.textEvent(source, `hello ${TEXTS.text}`),
      ev.textEvent(source, `${TEXTS.long} `.repeat(80)),
      ev.postbackEvent(source, { data: TEXTS.postback }),
      ev.locationEvent(source, { title: TEXTS.address, address: TEXTS.address, latitude: 1, longitude: 2 }),
      file,
    ];
    assert.equal((await emulator.sendWebhook(SENDER_KEY, events)).status, 200);
    const states = () => deliveriesByState(stack.url);
    // A safety net only: each goes dead soon after MAX_AGE_MS.
    await until("every delivery dead", async () => (await states()).dead === events.length, 30_000);
    assert.deepEqual(await states(), { dead: events.length });
    assert.ok(sink.received.length >= events.length, "every event reached the (failing) partner");
    assert.ok(
      sink.received.some((r) => r.raw.includes(TEXTS.text)),
      "the partner did get the text (so it was there to leak)",
    );
    await stack.close();
    stack.close = async () => {};

    const log = lines.join("");
    const dead = lines.filter((line) => line.includes('"delivery:dead"'));
    assert.equal(dead.length, events.length, "one delivery:dead line per delivery");
    assert.ok(
      lines.some((line) => line.includes('"delivery:attempt:failed"')),
      "failed attempts were logged",
    );
    const readable = `${log}\n${decodedBuffers(log)}`;
    const where = Object.entries(TEXTS)
      .filter(([, needle]) => readable.includes(needle))
      .map(
        ([name, needle]) =>
          `${name} (${needle}) in: ${(lines.find((l) => l.includes(needle)) ?? "").slice(0, 300)}`,
      );
    assert.deepEqual(where, [], "message text in the log");
  });
});

/** The text of every serialised Buffer (`{"type":"Buffer","data":[…]}`) in a log, where bytes hide. */
function decodedBuffers(log: string): string {
  const out: string[] = [];
  for (const match of log.matchAll(/"type":"Buffer","data":\[([\d,]*)\]/g)) {
    out.push(Buffer.from((match[1] ?? "").split(",").filter(Boolean).map(Number)).toString("latin1"));
  }
  return out.join("\n");
}

/** Writes raw bytes to talkgate's socket (for requests no HTTP client would send) and returns the answer. */
async function rawRequest(base: string, bytes: string): Promise<string> {
  const { connect } = await import("node:net");
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    let answer = "";
    socket.on("data", (data) => {
      answer += data;
    });
    socket.on("close", () => resolve(answer));
    socket.on("error", () => resolve(answer));
    socket.write(bytes);
    setTimeout(() => socket.end(), 300).unref();
  });
}

// ─── rate limit ────────────────────────────────────────────────────────────────────────────────────────
describe("partner API rate limit (partnerApi.rateLimitMax per partnerApi.rateLimitWindowMs)", () => {
  const MAX = 5;
  const WINDOW_MS = 2_000;
  const SECOND_KEY = "test-partner-api-key-0002";
  const ROTATED_A = "rotating-partner-key-aaaa";
  const ROTATED_B = "rotating-partner-key-bbbb";
  let stack: SecurityStack;
  before(async () => {
    stack = await startSecurityStack({
      config: { partnerApi: { rateLimitMax: MAX, rateLimitWindowMs: WINDOW_MS } },
      partners: (url) => [
        {
          id: "partner",
          receiveUrl: `${url}/line`,
          apiKeys: [API_KEY, SECOND_KEY],
          allowPrivateNetwork: true,
        },
        { id: "other", receiveUrl: `${url}/other`, apiKeys: [OTHER_API_KEY], allowPrivateNetwork: true },
        {
          id: "rotating",
          receiveUrl: `${url}/rot`,
          apiKeys: [ROTATED_A, ROTATED_B],
          allowPrivateNetwork: true,
        },
      ],
    });
  });
  after(() => stack.close());
  const ask = (key: string | null) =>
    call(stack.url, "GET", `/line/message/long?sender_key=${SENDER_KEY}&serial_number=nope`, { key });

  test("over the limit a key gets 429 -429 with Retry-After; other partners and bad keys are unaffected; the window resets it", async () => {
    // Requests without a valid key are refused 401 before the limiter and do not use up the partner's quota.
    for (let i = 0; i < MAX * 2; i++)
      assertRefused(await ask("not-a-key-at-all-0000"), 401, "-401", "bad key");
    for (let i = 0; i < MAX; i++) assertRefused(await ask(API_KEY), 404, "-508", `request ${i + 1}`);
    const limited = await ask(API_KEY);
    assertRefused(limited, 429, "-429", "over the limit");
    assert.ok(Number(limited.headers["retry-after"]) > 0, `Retry-After: ${limited.headers["retry-after"]}`);
    // The window, not the time left in it.
    assert.match(limited.text, /at most 5 per 2 s; retry in [12] s/);
    assertRefused(await ask(OTHER_API_KEY), 404, "-406", "another partner is not limited");
    await sleep(WINDOW_MS + 200);
    assertRefused(await ask(API_KEY), 404, "-508", "after the window");
  });

  test("the limit is per API key, as docs/configuration.md and docs/errors.md say", async () => {
    for (let i = 0; i < MAX; i++) await ask(ROTATED_A);
    assertRefused(await ask(ROTATED_A), 429, "-429", "the first key over its limit");
    const second = await ask(ROTATED_B);
    assert.notEqual(
      second.status,
      429,
      `the partner's second key is limited by the first key's use: ${second.text}`,
    );
  });
});
