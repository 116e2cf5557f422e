// Channel access tokens that renew themselves (SPEC §11), end to end against the LINE emulator: talkgate and the
// emulator share a clock the test moves by days, so that tokens expire and renew as they would over weeks.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import pino from "pino";
import * as ev from "../emulator/events.ts";
import type { IssuedToken } from "../emulator/line-emulator.ts";
import { parseConfig } from "../src/config/config.ts";
import { generateAssertionKeyPair } from "../src/core/access-token.ts";
import { hashPassword } from "../src/core/credentials.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { startTalkgate, type Talkgate } from "../src/main.ts";
import { adminSession } from "./support/admin-session.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { eventually } from "./support/deliveries.ts";
import { SENDER_KEY, type Stack, type StackOptions, stackConfig, startStack } from "./support/stack.ts";

const DAY = 86_400_000;
const SECRET_KEY = randomBytes(32).toString("base64");
const KID = "8f1e7a62-key-of-the-test";
const keys = generateAssertionKeyPair();
const PASSWORD = "channel-tokens-operator-password";
const passwordHash = await hashPassword(PASSWORD);

/** Real time plus an offset the test moves: talkgate's and the emulator's clock. */
function movableClock() {
  const clock = { offset: 0, now: () => Date.now() + clock.offset };
  return clock;
}

/** Log lines talkgate wrote, parsed. */
function capturedLog() {
  const lines: Array<Record<string, unknown> & { msg?: string }> = [];
  const text: string[] = [];
  const logger = pino(
    { level: "info" },
    {
      write: (line: string) => {
        text.push(line);
        lines.push(JSON.parse(line));
      },
    },
  );
  return { logger, lines, text };
}

const stacks: Stack[] = [];
after(() => Promise.all(stacks.map((s) => s.close())));

async function managedStack(accessToken: Record<string, unknown>, extra: StackOptions = {}) {
  const clock = movableClock();
  const log = capturedLog();
  const stack = await startStack({
    accessToken,
    env: { TALKGATE_SECRET_KEY: SECRET_KEY },
    clock,
    logger: log.logger,
    emulator: { now: clock.now },
    // The emulator knows the channel's public key, and no static token of it.
    emulatorChannel: { accessToken: undefined, assertionKeys: [{ ...keys.publicKey, kid: KID }] },
    config: {
      tokens: { pollMs: 100, revokeAfterMs: 500 },
      operators: [{ name: "olivia", role: "admin", passwordHash }],
    },
    ...extra,
  });
  stacks.push(stack);
  return { stack, clock, log };
}

const v21 = (kid = KID) => ({ type: "v2.1", kid, privateKey: keys.privateKey });

/** The channel's tokens at the emulator, and which of them work now. */
function tokensAt(stack: Stack, now: number) {
  const all = stack.emulator.issuedTokens(SENDER_KEY);
  const live = all.filter((t: IssuedToken) => t.revokedAt === null && t.expiresAt > now);
  return { all, live };
}

/** A user says something (so that there is a chat to answer); waits until the partner has it. */
async function userSays(stack: Stack, user: string): Promise<void> {
  const event = ev.textEvent(ev.userSource(user), "hello");
  assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [event])).status, 200);
  await stack.sink.waitFor(
    (all) => all.some((p) => (p as PartnerPayload).content.id === event.message.id),
    10_000,
  );
}

