// The token manager over a real SQLite store, with LINE's token API and the clock in the test's hands.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { MAX_TOKEN_TTL_SECONDS, type ManagedCredential } from "../core/access-token.ts";
import { parseSecretKey, SecretBox } from "../core/secret-box.ts";
import { openSqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { IssuedToken, LineResult, LineTokenApi } from "./ports.ts";
import {
  ChannelTokenManager,
  type TokenChannelConfig,
  type TokenManagerOptions,
} from "./renew-channel-tokens.ts";
import type { Store } from "./store.ts";

const SENDER = "1656168303";
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 1);
const oldKey = parseSecretKey("K", randomBytes(32).toString("base64"));
const box = new SecretBox(oldKey, []);
const silent = { info() {}, warn() {}, error() {} };
const OPTIONS: TokenManagerOptions = {
  renewAfterFraction: 0.8,
  statelessRenewAfterMs: 10 * 60_000,
  leaseMs: 60_000,
  pollMs: 60_000, // the tests drive renewals themselves
  revokeAfterMs: 60_000,
  waitMs: 2_000,
};
const shortLived: ManagedCredential = { type: "shortLived" };

/** LINE's token API as the test wants it: issues numbered tokens, records revocations, fails on demand. */
class FakeLine implements LineTokenApi {
  issued: string[] = [];
  revoked: string[] = [];
  failWith: LineResult<IssuedToken> | null = null;
  revokeFails = false;
  lifetimeSeconds = MAX_TOKEN_TTL_SECONDS;
  /** Every issue and revocation, in order. */
  calls: string[] = [];

  async issue(): Promise<LineResult<IssuedToken>> {
    if (this.failWith) return this.failWith;
    const token = `token-${this.issued.length + 1}`;
    this.issued.push(token);
    this.calls.push(`issue ${token}`);
    return { ok: true, value: { token, expiresInSeconds: this.lifetimeSeconds, keyId: null } };
  }

  async revoke(_channel: unknown, _type: unknown, token: string): Promise<LineResult<null>> {
    if (this.revokeFails) return { ok: false, status: null, reason: "ECONNREFUSED" };
    this.revoked.push(token);
    this.calls.push(`revoke ${token}`);
    return { ok: true, value: null };
  }
}

function setup(store: Store = openSqliteStore(":memory:"), line = new FakeLine(), owner = "a", sealer = box) {
  const clock = { t: T0, now: () => clock.t };
  const failures: string[] = [];
  const manager = new ChannelTokenManager(
    { store, line, box: sealer, clock, logger: silent, owner, onRenewalFailed: (k) => failures.push(k) },
    OPTIONS,
  );
  return { store, line, clock, manager, failures };
}

const channel = (accessToken: TokenChannelConfig["accessToken"]): TokenChannelConfig[] => [
  { senderKey: SENDER, channelSecret: "secret", accessToken },
];

/** The manager's token for the channel, or the reason it has none. */
/** A store holding token-2, issued at T0 + 24 days, and token-1 it replaced, still to be revoked. */
async function storedWithARetiredToken(): Promise<{ store: Store; line: FakeLine }> {
  const store = openSqliteStore(":memory:");
  const line = new FakeLine();
  const first = setup(store, line);
  await first.manager.start(channel(shortLived));
  assert.equal(await tokenOf(first.manager), "token-1");
  first.clock.t = T0 + 24 * DAY;
  await first.manager.poll();
  await first.manager.close();
  return { store, line };
}

async function tokenOf(manager: ChannelTokenManager): Promise<string> {
  const answer = await manager.token(SENDER);
  return answer.ok ? answer.token : `none: ${answer.reason}`;
}

test("a static token is used as it is; a channel without one says so", async () => {
  const { manager } = setup();
  await manager.start(channel({ type: "static", token: "static-token" }));
  assert.equal(await tokenOf(manager), "static-token");
  assert.equal(await manager.refused(SENDER, "static-token"), null, "nothing to renew");
  manager.setChannels(channel(undefined));
  assert.equal(manager.has(SENDER), false);
  assert.match(await tokenOf(manager), /no channel access token configured/);
  await manager.close();
});

