// Channel access tokens that renew themselves (SPEC §11): each managed channel's token is issued at LINE, stored
// sealed, renewed before it expires by the one instance holding the channel's lease, and read by every instance;
// the tokens it replaced are revoked once the others have moved on.
import type { Logger } from "pino";
import {
  type AccessTokenCredential,
  credentialId,
  isRevocable,
  LINE_TOKEN_LIMIT,
  type ManagedCredential,
  type ManagedTokenType,
  type RenewalPolicy,
  renewalTime,
} from "../core/access-token.ts";
import { retryDelay } from "../core/retry-policy.ts";
import { type SecretBox, sealedKeyId } from "../core/secret-box.ts";
import type { ChannelTokenSource, Clock, LineTokenApi } from "./ports.ts";
import type { ChannelTokenRow, ChannelTokens, RetiredToken } from "./store.ts";

/** A channel as the token manager needs it. */
export interface TokenChannelConfig {
  senderKey: string;
  channelSecret: string;
  accessToken: AccessTokenCredential | undefined;
}

export interface TokenManagerOptions extends RenewalPolicy {
  /** How long one instance holds a channel's renewal lease. */
  leaseMs: number;
  /** How often the stored tokens are read again (other instances' renewals) and due renewals started. */
  pollMs: number;
  /** A replaced token is revoked this long after, once every instance reads its successor. */
  revokeAfterMs: number;
  /** The longest a call waits for another instance's renewal of the channel's token. */
  waitMs: number;
}

export interface TokenManagerDeps {
  store: ChannelTokens;
  line: LineTokenApi;
  /** Seals issued tokens; managed tokens need it (the configuration refuses them without). */
  box: SecretBox | null;
  clock: Clock;
  logger: Pick<Logger, "info" | "warn" | "error">;
  /** Told of every failed issue. */
  onRenewalFailed?: (senderKey: string) => void;
  /** Names this instance as a lease owner. */
  owner: string;
}

/** A channel's token as the admin API and /metrics show it (never the token). */
export interface TokenStatus {
  type: AccessTokenCredential["type"];
  /** valid: a token is in use; failing: the last issue failed (a valid token may still be in use); none: no token. */
  state: "valid" | "failing" | "none";
  issuedAt: number | null;
  expiresAt: number | null;
  /** When it is due to be renewed. */
  renewAt: number | null;
  lastRenewalAt: number | null;
  lastFailureAt: number | null;
  lastFailure: string | null;
  /** Replaced tokens not yet revoked. */
  retired: number;
}

// Backoff after a failed issue: 5 s, doubling, at most 5 minutes (the same for every instance: from the row).
const RETRY = { initialDelayMs: 5_000, maxDelayMs: 5 * 60_000, maxAgeMs: Number.POSITIVE_INFINITY };
/** A token LINE refuses within this long of the last forced renewal is not renewed again (no issue loop). */
const FORCED_RENEWAL_INTERVAL_MS = 10_000;

interface Managed {
  credential: ManagedCredential;
  credentialId: string;
  channelSecret: string;
  /** The stored row as last read. */
  row: ChannelTokenRow | null;
  /** The row's token, opened, when it was issued under the channel's current credential. */
  token: string | null;
  lastForcedAt: number;
  /** Not tried yet under this credential on this instance: an earlier credential's failures do not delay it. */
  untried: boolean;
}

type Entry = { type: "static"; token: string } | ({ type: "managed" } & Managed);

/** {@link ChannelTokenSource} over static tokens and managed ones. */
export class ChannelTokenManager implements ChannelTokenSource {
  readonly #deps: TokenManagerDeps;
  readonly #options: TokenManagerOptions;
  #channels = new Map<string, Entry>();
  /** The renewal (or wait for another instance's) in flight, per channel. */
  readonly #renewals = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> = Promise.resolve();

  constructor(deps: TokenManagerDeps, options: TokenManagerOptions) {
    this.#deps = deps;
    this.#options = options;
  }