async function send(url: string, user: string, serial: string, text: string) {
  const response = await fetch(`${url}/line/message/send`, {
    method: "POST",
    headers: { authorization: "Bearer test-partner-api-key-0001", "content-type": "application/json" },
    body: JSON.stringify({
      sender_key: SENDER_KEY,
      user_key: user,
      serial_number: serial,
      messages: [{ type: "text", text }],
    }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** An image from the user: relayed once its content is stored; answers the attachment's bytes. */
async function imageRoundTrip(stack: Stack, user: string): Promise<Buffer> {
  const event = ev.imageEvent(ev.userSource(user));
  const bytes = randomBytes(2048);
  stack.emulator.setContent(event.message.id, { body: bytes, contentType: "image/jpeg" });
  assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [event])).status, 200);
  const accepted = await stack.sink.waitFor(
    (all) => all.some((p) => (p as PartnerPayload).content.id === event.message.id),
    20_000,
  );
  const payload = (accepted as PartnerPayload[]).find((p) => p.content.id === event.message.id);
  const response = await fetch(
    `${stack.talkgate.url}/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${payload?.serial_number}`,
    { headers: { authorization: "Bearer test-partner-api-key-0001" } },
  );
  assert.equal(response.status, 200, "the attachment was fetched from LINE with the channel's token");
  assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);
  return bytes;
}

/** Olivia's session at this stack's talkgate. */
const adminSessionOf = (stack: Stack) => adminSession(stack.talkgate.url, "olivia", PASSWORD);

/** The channel's token state as the admin API shows it. */
async function adminTokenState(stack: Stack, senderKey = SENDER_KEY): Promise<Record<string, unknown>> {
  const channel = await (await adminSessionOf(stack))("GET", `/admin/channels/${senderKey}`);
  assert.equal(channel.status, 200);
  return channel.body.accessToken as Record<string, unknown>;
}

async function metric(stack: Stack, name: string): Promise<number | null> {
  const text = await (await fetch(`${stack.talkgate.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{sender_key="${SENDER_KEY}"}`));
  return line === undefined ? null : Number(line.split(" ").at(-1));
}