test("a managed token is issued once and stored sealed; a restart reads it instead of issuing another", async () => {
  const { store, line, manager } = setup();
  await manager.start(channel(shortLived));
  assert.equal(await tokenOf(manager), "token-1");
  assert.equal(await tokenOf(manager), "token-1", "not issued again");
  await manager.close();
  const [row] = await store.listChannelTokens();
  assert.ok(row?.token && !row.token.includes("token-1"), "stored sealed");

  const restarted = setup(store, line);
  await restarted.manager.start(channel(shortLived));
  await restarted.manager.poll();
  assert.equal(await tokenOf(restarted.manager), "token-1");
  assert.deepEqual(line.issued, ["token-1"]);
  await restarted.manager.close();
});

test("renewal: at 80 % of its life a poll issues a new token; the replaced one is revoked once revokeAfterMs has passed", async () => {
  const { line, clock, manager } = setup();
  await manager.start(channel(shortLived));
  await manager.poll();
  assert.equal(manager.status(SENDER)?.renewAt, T0 + 24 * DAY);
  clock.t = T0 + 24 * DAY - 1;
  await manager.poll();
  assert.deepEqual(line.issued, ["token-1"], "not due yet");

  clock.t = T0 + 24 * DAY;
  await manager.poll();
  assert.deepEqual(line.issued, ["token-1", "token-2"]);
  assert.equal(await tokenOf(manager), "token-2");
  assert.deepEqual(line.revoked, [], "not yet: other instances may still use token-1");
  assert.equal(manager.status(SENDER)?.retired, 1);

  clock.t += OPTIONS.revokeAfterMs;
  await manager.poll();
  assert.deepEqual(line.revoked, ["token-1"]);
  assert.equal(manager.status(SENDER)?.retired, 0);
  assert.deepEqual(line.issued, ["token-1", "token-2"], "revoking issues nothing");
  await manager.close();
});

test("stateless tokens renew after 10 minutes and are never revoked", async () => {
  const { line, clock, manager } = setup();
  line.lifetimeSeconds = 900;
  await manager.start(channel({ type: "stateless" }));
  await manager.poll();
  for (let minute = 5; minute <= 60; minute += 5) {
    clock.t = T0 + minute * 60_000;
    await manager.poll();
  }
  await manager.close();
  assert.equal(line.issued.length, 7);
  assert.deepEqual(line.revoked, []);
  assert.equal(manager.status(SENDER)?.retired, 0);
});

test("a refused token is renewed once and the new one answered; a second refusal right after is not renewed again", async () => {
  const { line, clock, manager } = setup();
  await manager.start(channel(shortLived));
  assert.equal(await tokenOf(manager), "token-1");
  const [first, second] = await Promise.all([
    manager.refused(SENDER, "token-1"),
    manager.refused(SENDER, "token-1"),
  ]);
  assert.deepEqual([first, second], ["token-2", "token-2"], "concurrent refusals share one renewal");
  assert.equal(await manager.refused(SENDER, "token-2"), null, "a fresh token refused again: no issue loop");
  clock.t += 10_000;
  assert.equal(await manager.refused(SENDER, "token-2"), "token-3");
  assert.deepEqual(line.issued, ["token-1", "token-2", "token-3"]);
  await manager.close();
});

test("a failed issue is recorded (state, reason, counter) and backed off; once the token is gone the channel has none, with the reason", async () => {
  const { line, clock, manager, failures } = setup();
  line.failWith = { ok: false, status: 400, reason: "invalid_client: unknown kid" };
  await manager.start(channel(shortLived));
  await manager.poll();
  assert.deepEqual(failures, [SENDER]);
  const status = manager.status(SENDER);
  assert.equal(status?.state, "failing");
  assert.equal(status?.lastFailure, "invalid_client: unknown kid");
  assert.equal(status?.lastFailureAt, T0);
  assert.match(await tokenOf(manager), /no usable channel access token \(invalid_client: unknown kid\)/);
  assert.equal(failures.length, 1, "within the backoff, a call does not ask LINE again");

  clock.t += 5_000;
  line.failWith = null;
  assert.equal(await tokenOf(manager), "token-1", "after the backoff, the next call issues");
  assert.equal(manager.status(SENDER)?.state, "valid");
  assert.equal(
    manager.status(SENDER)?.lastFailure,
    "invalid_client: unknown kid",
    "the last failure stays visible",
  );
  await manager.close();
});