  /** Reads the stored tokens, then renews what is due (now, in the background, and every `pollMs`). */
  async start(channels: readonly TokenChannelConfig[]): Promise<void> {
    this.setChannels(channels);
    await this.#resealAll();
    await this.#sync();
    this.#timer = setInterval(() => void this.poll(), this.#options.pollMs).unref();
    this.#ticking = this.#renewDue();
  }

  /**
   * Reads the stored tokens again (other instances' renewals) and renews, or revokes, what is due; resolves
   * once those renewals are done. Polls never overlap.
   */
  poll(): Promise<void> {
    this.#ticking = this.#ticking.then(() => this.#tick());
    return this.#ticking;
  }

  /** The channels from now on (a changed credential is issued a token of its own). */
  setChannels(channels: readonly TokenChannelConfig[]): void {
    const next = new Map<string, Entry>();
    for (const { senderKey, channelSecret, accessToken } of channels) {
      if (accessToken === undefined) continue;
      if (accessToken.type === "static") {
        next.set(senderKey, { type: "static", token: accessToken.token });
        continue;
      }
      const id = credentialId(accessToken);
      const before = this.#channels.get(senderKey);
      const same = before?.type === "managed" && before.credentialId === id ? before : null;
      const row = before?.type === "managed" ? before.row : null;
      next.set(senderKey, {
        type: "managed",
        credential: accessToken,
        credentialId: id,
        channelSecret,
        row,
        token: row ? this.#open(row, id) : null,
        lastForcedAt: same?.lastForcedAt ?? 0,
        untried: same?.untried ?? true,
      });
    }
    this.#channels = next;
  }

  has(senderKey: string): boolean {
    return this.#channels.has(senderKey);
  }