describe("channel access tokens", () => {
  test("v2.1: issued at start and used; renewed before expiry as 90 days pass, each replaced token revoked; sends and downloads never fail; a restart issues nothing", async () => {
    const { stack, clock } = await managedStack(v21());
    await eventually("the first token is issued", () => tokensAt(stack, clock.now()).live.length === 1);
    const user = ev.randomUserId();
    await userSays(stack, user);
    const state = await adminTokenState(stack);
    assert.equal(state.type, "v2.1");
    assert.equal(state.kid, KID);
    assert.equal(state.state, "valid");
    const expiresAt = tokensAt(stack, clock.now()).live[0]?.expiresAt ?? 0;
    assert.ok(
      Math.abs(Number(state.expiresAt) - expiresAt) < 5_000,
      "the expiry LINE gave, as talkgate saw it",
    );
    assert.equal(JSON.stringify(state).includes(tokensAt(stack, clock.now()).live[0]?.token ?? "?"), false);

    for (const [period, day] of [0, 25, 50, 75].entries()) {
      clock.offset = day * DAY;
      // Renewed at 80 % of the 30 days (day 24 of each token): a new token each period, the old one revoked.
      await eventually(`token ${period + 1} issued and the ones before revoked (day ${day})`, () => {
        const { all, live } = tokensAt(stack, clock.now());
        return all.length === period + 1 && live.length === 1;
      });
      const sent = await send(stack.talkgate.url, user, `v21-${day}`, `day ${day}`);
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      await imageRoundTrip(stack, user);
      const left = await metric(stack, "talkgate_channel_token_expiry_seconds");
      assert.ok(left !== null && left > 29 * 86_400 && left <= 30 * 86_400, `expiry gauge: ${left}`);
    }
    const unauthorized = stack.emulator.calls.filter((c) => c.status === 401);
    assert.deepEqual(unauthorized, [], "no call ever carried a token LINE no longer took");

    const issued = tokensAt(stack, clock.now()).all.length;
    await stack.restart();
    const after = await send(stack.talkgate.url, user, "v21-restarted", "after a restart");
    assert.equal(after.status, 200);
    assert.equal(tokensAt(stack, clock.now()).all.length, issued, "the stored token is used after a restart");
  });

  test("stateless: renewed every 10 minutes under continuous sends, with no failed send", async () => {
    const { stack, clock } = await managedStack({ type: "stateless" });
    const user = ev.randomUserId();
    await userSays(stack, user);
    for (let minute = 0; minute <= 30; minute++) {
      clock.offset = minute * 60_000;
      // Renewals run in the background (every tokens.pollMs): a token due for renewal is renewed before the send.
      await eventually(`minute ${minute}: the token due is renewed`, () => {
        const newest = tokensAt(stack, clock.now()).all.at(-1);
        return newest !== undefined && newest.issuedAt + 10 * 60_000 > clock.now();
      });
      const sent = await send(stack.talkgate.url, user, `stateless-${minute}`, `minute ${minute}`);
      assert.equal(sent.status, 200, `minute ${minute}: ${JSON.stringify(sent.body)}`);
    }
    const { all } = tokensAt(stack, clock.now());
    assert.ok(all.length >= 4, `one token per 10 minutes: ${all.length}`);
    for (const [i, token] of [...all.entries()].slice(1))
      assert.ok(token.issuedAt < (all[i - 1]?.expiresAt ?? 0) - 4 * 60_000, "renewed well before expiry");
    assert.ok(all.every((t) => t.type === "stateless"));
    assert.deepEqual(
      stack.emulator.calls.filter((c) => c.status === 401),
      [],
    );
  });

  test("a token revoked behind talkgate's back: LINE answers 401, talkgate renews once and the message goes out once", async () => {
    const { stack, clock, log } = await managedStack({ type: "shortLived" });
    const user = ev.randomUserId();
    await userSays(stack, user);
    assert.equal((await send(stack.talkgate.url, user, "before", "before")).status, 200);
    const [current] = tokensAt(stack, clock.now()).live;
    assert.ok(current && stack.emulator.revokeToken(current.token));

    const sent = await send(stack.talkgate.url, user, "after-revoke", "once");
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal(
      stack.emulator.sent.filter((s) => s.to === user && JSON.stringify(s.messages).includes('"once"'))
        .length,
      1,
    );
    const { all, live } = tokensAt(stack, clock.now());
    assert.equal(all.length, 2, "one renewal");
    assert.equal(live.length, 1);
    assert.ok(log.lines.some((l) => l.msg === "token:refused"));
    assert.equal(log.text.join("").includes(current.token), false, "the token is never logged");
  });

  test("a key LINE does not know: calls answer -407, the log, the admin API and /metrics say why", async () => {
    const { stack, log } = await managedStack(v21("kid-never-registered"));
    await eventually("the failed issue is logged", () =>
      log.lines.some((l) => l.msg === "token:renew:failed"),
    );
    const user = ev.randomUserId();
    await userSays(stack, user);
    const sent = await send(stack.talkgate.url, user, "no-token", "nothing");
    assert.equal(sent.status, 503);
    assert.equal(sent.body.code, "-407");
    assert.match(String(sent.body.message), /no usable channel access token \(invalid_client/);
    assert.equal(stack.emulator.sent.filter((s) => s.to === user).length, 0);

    const failed = log.lines.find((l) => l.msg === "token:renew:failed");
    assert.equal(failed?.senderKey, SENDER_KEY);
    assert.match(String(failed?.reason), /invalid_client/);
    assert.equal(log.text.join("").includes(String(keys.privateKey.d)), false, "the key is never logged");
    const state = await adminTokenState(stack);
    assert.equal(state.state, "failing");
    assert.match(String(state.lastFailure), /invalid_client/);
    assert.ok(((await metric(stack, "talkgate_channel_token_renewal_failures_total")) ?? 0) >= 1);
    assert.equal(await metric(stack, "talkgate_channel_token_expiry_seconds"), 0);
  });

  test("admin API: a channel made with a v2.1 key gets its token; bad credentials are refused naming the field; secrets never come back", async () => {
    const NEW = "1700000123";
    const { stack, clock } = await managedStack(
      { type: "shortLived" },
      {
        emulatorChannels: [
          {
            channelId: NEW,
            channelSecret: "new-channel-secret",
            assertionKeys: [{ ...keys.publicKey, kid: KID }],
          },
        ],
      },
    );
    const admin = await adminSessionOf(stack);
    const create = (accessToken: unknown, more: Record<string, unknown> = {}) =>
      admin("POST", "/admin/channels", {
        senderKey: NEW,
        partner: "partner",
        channelSecret: "new-channel-secret",
        accessToken,
        ...more,
      });
    const refusals: Array<[unknown, RegExp]> = [
      [{ type: "v2.1", kid: KID }, /accessToken\.privateKey: must be a JWK object/],
      [
        { type: "v2.1", kid: KID, privateKey: keys.publicKey },
        /accessToken\.privateKey: must be the private key/,
      ],
      [{ type: "stateless", token: "x" }, /accessToken\.token: not a field of a stateless token/],
      [
        { type: "v2.1", kid: KID, privateKey: keys.privateKey, ttlSeconds: 2_592_001 },
        /accessToken\.ttlSeconds/,
      ],
    ];
    for (const [accessToken, message] of refusals) {
      const refused = await create(accessToken);
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.code, "-405");
      assert.match(String(refused.body.message), message);
    }
    const both = await create({ type: "stateless" }, { channelAccessToken: "static" });
    assert.equal(both.body.code, "-405");

    const made = await create({
      type: "v2.1",
      kid: KID,
      privateKey: JSON.stringify(keys.privateKey),
      ttlSeconds: 7 * 86_400,
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(
      JSON.stringify(made.body).includes(String(keys.privateKey.d)),
      false,
      "the key is write-only",
    );
    const live = () =>
      stack.emulator.issuedTokens(NEW).filter((t) => t.revokedAt === null && t.expiresAt > clock.now());
    await eventually("the v2.1 token is issued", () => live().some((t) => t.type === "v2.1"));
    const state = await adminTokenState(stack, NEW);
    assert.equal(state.type, "v2.1");
    assert.equal(state.ttlSeconds, 7 * 86_400);
    assert.equal(state.state, "valid");

    const changed = await admin("PATCH", `/admin/channels/${NEW}`, { accessToken: { type: "stateless" } });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    await eventually(
      "a stateless token is issued and the v2.1 one it replaced revoked",
      () => live().length === 1 && live()[0]?.type === "stateless",
    );
    const listed = await admin("GET", "/admin/channels");
    assert.equal(JSON.stringify(listed.body).includes(String(keys.privateKey.d)), false);
  });

  test("two instances on one PostgreSQL: one issues and renews, both use its token", {
    skip:
      TEST_DATABASE !== "postgres" &&
      "two instances share a database on PostgreSQL only (one process per SQLite file): runs in test:integration:postgres",
  }, async () => {
    const { stack, clock } = await managedStack({ type: "shortLived" });
    const raw = stackConfig(stack.emulator.url, stack.sink.url, {
      accessToken: { type: "shortLived" },
      config: {
        tokens: { pollMs: 100, revokeAfterMs: 500 },
        database: stack.config.database.kind === "postgres" ? stack.config.database.url : "",
      },
    });
    const second: Talkgate = await startTalkgate(
      parseConfig(raw, { baseDir: stack.dir, env: { TALKGATE_SECRET_KEY: SECRET_KEY } }),
      { logger: pino({ level: "silent" }), clock },
    );
    try {
      const user = ev.randomUserId();
      await userSays(stack, user);
      for (const [i, day] of [0, 25].entries()) {
        clock.offset = day * DAY;
        await eventually(`token ${i + 1}`, () => tokensAt(stack, clock.now()).all.length === i + 1);
        // A few more polls of both instances: still one token per period.
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.equal(tokensAt(stack, clock.now()).all.length, i + 1, "one instance issued");
        for (const [n, url] of [stack.talkgate.url, second.url].entries()) {
          const sent = await send(url, user, `cluster-${day}-${n}`, `from instance ${n}`);
          assert.equal(sent.status, 200, JSON.stringify(sent.body));
        }
      }
      assert.deepEqual(
        stack.emulator.calls.filter((c) => c.status === 401),
        [],
      );
    } finally {
      await second.close();
    }
  });
});
