// The operator plane end to end (SPEC §10, on the database of this run): operators sign in or use tokens, viewers only
// look, partners and channels made at runtime relay at once, keys and signing secrets rotate with overlap, every
// change leaves one audit entry without secrets, and stored secrets refuse a wrong TALKGATE_SECRET_KEY.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import pino from "pino";
import { Webhook } from "standardwebhooks";
import * as ev from "../emulator/events.ts";
import { type PartnerSink, startPartnerSink } from "../emulator/partner-sink.ts";
import { SecretKeyRefusal } from "../src/app/runtime-config.ts";
import type { AuditEntry } from "../src/app/store.ts";
import { parseConfig } from "../src/config/config.ts";
import { hashPassword } from "../src/core/credentials.ts";
import { lineSignature } from "../src/core/signature.ts";
import { startTalkgate } from "../src/main.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { eventually } from "./support/deliveries.ts";
import { callApi, until } from "./support/partner-api.ts";
import { API_KEY, OTHER_API_KEY, SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

const SECRET_KEY = randomBytes(32).toString("base64");
const ADMIN_PASSWORD = "correct horse battery staple";
const VIEWER_PASSWORD = "viewer password 1234";
const NEW_CHANNEL = "1700000001";
const NEW_CHANNEL_SECRET = "new-channel-secret-abcdef";
const NEW_ACCESS_TOKEN = "new-channel-access-token";
const ROTATED_CHANNEL_SECRET = "rotated-channel-secret-0123";
const SIGNING_A = `whsec_${randomBytes(32).toString("base64")}`;
const SIGNING_B = `whsec_${randomBytes(32).toString("base64")}`;
/** Everything no answer and no audit entry may ever contain. */
const SECRETS = [
  NEW_CHANNEL_SECRET,
  ROTATED_CHANNEL_SECRET,
  NEW_ACCESS_TOKEN,
  SIGNING_A,
  SIGNING_B,
  ADMIN_PASSWORD,
  VIEWER_PASSWORD,
];

let stack: Stack;
let newPartner: PartnerSink;
/** Every admin answer's text, checked at the end for secrets. */
const answers: string[] = [];

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** Calls the admin API with a bearer token, or a session cookie (and its CSRF token), or nothing. */
async function admin(
  method: string,
  path: string,
  body?: unknown,
  auth: { token?: string; cookie?: string; csrf?: string } = { token: adminToken },
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (auth.cookie) headers.cookie = auth.cookie;
  if (auth.csrf) headers["x-csrf-token"] = auth.csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${stack.talkgate.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  answers.push(text);
  return {
    status: response.status,
    body:
      text && response.headers.get("content-type")?.startsWith("application/json")
        ? JSON.parse(text)
        : { text },
    headers: response.headers,
  };
}

function assertRefused(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.code, code, JSON.stringify(answer.body));
  assert.equal(typeof answer.body.message, "string");
}

async function auditSince(id: number): Promise<AuditEntry[]> {
  const { body } = await admin("GET", "/admin/audit?limit=1000");
  return (body.entries as AuditEntry[]).filter((e) => e.id > id).reverse();
}

async function lastAuditId(): Promise<number> {
  const { body } = await admin("GET", "/admin/audit?limit=1");
  return (body.entries as AuditEntry[])[0]?.id ?? 0;
}

async function signIn(name: string, password: string) {
  const answer = await admin("POST", "/admin/sign-in", { name, password }, {});
  const cookie = answer.headers.get("set-cookie")?.split(";")[0];
  return { answer, cookie, csrf: answer.body.csrfToken as string | undefined };
}

function signedWebhook(senderKey: string, secret: string, text: string, id: string) {
  const body = JSON.stringify({
    destination: "Uaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    events: [
      {
        type: "message",
        mode: "active",
        timestamp: Date.now(),
        webhookEventId: `01H${id.padStart(23, "0")}`,
        deliveryContext: { isRedelivery: false },
        source: { type: "user", userId: "U0123456789abcdef0123456789abcdef" },
        replyToken: `reply-${id}`,
        message: { type: "text", id, quoteToken: `q-${id}`, text },
      },
    ],
  });
  return fetch(`${stack.talkgate.url}/line/webhook/${senderKey}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-line-signature": lineSignature(secret, body) },
    body,
  });
}

let adminToken = "";

/** A channel's row of GET /admin/overview. */
async function channelOverview(senderKey: string): Promise<Record<string, unknown>> {
  const { status, body } = await admin("GET", "/admin/overview");
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.windowMs, 60_000);
  const row = (body.channels as Array<Record<string, unknown>>).find((c) => c.senderKey === senderKey);
  assert.ok(row, `${senderKey} in the overview`);
  return row;
}

before(async () => {
  newPartner = await startPartnerSink({});
  stack = await startStack({
    env: { TALKGATE_SECRET_KEY: SECRET_KEY },
    config: {
      operators: [
        { name: "alice", role: "admin", passwordHash: await hashPassword(ADMIN_PASSWORD) },
        { name: "victor", role: "viewer", passwordHash: await hashPassword(VIEWER_PASSWORD) },
      ],
      admin: { signInMaxFailures: 3, configPollMs: 200 },
      // Deliveries that keep failing are dead within seconds here (the dead-letter story).
      delivery: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 100, maxAgeMs: 1_500 },
    },
  });
  const session = await signIn("alice", ADMIN_PASSWORD);
  const made = await admin(
    "POST",
    "/admin/tokens",
    { operator: "alice", name: "test suite" },
    { cookie: session.cookie, csrf: session.csrf },
  );
  assert.equal(made.status, 201, JSON.stringify(made.body));
  adminToken = made.body.token as string;
});

after(async () => {
  await stack.close();
  await newPartner.close();
});

test("without operator credentials every admin route answers 401, a partner API key included", async () => {
  const document = JSON.parse(readFileSync("docs/openapi.json", "utf8")) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const routes = Object.entries(document.paths)
    .filter(([path]) => path.startsWith("/admin/") && path !== "/admin/sign-in")
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => ({ method, path })));
  assert.ok(routes.length >= 20, `only ${routes.length} admin routes documented`);
  for (const { method, path } of routes) {
    const url = path
      .replace("{id}", "partner")
      .replace("{senderKey}", "1656168303")
      .replace("{keyId}", "0123456789abcdef")
      .replace("{secretId}", "01234567");
    for (const auth of [{}, { token: API_KEY }, { token: "tgo_not-a-real-token" }]) {
      const answer = await admin(method.toUpperCase(), url, undefined, auth);
      assertRefused(answer, 401, "-801");
    }
  }
});

test("sign-in: wrong passwords are refused and audited, then throttled; a session reads, and changes need its CSRF token", async () => {
  const mark = await lastAuditId();
  assertRefused((await signIn("alice", "wrong")).answer, 401, "-801");
  assertRefused((await signIn("nobody", "wrong")).answer, 401, "-801");
  const session = await signIn("alice", ADMIN_PASSWORD);
  assert.equal(session.answer.status, 200);
  assert.match(session.answer.headers.get("set-cookie") ?? "", /HttpOnly; SameSite=Strict/);
  const me = await admin("GET", "/admin/me", undefined, { cookie: session.cookie });
  assert.deepEqual(me.body, { name: "alice", role: "admin", via: "session" });
  assertRefused(
    await admin("PATCH", "/admin/partners/nope", { disabled: true }, { cookie: session.cookie }),
    403,
    "-813",
  );
  const signIns = (await auditSince(mark)).filter((e) => e.action === "operator.sign-in");
  assert.deepEqual(
    signIns.map((e) => [e.actor, e.outcome]),
    [
      ["alice", "-801"],
      ["nobody", "-801"],
      ["alice", "ok"],
    ],
  );

  // signInMaxFailures is 3 here: two more failures, then even the right password waits.
  for (let i = 0; i < 2; i++) assertRefused((await signIn("victor", "wrong")).answer, 401, "-801");
  await signIn("victor", "wrong");
  const throttled = await signIn("victor", VIEWER_PASSWORD);
  assertRefused(throttled.answer, 429, "-829");
  assert.ok(Number(throttled.answer.headers.get("retry-after")) > 0);
});

test("a viewer reads but may change nothing (403), whatever the route", async () => {
  const viewer = await admin("POST", "/admin/tokens", { operator: "victor", name: "viewer token" });
  const token = viewer.body.token as string;
  assert.equal((await admin("GET", "/admin/partners", undefined, { token })).status, 200);
  assert.equal((await admin("GET", "/admin/audit", undefined, { token })).status, 200);
  for (const [method, path, body] of [
    ["POST", "/admin/partners", { id: "x", receiveUrl: "https://x.example" }],
    ["PATCH", "/admin/channels/1656168303", { disabled: true }],
    ["POST", "/admin/tokens", { operator: "victor", name: "more" }],
    ["DELETE", "/admin/tokens/0123456789abcdef", undefined],
    ["POST", "/admin/deliveries/replay", { from: 0, to: 1 }],
  ] as const)
    assertRefused(await admin(method, path, body, { token }), 403, "-803");
});

test("a partner and a channel made at runtime relay a signed webhook at once; file entries stay read-only", async () => {
  const mark = await lastAuditId();
  const partner = await admin("POST", "/admin/partners", {
    id: "acme",
    receiveUrl: `${newPartner.url}/acme`,
    signingSecret: SIGNING_A,
    allowPrivateNetwork: true,
  });
  assert.equal(partner.status, 201, JSON.stringify(partner.body));
  assert.equal(partner.body.managedBy, "api");
  assert.deepEqual(
    (partner.body.signingSecrets as Array<{ id: string }>).map((s) => s.id.length),
    [8],
  );
  const key = await admin("POST", "/admin/partners/acme/keys", { name: "acme production" });
  assert.equal(key.status, 201);
  const acmeKey = key.body.key as string;
  assert.match(acmeKey, /^tgk_/);

  const channel = await admin("POST", "/admin/channels", {
    senderKey: NEW_CHANNEL,
    partner: "acme",
    channelSecret: NEW_CHANNEL_SECRET,
    channelAccessToken: NEW_ACCESS_TOKEN,
  });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  assert.equal(channel.body.hasChannelAccessToken, true);

  const response = await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "hello from a new company", "5001");
  assert.equal(response.status, 200);
  await until("the new partner's delivery", () =>
    newPartner.received.some((r) => r.path === "/acme/message"),
  );
  const delivery = newPartner.received.find((r) => r.path === "/acme/message");
  assert.ok(delivery);
  new Webhook(SIGNING_A).verify(delivery.raw, delivery.headers as Record<string, string>);

  // The new key reaches the new channel only; the old partner's key does not reach it.
  const listed = await callApi(
    stack,
    "GET",
    `/line/deliveries?sender_key=${NEW_CHANNEL}`,
    undefined,
    acmeKey,
  );
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.equal(
    (await callApi(stack, "GET", `/line/deliveries?sender_key=${NEW_CHANNEL}`, undefined, OTHER_API_KEY)).body
      .code,
    "-406",
  );

  // Entries of the configuration file are read-only.
  assertRefused(await admin("PATCH", "/admin/partners/partner", { disabled: true }), 409, "-809");
  assertRefused(await admin("DELETE", "/admin/channels/1656168303"), 409, "-809");
  const file = await admin("GET", "/admin/partners/partner");
  assert.equal(file.body.managedBy, "file");

  // Bad input names the field.
  const bad = await admin("POST", "/admin/partners", { id: "bad", receiveUrl: "ftp://x" });
  assertRefused(bad, 400, "-405");
  assert.match(String(bad.body.message), /receiveUrl/);
  const weak = await admin("POST", "/admin/partners/acme/signing-secrets", { secret: "whsec_c2hvcnQ=" });
  assertRefused(weak, 400, "-405");
  assert.match(String(weak.body.message), /signingSecret/);
  assertRefused(
    await admin("POST", "/admin/channels", {
      senderKey: "1700000002",
      partner: "nobody",
      channelSecret: "s",
    }),
    400,
    "-405",
  );

  const actions = (await auditSince(mark)).map((e) => [e.action, e.target, e.outcome]);
  assert.deepEqual(actions, [
    ["partner.create", "acme", "ok"],
    ["partner.key.create", `acme/keys/${key.body.id}`, "ok"],
    ["channel.create", NEW_CHANNEL, "ok"],
    ["partner.update", "partner", "-809"],
    ["channel.delete", "1656168303", "-809"],
    ["partner.create", "bad", "-405"],
    ["partner.signing-secret.add", "acme", "-405"],
    ["channel.create", "1700000002", "-405"],
  ]);
});

test("a partner key rotates with overlap: old and new both work until the old one is revoked", async () => {
  const first = (await admin("POST", "/admin/partners/acme/keys", { name: "first" })).body;
  const second = (await admin("POST", "/admin/partners/acme/keys", { name: "second" })).body;
  for (const key of [first.key, second.key])
    assert.equal((await callApi(stack, "GET", "/line/deliveries", undefined, key as string)).status, 200);
  assert.equal((await admin("DELETE", `/admin/partners/acme/keys/${first.id}`)).status, 204);
  const refused = await callApi(stack, "GET", "/line/deliveries", undefined, first.key as string);
  assert.equal(refused.body.code, "-401");
  assert.equal(
    (await callApi(stack, "GET", "/line/deliveries", undefined, second.key as string)).status,
    200,
  );
  const keys = (await admin("GET", "/admin/partners/acme")).body.apiKeys as Array<{
    id: string;
    lastUsedAt: number | null;
  }>;
  assert.ok(!keys.some((k) => k.id === first.id));
});

test("a signing secret rotates: meanwhile each delivery carries both signatures, each verifying with its secret", async () => {
  const added = await admin("POST", "/admin/partners/acme/signing-secrets", { secret: SIGNING_B });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const [oldId] = (added.body.signingSecrets as Array<{ id: string }>).map((s) => s.id);
  await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "during the rotation", "5002");
  await until("a delivery during the rotation", () => newPartner.received.length >= 2);
  const during = newPartner.received[1];
  assert.ok(during);
  assert.equal(String(during.headers["webhook-signature"]).split(" ").length, 2);
  for (const secret of [SIGNING_A, SIGNING_B])
    new Webhook(secret).verify(during.raw, during.headers as Record<string, string>);

  assert.equal((await admin("DELETE", `/admin/partners/acme/signing-secrets/${oldId}`)).status, 200);
  await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "after the rotation", "5003");
  await until("a delivery after the rotation", () => newPartner.received.length >= 3);
  const afterwards = newPartner.received[2];
  assert.ok(afterwards);
  new Webhook(SIGNING_B).verify(afterwards.raw, afterwards.headers as Record<string, string>);
  assert.throws(() =>
    new Webhook(SIGNING_A).verify(afterwards.raw, afterwards.headers as Record<string, string>),
  );
});

test("what happened to this customer's message: events by user, text masked unless revealed (audited); replay", async () => {
  const found = await admin(
    "GET",
    `/admin/events?senderKey=${NEW_CHANNEL}&userId=U0123456789abcdef0123456789abcdef`,
  );
  assert.equal(found.status, 200, JSON.stringify(found.body));
  const events = found.body.events as Array<{
    serialNumber: string;
    event: { message: { text: string } };
    delivery: { state: string };
  }>;
  assert.equal(events.length, 3);
  assert.ok(events.every((e) => /^\[masked: \d+ characters\]$/.test(e.event.message.text)));
  assert.ok(events.every((e) => e.delivery.state === "delivered"));
  const mark = await lastAuditId();
  const revealed = await admin(
    "GET",
    `/admin/events?senderKey=${NEW_CHANNEL}&serialNumber=${events[0]?.serialNumber}&reveal=true`,
  );
  assert.equal((revealed.body.events as typeof events)[0]?.event.message.text, "after the rotation");
  const replay = await admin("POST", "/admin/deliveries/replay", {
    senderKey: NEW_CHANNEL,
    serialNumbers: [events[0]?.serialNumber],
  });
  assert.deepEqual(replay.body, { matched: 1, replayed: 1, serialNumbers: [events[0]?.serialNumber] });
  await until("the replayed delivery", () => newPartner.received.length >= 4);
  const entries = await auditSince(mark);
  assert.deepEqual(
    entries.map((e) => [e.actor, e.action, e.outcome]),
    [
      ["alice", "event.reveal", "ok"],
      ["alice", "deliveries.replay", "ok"],
    ],
  );
});

test("a conversation's timeline: the user's events and the partner's sends, newest first, texts masked unless revealed (audited)", async () => {
  const user = ev.randomUserId();
  const said = ev.textEvent(ev.userSource(user), "where is my parcel?");
  assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [said])).status, 200);
  await until("relayed", () => stack.sink.accepted.some((p) => JSON.stringify(p).includes(said.message.id)));
  const sent = await callApi(stack, "POST", "/line/message/send", {
    sender_key: SENDER_KEY,
    user_key: user,
    serial_number: `tl-${user.slice(1, 12)}`,
    messages: [{ type: "text", text: "it ships today" }],
  });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const path = `/admin/timeline?senderKey=${SENDER_KEY}&conversation=user:${user}`;
  const timeline = await admin("GET", path);
  assert.equal(timeline.status, 200, JSON.stringify(timeline.body));
  const items = timeline.body.items as Array<Record<string, unknown>>;
  assert.deepEqual(
    items.map((i) => [i.kind, i.serialNumber === `tl-${user.slice(1, 12)}` || i.kind === "event"]),
    [
      ["send", true],
      ["event", true],
    ],
  );
  assert.equal(timeline.body.complete, true);
  assert.equal(JSON.stringify(timeline.body).includes("parcel"), false, "the user's text is masked");
  assert.equal(JSON.stringify(timeline.body).includes("ships"), false, "the partner's text is masked");
  assert.deepEqual(items[0]?.messages, [{ type: "text", text: "[masked: 14 characters]" }]);
  assert.equal((items[1]?.delivery as { state: string })?.state, "delivered");

  const mark = await lastAuditId();
  const revealed = JSON.stringify((await admin("GET", `${path}&reveal=true`)).body);
  assert.ok(revealed.includes("where is my parcel?") && revealed.includes("it ships today"));
  assert.deepEqual(
    (await auditSince(mark)).map((e) => [e.action, e.target]),
    [["event.reveal", `${SENDER_KEY}/user:${user}`]],
  );
  assert.equal((await admin("GET", `${path}&limit=1`)).body.complete, false);
  assert.equal(
    (await admin("GET", `/admin/timeline?senderKey=${SENDER_KEY}&conversation=user:U1;drop`)).status,
    400,
  );
});

test("a dead letter is found across channels and replayed once the partner is back; a channel secret rotates", async () => {
  newPartner.respondWith((request) => (request.raw.includes("doomed") ? { status: 500 } : undefined));
  assert.equal((await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "doomed", "5201")).status, 200);
  let dead: { senderKey: string; serialNumber: string } | undefined;
  const since = Date.now();
  while (!dead) {
    assert.ok(Date.now() - since < 10_000, "no dead delivery within 10 s (delivery.maxAgeMs is 1.5 s here)");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const listed = await admin("GET", "/admin/deliveries?state=dead");
    dead = (listed.body.deliveries as Array<{ senderKey: string; serialNumber: string }>).find(
      (d) => d.senderKey === NEW_CHANNEL,
    );
  }
  const before = await channelOverview(NEW_CHANNEL);
  assert.equal(before.dead, 1, JSON.stringify(before));
  assert.ok((before.received as number) >= 1, "the webhook counts in the last minute");
  assert.ok(typeof before.lastReceivedAt === "number" && before.lastReceivedAt >= since - 1_000);
  newPartner.respondWith(undefined);
  const replay = await admin("POST", "/admin/deliveries/replay", {
    senderKey: dead.senderKey,
    serialNumbers: [dead.serialNumber],
  });
  assert.equal(replay.body.replayed, 1);
  await until("the dead letter delivered", () =>
    newPartner.accepted.some((p) => (p as { serial_number?: string }).serial_number === dead?.serialNumber),
  );
  await eventually("the overview counts the relay and no dead letter", async () => {
    const after = await channelOverview(NEW_CHANNEL);
    return after.dead === 0 && (after.delivered as number) >= 1 && after.partnerState === "delivering";
  });

  const rotated = await admin("PATCH", `/admin/channels/${NEW_CHANNEL}`, {
    channelSecret: ROTATED_CHANNEL_SECRET,
  });
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  assert.equal((await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "old secret", "5202")).status, 401);
  assert.equal((await signedWebhook(NEW_CHANNEL, ROTATED_CHANNEL_SECRET, "new secret", "5203")).status, 200);
  await admin("PATCH", `/admin/channels/${NEW_CHANNEL}`, { channelSecret: NEW_CHANNEL_SECRET });
});

test("a target no database stores (NUL) is audited escaped, not lost", async () => {
  const mark = await lastAuditId();
  assertRefused(await admin("DELETE", "/admin/partners/a%00b"), 400, "-405");
  const entries = await auditSince(mark);
  assert.deepEqual(
    entries.map((e) => [e.action, e.target, e.outcome]),
    [["partner.delete", "a\\u0000b", "-405"]],
  );
});

test("partner API calls that change something are audited with partner and key id", async () => {
  const mark = await lastAuditId();
  await callApi(stack, "POST", "/line/user", {
    sender_key: "1656168303",
    user_key: "Uaaaa",
    e164: "+821012345678",
  });
  const entries = await auditSince(mark);
  assert.equal(entries.length, 1);
  assert.equal(entries[0]?.actorKind, "partner");
  assert.equal(entries[0]?.actor, "partner");
  assert.equal(entries[0]?.action, "user.directory.set");
  assert.equal(entries[0]?.target, "1656168303/Uaaaa");
  assert.match(entries[0]?.credentialId ?? "", /^[0-9a-f]{16}$/);
  const exported = await admin("GET", "/admin/audit/export?action=user.directory.set");
  assert.equal(exported.headers.get("content-type"), "application/x-ndjson");
  const lines = String(exported.body.text).trim().split("\n");
  assert.equal(JSON.parse(lines[0] ?? "{}").action, "user.directory.set");
});

test("no answer and no audit entry holds a secret", async () => {
  const exported = await admin("GET", "/admin/audit/export");
  for (const secret of SECRETS) {
    for (const text of answers) assert.ok(!text.includes(secret), "a secret appeared in an admin answer");
    assert.ok(!String(exported.body.text).includes(secret));
  }
  assert.ok(
    !String(exported.body.text).includes("hello from a new company"),
    "message text in the audit log",
  );
});

test("a channel's LINE webhook endpoint: read, set (audited) and tested through LINE", async () => {
  const path = "/admin/channels/1656168303/webhook-endpoint";
  const before = await admin("GET", path);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  assert.equal(before.body.active, true);
  const mark = await lastAuditId();
  assert.equal(
    (await admin("PUT", path, { endpoint: "https://relay.example.com/line/webhook/1656168303" })).status,
    204,
  );
  assert.equal((await admin("GET", path)).body.endpoint, "https://relay.example.com/line/webhook/1656168303");
  const tested = await admin("POST", `${path}/test`, {
    endpoint: `${stack.talkgate.url}/line/webhook/1656168303`,
  });
  assert.equal(tested.status, 200, JSON.stringify(tested.body));
  assert.equal(tested.body.success, true);
  assert.equal(tested.body.statusCode, 200);
  assertRefused(await admin("PUT", path, { endpoint: "http://plain.example" }), 400, "-405");
  assertRefused(await admin("GET", "/admin/channels/2000000002/webhook-endpoint"), 503, "-407");
  assert.deepEqual(
    (await auditSince(mark)).map((e) => [e.action, e.outcome]),
    [
      ["channel.webhook-endpoint.set", "ok"],
      ["channel.webhook-endpoint.test", "ok"],
      ["channel.webhook-endpoint.set", "-405"],
    ],
  );
  stack.emulator.setWebhookUrl("1656168303", `${stack.talkgate.url}/line/webhook/1656168303`);
});

test("a disabled partner's keys are refused and its deliveries wait (its webhooks are stored); enabled again, they go; last use is kept", async () => {
  const key = (await admin("POST", "/admin/partners/acme/keys", { name: "while disabled" })).body;
  assert.equal((await callApi(stack, "GET", "/line/deliveries", undefined, key.key as string)).status, 200);
  const disabled = await admin("PATCH", "/admin/partners/acme", { disabled: true });
  assert.equal(disabled.body.disabled, true);
  assert.equal(
    (await callApi(stack, "GET", "/line/deliveries", undefined, key.key as string)).body.code,
    "-401",
  );
  const mark = newPartner.received.length;
  assert.equal((await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "while disabled", "5101")).status, 200);
  const waiting = await admin("GET", `/admin/deliveries?senderKey=${NEW_CHANNEL}&state=pending`);
  assert.equal((waiting.body.deliveries as unknown[]).length, 1, "stored, waiting for its partner");
  assert.equal(newPartner.received.length, mark, "nothing delivered while disabled");
  await admin("PATCH", "/admin/partners/acme", { disabled: false });
  assert.equal((await callApi(stack, "GET", "/line/deliveries", undefined, key.key as string)).status, 200);
  await until("the waiting delivery once enabled", () => newPartner.received.length > mark);
  // A disabled channel refuses its webhooks.
  await admin("PATCH", `/admin/channels/${NEW_CHANNEL}`, { disabled: true });
  assert.equal(
    (await signedWebhook(NEW_CHANNEL, NEW_CHANNEL_SECRET, "channel disabled", "5102")).status,
    404,
  );
  await admin("PATCH", `/admin/channels/${NEW_CHANNEL}`, { disabled: false });
  // Last use is written in batches (with each configuration poll): seen within seconds.
  const lastUsed = async () =>
    (
      (await admin("GET", "/admin/partners/acme")).body.apiKeys as Array<{
        id: string;
        lastUsedAt: number | null;
      }>
    ).find((k) => k.id === key.id)?.lastUsedAt;
  const since = Date.now();
  while ((await lastUsed()) == null) {
    assert.ok(Date.now() - since < 5_000, "last use not recorded within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

test("a second instance on the same PostgreSQL sees each change within 5 s: a new channel, a revoked key, a new receiveUrl", {
  skip:
    TEST_DATABASE !== "postgres" &&
    "two instances share a database on PostgreSQL only (one process per SQLite file): runs in test:integration:postgres",
}, async (t) => {
  const second = await startTalkgate(
    parseConfig(stackRaw(), { baseDir: stack.dir, env: { TALKGATE_SECRET_KEY: SECRET_KEY } }),
    { logger: silent },
  );
  try {
    const status = async (url: string) =>
      (await (
        await fetch(`${url}/admin/status`, { headers: { authorization: `Bearer ${adminToken}` } })
      ).json()) as {
        configVersion: number;
      };
    // Each change is made on the first instance and waited for on the second, for 5 s at most.
    const seen = async (what: string) => {
      const { configVersion } = await status(stack.talkgate.url);
      const since = Date.now();
      for (;;) {
        const other = await status(second.url);
        if (other.configVersion === configVersion) {
          t.diagnostic(`${what}: seen by the second instance after ${Date.now() - since} ms`);
          return;
        }
        assert.ok(
          Date.now() - since < 5_000,
          `${what} not seen by the second instance within 5 s: ${JSON.stringify(other)}, not ${configVersion}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    const secret = "second-instance-channel-secret";
    await admin("POST", "/admin/channels", {
      senderKey: "1700000009",
      partner: "acme",
      channelSecret: secret,
    });
    await seen("a new channel");
    const body = JSON.stringify({ destination: "U0", events: [] });
    const accepted = await fetch(`${second.url}/line/webhook/1700000009`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-line-signature": lineSignature(secret, body) },
      body,
    });
    assert.equal(accepted.status, 200);

    const key = (await admin("POST", "/admin/partners/acme/keys", { name: "short-lived" })).body;
    await seen("a new key");
    const onSecond = () =>
      fetch(`${second.url}/line/deliveries`, { headers: { authorization: `Bearer ${String(key.key)}` } });
    assert.equal((await onSecond()).status, 200);
    await admin("DELETE", `/admin/partners/acme/keys/${String(key.id)}`);
    await seen("a revoked key");
    assert.equal((await onSecond()).status, 401);

    await admin("PATCH", "/admin/partners/acme", { receiveUrl: `${newPartner.url}/moved` });
    await seen("a new receiveUrl");
    const mark = newPartner.received.length;
    const event = JSON.stringify({
      destination: "U0",
      events: [
        {
          type: "message",
          mode: "active",
          timestamp: Date.now(),
          webhookEventId: "01HSECONDINSTANCE0000000001",
          deliveryContext: { isRedelivery: false },
          source: { type: "user", userId: "U0123456789abcdef0123456789abcdef" },
          replyToken: "r-second",
          message: { type: "text", id: "9001", quoteToken: "q", text: "moved" },
        },
      ],
    });
    await fetch(`${second.url}/line/webhook/${NEW_CHANNEL}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-line-signature": lineSignature(NEW_CHANNEL_SECRET, event),
      },
      body: event,
    });
    await until("a delivery to the new receiveUrl", () =>
      newPartner.received.slice(mark).some((r) => r.path === "/moved/message"),
    );
    assert.ok(!newPartner.received.slice(mark).some((r) => r.path === "/acme/message"));
  } finally {
    await second.close();
  }
});

test("a restart refuses a wrong or missing TALKGATE_SECRET_KEY clearly; the previous key re-seals under the new one", async () => {
  // A secret is stored (whatever ran before).
  await admin("POST", "/admin/partners", {
    id: "sealed",
    receiveUrl: "https://sealed.example/line",
    signingSecret: SIGNING_A,
  });
  await stack.stopTalkgate();
  const raw = stackRaw();
  const start = (env: NodeJS.ProcessEnv) =>
    startTalkgate(parseConfig(raw, { baseDir: stack.dir, env }), { logger: silent });
  const refused = async (env: NodeJS.ProcessEnv, message: RegExp) => {
    let failure: unknown;
    try {
      await (await start(env)).close();
    } catch (error) {
      failure = error;
    }
    assert.ok(failure instanceof SecretKeyRefusal, `refused to start: ${String(failure)}`);
    assert.match(failure.message, message);
  };
  await refused({}, /TALKGATE_SECRET_KEY is not set/);
  const other = randomBytes(32).toString("base64");
  await refused(
    { TALKGATE_SECRET_KEY: other },
    /sealed under key [0-9a-f]{8}, but TALKGATE_SECRET_KEY is key [0-9a-f]{8}/,
  );
  // Rotation: the new key with the old one as previous starts, and seals everything again under the new key.
  await (await start({ TALKGATE_SECRET_KEY: other, TALKGATE_SECRET_KEY_PREVIOUS: SECRET_KEY })).close();
  await (await start({ TALKGATE_SECRET_KEY: other })).close();
  await refused({ TALKGATE_SECRET_KEY: SECRET_KEY }, /sealed under key/);
  // The suite's stack goes on with its own key: put the old one back the same way.
  await (await start({ TALKGATE_SECRET_KEY: SECRET_KEY, TALKGATE_SECRET_KEY_PREVIOUS: other })).close();
  await stack.restart();
});

const silent = pino({ level: "silent" });

function stackRaw(): Record<string, unknown> {
  const { config } = stack;
  return JSON.parse(
    JSON.stringify({
      listen: { host: "127.0.0.1", port: 0 },
      database: config.database.kind === "sqlite" ? `sqlite:${config.database.path}` : config.database.url,
      mediaDir: config.mediaDir,
      line: config.line,
      logLevel: "silent",
      partners: config.partners.map((p) => ({ ...p, signingSecret: p.signingSecret })),
      channels: config.channels,
      operators: config.operators,
      admin: config.admin,
    }),
  );
}