  async token(senderKey: string): Promise<{ ok: true; token: string } | { ok: false; reason: string }> {
    let entry = this.#channels.get(senderKey);
    if (entry?.type === "static") return { ok: true, token: entry.token };
    if (!entry) return { ok: false, reason: `channel ${senderKey} has no channel access token configured` };
    if (this.#usable(entry)) return { ok: true, token: entry.token as string };
    // No token yet (first use), or it expired while renewals failed: try now unless backing off.
    if (this.#mayTry(entry, this.#clock())) await this.#renew(senderKey, null);
    entry = this.#channels.get(senderKey);
    if (entry?.type === "managed" && this.#usable(entry)) return { ok: true, token: entry.token as string };
    const why = entry?.type === "managed" ? entry.row?.lastFailure : null;
    return {
      ok: false,
      reason: `channel ${senderKey} has no usable channel access token (${why ?? "none issued yet"})`,
    };
  }

  async refused(senderKey: string, token: string): Promise<string | null> {
    const entry = this.#channels.get(senderKey);
    if (entry?.type !== "managed") return null;
    if (entry.token !== token && this.#usable(entry)) return entry.token;
    const inFlight = this.#renewals.get(senderKey);
    if (inFlight) await inFlight;
    else {
      if (this.#clock() - entry.lastForcedAt < FORCED_RENEWAL_INTERVAL_MS) return null;
      entry.lastForcedAt = this.#clock();
      this.#deps.logger.warn({ senderKey, type: entry.credential.type }, "token:refused");
      await this.#renew(senderKey, token);
    }
    const after = this.#channels.get(senderKey);
    return after?.type === "managed" && after.token !== token && this.#usable(after) ? after.token : null;
  }

  /** The channel's token state, or null when it has no token configured. */
  status(senderKey: string): TokenStatus | null {
    const entry = this.#channels.get(senderKey);
    if (!entry) return null;
    if (entry.type === "static")
      return {
        type: "static",
        state: "valid",
        issuedAt: null,
        expiresAt: null,
        renewAt: null,
        lastRenewalAt: null,
        lastFailureAt: null,
        lastFailure: null,
        retired: 0,
      };
    const row = entry.row;
    const usable = this.#usable(entry);
    const times = usable && row?.issuedAt != null && row.expiresAt != null ? row : null;
    return {
      type: entry.credential.type,
      state: (row?.failures ?? 0) > 0 ? "failing" : usable ? "valid" : "none",
      issuedAt: times?.issuedAt ?? null,
      expiresAt: times?.expiresAt ?? null,
      renewAt: times
        ? renewalTime(entry.credential.type, times as { issuedAt: number; expiresAt: number }, this.#options)
        : null,
      lastRenewalAt: row?.lastRenewalAt ?? null,
      lastFailureAt: row?.lastFailureAt ?? null,
      lastFailure: row?.lastFailure ?? null,
      retired: row ? retiredOf(row).length : 0,
    };
  }

  /** Every managed channel's token expiry (ms), for /metrics; null when it has none. */
  expiries(): Array<{ senderKey: string; expiresAt: number | null }> {
    return [...this.#channels].flatMap(([senderKey, entry]) =>
      entry.type === "managed"
        ? [{ senderKey, expiresAt: this.#usable(entry) ? (entry.row?.expiresAt ?? null) : null }]
        : [],
    );
  }

  /** Stops renewing; a renewal in flight finishes. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#ticking;
    await Promise.all(this.#renewals.values());
  }

  async #tick(): Promise<void> {
    try {
      await this.#sync();
    } catch (error) {
      this.#deps.logger.warn({ err: error }, "token:sync:failed");
      return;
    }
    await this.#renewDue();
  }

  // The renewals (and revocations) due now, channels side by side.
  async #renewDue(): Promise<void> {
    const now = this.#clock();
    const due = [...this.#channels].filter(
      ([senderKey, entry]) =>
        entry.type === "managed" && !this.#renewals.has(senderKey) && this.#due(entry, now),
    );
    await Promise.all(due.map(([senderKey]) => this.#renew(senderKey, null)));
  }

  // Reads every stored token; a row whose version moved is taken up (another instance renewed it).
  async #sync(): Promise<void> {
    for (const row of await this.#deps.store.listChannelTokens()) this.#adopt(row);
  }

  #adopt(row: ChannelTokenRow): void {
    const entry = this.#channels.get(row.senderKey);
    if (entry?.type !== "managed" || entry.row?.version === row.version) return;
    entry.row = row;
    entry.token = this.#open(row, entry.credentialId);
  }

  #open(row: ChannelTokenRow, credential: string): string | null {
    if (row.token === null || row.credentialId !== credential) return null;
    return this.#openSealed(row.senderKey, row.token);
  }

  // A sealed token in clear; null (and a warning) when no configured key opens it: it is then issued again.
  #openSealed(senderKey: string, sealed: string): string | null {
    try {
      return this.#deps.box?.open(sealed, tokenContext(senderKey)) ?? null;
    } catch (error) {
      this.#deps.logger.warn({ senderKey, err: error }, "token:unreadable");
      return null;
    }
  }

  // After a TALKGATE_SECRET_KEY rotation: what the previous key sealed is sealed again under the current one, as
  // configuration entries are (runtime-config.ts), so that the previous key can go.
  async #resealAll(): Promise<void> {
    const { box, store, owner, logger } = this.#deps;
    if (!box) return;
    const reseal = (sealed: string, senderKey: string) =>
      sealedKeyId(sealed) !== box.keyId && box.canOpen(sealed)
        ? box.seal(box.open(sealed, tokenContext(senderKey)), tokenContext(senderKey))
        : sealed;
    for (const stale of await store.listChannelTokens()) {
      const sealed = [stale.token, ...retiredOf(stale).map((r) => r.sealed)];
      if (!sealed.some((value) => value !== null && reseal(value, stale.senderKey) !== value)) continue;
      const row = await store.leaseChannelToken(stale.senderKey, owner, this.#clock(), this.#options.leaseMs);
      if (!row) continue; // another instance is renewing it: left for the next start
      const { senderKey } = row;
      const retired = retiredOf(row).map((r) => ({ ...r, sealed: reseal(r.sealed, senderKey) }));
      const token = row.token === null ? null : reseal(row.token, senderKey);
      await store.saveChannelToken({ ...row, token, retired: JSON.stringify(retired) }, owner);
      logger.info({ senderKey, key: box.keyId }, "token:resealed");
    }
  }

  #usable(entry: Managed): boolean {
    return entry.token !== null && (entry.row?.expiresAt ?? 0) > this.#clock();
  }

  // After failed issues, the next try waits (the same wait on every instance: it is read from the row).
  #mayTry(entry: Managed, now: number): boolean {
    return entry.untried || now >= nextAttemptAt(entry.row);
  }

  #due(entry: Managed, now: number): boolean {
    if (!this.#mayTry(entry, now)) return false;
    return this.#needsToken(entry, now) || retiredOf(entry.row).some((r) => r.revokeAt <= now);
  }

  #needsToken(entry: Managed, now: number): boolean {
    const row = entry.row;
    if (!this.#usable(entry) || row?.issuedAt == null || row.expiresAt == null) return true;
    return (
      now >=
      renewalTime(entry.credential.type, { issuedAt: row.issuedAt, expiresAt: row.expiresAt }, this.#options)
    );
  }

  // One renewal per channel at a time on this instance; a second caller waits for the first.
  #renew(senderKey: string, refused: string | null): Promise<void> {
    let renewal = this.#renewals.get(senderKey);
    if (!renewal) {
      renewal = this.#renewUnderLease(senderKey, refused)
        .catch((error) => this.#deps.logger.error({ senderKey, err: error }, "token:renew:error"))
        .finally(() => this.#renewals.delete(senderKey));
      this.#renewals.set(senderKey, renewal);
    }
    return renewal;
  }

  async #renewUnderLease(senderKey: string, refused: string | null): Promise<void> {
    const { store, owner } = this.#deps;
    const lease = await store.leaseChannelToken(senderKey, owner, this.#clock(), this.#options.leaseMs);
    if (!lease) return this.#awaitOtherInstance(senderKey);
    this.#adopt(lease);
    const entry = this.#channels.get(senderKey);
    // The channel lost its managed credential meanwhile: give the lease back untouched.
    if (entry?.type !== "managed") {
      await store.saveChannelToken(lease, owner);
      return;
    }
    let row: ChannelTokenRow = lease;
    const now = this.#clock();
    const renew =
      refused !== null ? entry.token === refused || !this.#usable(entry) : this.#needsToken(entry, now);
    if (renew && this.#mayTry(entry, now)) {
      entry.untried = false;
      // LINE keeps at most 30 tokens alive: near that, what is still to be revoked goes first.
      const retired = retiredOf(row);
      if (retired.length >= LINE_TOKEN_LIMIT - 2) {
        const early = retired.map((r) => ({ ...r, revokeAt: Math.min(r.revokeAt, now) }));
        row = { ...row, retired: JSON.stringify(await this.#revokeDue(senderKey, entry, early)) };
      }
      row = { ...(await this.#issue(entry, row, now)), version: row.version };
    }
    row = { ...row, retired: JSON.stringify(await this.#revokeDue(senderKey, entry, retiredOf(row))) };
    if (await store.saveChannelToken(row, owner)) {
      this.#adopt({ ...row, version: lease.version + 1 });
    } else if (row.token !== lease.token && row.token !== null) {
      // Another instance took the lease over meanwhile (this one was too slow): its token wins, ours goes.
      await this.#revoke(
        senderKey,
        entry,
        entry.credential.type,
        this.#open(row as ChannelTokenRow, entry.credentialId),
      );
    }
  }

  // Issues a token under the channel's credential: the row to store, with the outcome (never the token in clear).
  async #issue(entry: Managed, row: ChannelTokenRow, now: number): Promise<Omit<ChannelTokenRow, "version">> {
    const { line, logger, box } = this.#deps;
    const { senderKey } = row;
    const type = entry.credential.type;
    const issued = await line.issue({ senderKey, channelSecret: entry.channelSecret }, entry.credential, now);
    if (!issued.ok || !box) {
      const reason = issued.ok ? "TALKGATE_SECRET_KEY is not set" : issued.reason;
      const failures = row.failures + 1;
      logger.warn(
        { senderKey, type, status: issued.ok ? null : issued.status, reason, failures },
        "token:renew:failed",
      );
      this.#deps.onRenewalFailed?.(senderKey);
      return { ...row, lastFailureAt: now, lastFailure: reason, failures };
    }
    const retired = retiredOf(row);
    const previousType = lastCredentialType(row.credentialId);
    if (
      row.token !== null &&
      row.expiresAt !== null &&
      row.expiresAt > now &&
      previousType &&
      isRevocable(previousType)
    )
      retired.push({
        type: previousType,
        sealed: row.token,
        expiresAt: row.expiresAt,
        revokeAt: now + this.#options.revokeAfterMs,
      });
    const expiresAt = now + issued.value.expiresInSeconds * 1000;
    logger.info(
      { senderKey, type, keyId: issued.value.keyId, expiresAt: new Date(expiresAt).toISOString() },
      "token:renewed",
    );
    return {
      ...row,
      credentialId: entry.credentialId,
      token: box.seal(issued.value.token, tokenContext(senderKey)),
      keyId: issued.value.keyId,
      issuedAt: now,
      expiresAt,
      retired: JSON.stringify(retired),
      lastRenewalAt: now,
      failures: 0,
    };
  }

  // Revokes the replaced tokens whose time has come: those LINE took (or that expired) are forgotten.
  async #revokeDue(senderKey: string, entry: Managed, retired: RetiredToken[]): Promise<RetiredToken[]> {
    const now = this.#clock();
    const kept: RetiredToken[] = [];
    for (const token of retired) {
      if (token.expiresAt <= now) continue;
      if (token.revokeAt > now) {
        kept.push(token);
        continue;
      }
      // One no key opens cannot be revoked: it is forgotten, and expires at LINE.
      const opened = this.#openSealed(senderKey, token.sealed);
      if (!(await this.#revoke(senderKey, entry, token.type, opened)))
        kept.push({ ...token, revokeAt: now + RETRY.maxDelayMs });
    }
    return kept;
  }

  async #revoke(
    senderKey: string,
    entry: Managed,
    type: ManagedTokenType,
    token: string | null,
  ): Promise<boolean> {
    if (token === null || !isRevocable(type)) return true;
    const result = await this.#deps.line.revoke(
      { senderKey, channelSecret: entry.channelSecret },
      type,
      token,
    );
    if (result.ok) this.#deps.logger.info({ senderKey, type }, "token:revoked");
    else
      this.#deps.logger.warn(
        { senderKey, type, status: result.status, reason: result.reason },
        "token:revoke:failed",
      );
    return result.ok;
  }

  // Another instance is renewing: wait (bounded) for its row to move, then take it up.
  async #awaitOtherInstance(senderKey: string): Promise<void> {
    const before = this.#channels.get(senderKey);
    const version = before?.type === "managed" ? before.row?.version : undefined;
    const deadline = Date.now() + this.#options.waitMs;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const rows = await this.#deps.store.listChannelTokens();
      const row = rows.find((r) => r.senderKey === senderKey);
      if (row && row.version !== version) {
        this.#adopt(row);
        return;
      }
    }
  }

  #clock(): number {
    return this.#deps.clock.now();
  }
}

/** What an issued token is sealed with: bound to its channel. */
const tokenContext = (senderKey: string): string => `channel-token/${senderKey}`;

function retiredOf(row: Pick<ChannelTokenRow, "retired"> | null): RetiredToken[] {
  if (!row) return [];
  const parsed: unknown = JSON.parse(row.retired);
  return Array.isArray(parsed) ? (parsed as RetiredToken[]) : [];
}

// When a renewal may be tried again after `failures` failed issues (the same on every instance).
function nextAttemptAt(row: ChannelTokenRow | null): number {
  if (!row || row.failures === 0 || row.lastFailureAt === null) return 0;
  return row.lastFailureAt + retryDelay(row.failures, RETRY, () => 1);
}

// The type of the credential a stored token came from (its credential id starts with it).
function lastCredentialType(id: string | null): ManagedCredential["type"] | null {
  if (id === null) return null;
  const type = id.split(":")[0];
  return type === "v2.1" || type === "stateless" || type === "shortLived" ? type : null;
}