test("a new credential is issued its own token: the one of the old credential is not used", async () => {
  const { line, manager } = setup();
  await manager.start(channel(shortLived));
  assert.equal(await tokenOf(manager), "token-1");
  manager.setChannels(channel({ type: "stateless" }));
  assert.equal(await tokenOf(manager), "token-2");
  assert.equal(manager.status(SENDER)?.type, "stateless");
  assert.equal(manager.status(SENDER)?.retired, 1, "the short-lived one is to be revoked");
  assert.deepEqual(line.issued, ["token-1", "token-2"]);
  await manager.close();
});

test("two instances on one store: one issues, the other waits for and uses its token", async () => {
  const store = openSqliteStore(":memory:");
  const line = new FakeLine();
  const a = setup(store, line, "a");
  const b = setup(store, line, "b");
  await Promise.all([a.manager.start(channel(shortLived)), b.manager.start(channel(shortLived))]);
  const [fromA, fromB] = await Promise.all([tokenOf(a.manager), tokenOf(b.manager)]);
  assert.deepEqual([fromA, fromB], ["token-1", "token-1"]);
  assert.deepEqual(line.issued, ["token-1"]);
  await Promise.all([a.manager.close(), b.manager.close()]);
});

test("a credential that replaces a failing one is tried at once, not after the failing one's backoff", async () => {
  const { line, manager } = setup();
  line.failWith = { ok: false, status: 400, reason: "invalid_client: unknown kid" };
  await manager.start(channel(shortLived));
  await manager.poll();
  assert.match(await tokenOf(manager), /invalid_client/);
  line.failWith = null;
  manager.setChannels(channel({ type: "stateless" }));
  assert.equal(await tokenOf(manager), "token-1");
  await manager.close();
});

test("replaced tokens that could not be revoked are revoked before an issue that would pass LINE's 30 live tokens", async () => {
  const { line, clock, manager } = setup();
  await manager.start(channel(shortLived));
  await manager.poll();
  line.revokeFails = true;
  for (let i = 1; i <= 28; i++) {
    clock.t += 10_000;
    assert.equal(await manager.refused(SENDER, `token-${i}`), `token-${i + 1}`);
  }
  assert.equal(manager.status(SENDER)?.retired, 28, "kept, to be revoked later");
  line.revokeFails = false;
  line.calls = [];
  clock.t += 10_000;
  assert.equal(await manager.refused(SENDER, "token-29"), "token-30");
  assert.deepEqual(
    line.calls.slice(0, 28),
    Array.from({ length: 28 }, (_, i) => `revoke token-${i + 1}`),
  );
  assert.equal(line.calls[28], "issue token-30", "then the new one");
  assert.equal(manager.status(SENDER)?.retired, 1, "only token-29 waits, for revokeAfterMs");
  await manager.close();
});

test("TALKGATE_SECRET_KEY rotation: a start with the previous key reseals the stored tokens, which then open without it", async () => {
  const { store, line } = await storedWithARetiredToken();

  const next = parseSecretKey("K", randomBytes(32).toString("base64"));
  const during = setup(store, line, "b", new SecretBox(next, [oldKey]));
  during.clock.t = T0 + 24 * DAY;
  await during.manager.start(channel(shortLived));
  await during.manager.close();
  const after = setup(store, line, "c", new SecretBox(next, []));
  after.clock.t = T0 + 24 * DAY + OPTIONS.revokeAfterMs;
  await after.manager.start(channel(shortLived));
  await after.manager.poll();
  assert.equal(await tokenOf(after.manager), "token-2", "read under the new key alone");
  assert.deepEqual(line.issued, ["token-1", "token-2"]);
  assert.deepEqual(line.revoked, ["token-1"], "the replaced one too");
  await after.manager.close();
});

test("a stored token no configured key opens is issued again; a replaced one is forgotten, not retried", async () => {
  const { store, line } = await storedWithARetiredToken();

  const other = setup(
    store,
    line,
    "b",
    new SecretBox(parseSecretKey("K", randomBytes(32).toString("base64")), []),
  );
  other.clock.t = T0 + 24 * DAY + OPTIONS.revokeAfterMs;
  await other.manager.start(channel(shortLived));
  await other.manager.poll();
  assert.equal(await tokenOf(other.manager), "token-3");
  assert.equal(
    other.manager.status(SENDER)?.retired,
    1,
    "token-1, which no key opens, is forgotten once due; token-2 waits for its turn",
  );
  await other.manager.close();
});
