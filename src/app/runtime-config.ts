// Runtime configuration (SPEC §10): the partners and channels of the configuration file (read-only) and those made
// through the admin API (in the database, secrets sealed), merged into one snapshot that every instance reloads
// within seconds of a change.

import type { JsonWebKey } from "node:crypto";
import type { Logger } from "pino";
import type { AccessTokenCredential } from "../core/access-token.ts";
import { type SecretBox, sealedKeyId } from "../core/secret-box.ts";
import type { Clock } from "./ports.ts";
import type { ConfigEntry, Credential, OperatorData } from "./store.ts";

/** Where an entry comes from: the configuration file (read-only at runtime) or the admin API. */
export type ManagedBy = "file" | "api";

/** A signing secret of a partner; `id` names it without revealing it. */
export interface SigningSecret {
  id: string;
  secret: string;
  addedAt: number;
}

export interface Partner {
  id: string;
  receiveUrl: string;
  /** Deliveries carry a signature by each (two during a rotation). */
  signingSecrets: readonly SigningSecret[];
  allowPrivateNetwork: boolean;
  allowWebhookEndpointChange: boolean;
  lineEventFields: boolean;
  /** A disabled partner's keys are refused and its deliveries wait. */
  disabled: boolean;
  managedBy: ManagedBy;
  createdAt: number | null;
  updatedAt: number | null;
}

export interface Channel {
  senderKey: string;
  channelSecret: string;
  /** A static token, or how talkgate issues its own (SPEC §11); none: the channel cannot call LINE. */
  accessToken: AccessTokenCredential | undefined;
  partner: string;
  forwardEventTypes: readonly string[];
  /** A disabled channel's webhooks are refused (404 -406) and its partner's keys do not reach it. */
  disabled: boolean;
  managedBy: ManagedBy;
  createdAt: number | null;
  updatedAt: number | null;
}

/** A partner API key as talkgate knows it: its digest, never the key. */
export interface PartnerKey {
  id: string;
  partnerId: string;
  name: string;
  digest: string;
  managedBy: ManagedBy;
  createdAt: number | null;
  lastUsedAt: number | null;
}

/** Every partner, channel and live partner key at one moment. */
export interface ConfigSnapshot {
  version: number;
  partners: ReadonlyMap<string, Partner>;
  channels: ReadonlyMap<string, Channel>;
  /** Live (not revoked) partner keys by digest. */
  keys: ReadonlyMap<string, PartnerKey>;
}

/** A partner entry's JSON in the database (config_entries.body). */
export interface PartnerBody {
  receiveUrl: string;
  signingSecrets: Array<{ id: string; sealed: string; addedAt: number }>;
  allowPrivateNetwork: boolean;
  allowWebhookEndpointChange: boolean;
  lineEventFields: boolean;
  disabled: boolean;
}

/** A channel's credential in the database: its secrets (a static token, a v2.1 private key's JSON) sealed. */
export type StoredAccessToken =
  | { type: "static"; token: string }
  | { type: "v2.1"; kid: string; privateKey: string; ttlSeconds: number }
  | { type: "stateless" }
  | { type: "shortLived" };

/** A channel entry's JSON in the database. */
export interface ChannelBody {
  partner: string;
  channelSecret: string;
  accessToken: StoredAccessToken | null;
  /** Entries written before accessToken: a sealed static token. */
  channelAccessToken?: string | null;
  forwardEventTypes: string[];
  disabled: boolean;
}

/** The context a sealed value is bound to: its entry and field. */
export const sealContext = (kind: ConfigEntry["kind"], id: string, field: string): string =>
  `${kind}/${id}/${field}`;

/** Refused at start: stored secrets that the configured keys cannot open. */
export class SecretKeyRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretKeyRefusal";
  }
}

export interface RuntimeConfigOptions {
  /** The configuration file's partners and channels, with the digests of their keys. */
  file: {
    partners: readonly Partner[];
    channels: readonly Channel[];
    keys: readonly PartnerKey[];
  };
  store: OperatorData;
  /** Opens and seals secrets; null when TALKGATE_SECRET_KEY is not set (then no secret can be stored). */
  box: SecretBox | null;
  clock: Clock;
  logger: Pick<Logger, "info" | "warn" | "error">;
  /** How often the database's config version is looked at. */
  pollMs: number;
}

/**
 * The current configuration of this instance. {@link open} refuses to start when the database holds secrets
 * the key cannot open, and re-seals under the current key what an earlier key sealed (key rotation).
 */
export class RuntimeConfig {
  readonly #options: RuntimeConfigOptions;
  readonly #listeners: Array<(snapshot: ConfigSnapshot) => void> = [];
  #snapshot: ConfigSnapshot;
  #timer: NodeJS.Timeout | undefined;
  /** Reloads run one after the other: one asked for after a change always reads that change. */
  #reloads: Promise<void> = Promise.resolve();
  #queued = 0;
  /** Keys used since the last flush, with when. */
  #used = new Map<string, number>();

  private constructor(options: RuntimeConfigOptions, snapshot: ConfigSnapshot) {
    this.#options = options;
    this.#snapshot = snapshot;
  }

  static async open(options: RuntimeConfigOptions): Promise<RuntimeConfig> {
    await resealEntries(options);
    const config = new RuntimeConfig(options, await load(options));
    config.#timer = setInterval(() => {
      if (config.#queued === 0) void config.refresh();
    }, options.pollMs).unref();
    return config;
  }

  get snapshot(): ConfigSnapshot {
    return this.#snapshot;
  }

  get box(): SecretBox | null {
    return this.#options.box;
  }

  /** Calls `listener` with each new snapshot (not with the current one). */
  onChange(listener: (snapshot: ConfigSnapshot) => void): void {
    this.#listeners.push(listener);
  }

  /** A channel whose webhooks are taken (not disabled), or undefined. A disabled partner's events wait for it. */
  activeChannel(senderKey: string): Channel | undefined {
    const channel = this.#snapshot.channels.get(senderKey);
    return channel && !channel.disabled ? channel : undefined;
  }

  /** Notes that a partner key was used (written to the database in batches). */
  noteKeyUsed(id: string): void {
    this.#used.set(id, this.#options.clock.now());
  }

  /**
   * Loads the database's entries again if their version moved (at once after a change this instance made;
   * every `pollMs` for the changes of others). Never throws: a failed reload keeps the current snapshot.
   */
  refresh(): Promise<void> {
    this.#queued++;
    this.#reloads = this.#reloads.then(() => this.#reload()).finally(() => this.#queued--);
    return this.#reloads;
  }

  async #reload(): Promise<void> {
    const { store, logger } = this.#options;
    try {
      await this.#flushUsed();
      if ((await store.configVersion()) === this.#snapshot.version) return;
      const next = await load(this.#options);
      this.#snapshot = next;
      logger.info(
        { version: next.version, partners: next.partners.size, channels: next.channels.size },
        "config:reloaded",
      );
      for (const listener of this.#listeners) listener(next);
    } catch (error) {
      logger.warn({ err: error }, "config:reload:failed");
    }
  }

  async #flushUsed(): Promise<void> {
    if (this.#used.size === 0) return;
    const used = this.#used;
    this.#used = new Map();
    const at = Math.max(...used.values());
    await this.#options.store.touchCredentials([...used.keys()], at);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#reloads;
    await this.#flushUsed().catch(() => {});
  }
}

// The file's entries, then the database's (an id the file has wins), then the live keys of both.
async function load(options: RuntimeConfigOptions): Promise<ConfigSnapshot> {
  const { store, file, box } = options;
  const version = await store.configVersion();
  const [entries, credentials] = await Promise.all([
    store.listConfigEntries(),
    store.listCredentials("partner-key"),
  ]);
  const partners = new Map(file.partners.map((p) => [p.id, p]));
  const channels = new Map(file.channels.map((c) => [c.senderKey, c]));
  for (const entry of entries) {
    if (entry.kind === "partner" && !partners.has(entry.id)) partners.set(entry.id, toPartner(entry, box));
    if (entry.kind === "channel" && !channels.has(entry.id)) channels.set(entry.id, toChannel(entry, box));
  }
  const keys = new Map(file.keys.map((k) => [k.digest, k]));
  for (const credential of credentials) {
    if (credential.revokedAt === null && partners.get(credential.owner)?.managedBy === "api")
      keys.set(credential.digest, toPartnerKey(credential));
  }
  return { version, partners, channels, keys };
}

function opener(box: SecretBox | null) {
  return (sealed: string, context: string): string => {
    if (!box)
      throw new SecretKeyRefusal(
        `the database holds secrets sealed under key ${sealedKeyId(sealed) ?? "?"}, but TALKGATE_SECRET_KEY is not set`,
      );
    return box.open(sealed, context);
  };
}

function toPartner(entry: ConfigEntry, box: SecretBox | null): Partner {
  const body = JSON.parse(entry.body) as PartnerBody;
  const open = opener(box);
  return {
    id: entry.id,
    receiveUrl: body.receiveUrl,
    signingSecrets: body.signingSecrets.map((s) => ({
      id: s.id,
      addedAt: s.addedAt,
      secret: open(s.sealed, sealContext("partner", entry.id, `signingSecret/${s.id}`)),
    })),
    allowPrivateNetwork: body.allowPrivateNetwork,
    allowWebhookEndpointChange: body.allowWebhookEndpointChange,
    lineEventFields: body.lineEventFields,
    disabled: body.disabled,
    managedBy: "api",
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
  };
}

function toChannel(entry: ConfigEntry, box: SecretBox | null): Channel {
  const body = JSON.parse(entry.body) as ChannelBody;
  const open = opener(box);
  return {
    senderKey: entry.id,
    partner: body.partner,
    channelSecret: open(body.channelSecret, sealContext("channel", entry.id, "channelSecret")),
    accessToken: openAccessToken(storedAccessToken(body), (sealed, field) =>
      open(sealed, sealContext("channel", entry.id, field)),
    ),
    forwardEventTypes: body.forwardEventTypes,
    disabled: body.disabled,
    managedBy: "api",
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
  };
}

// A channel body's credential, whichever way it was written.
function storedAccessToken(body: ChannelBody): StoredAccessToken | null {
  if (body.accessToken !== undefined) return body.accessToken;
  return body.channelAccessToken ? { type: "static", token: body.channelAccessToken } : null;
}

/** A credential as a channel entry stores it, its secrets sealed to the channel and field. */
export function sealAccessToken(
  credential: AccessTokenCredential,
  senderKey: string,
  box: SecretBox,
): StoredAccessToken {
  if (credential.type === "static")
    return {
      type: "static",
      token: box.seal(credential.token, sealContext("channel", senderKey, "channelAccessToken")),
    };
  if (credential.type === "v2.1")
    return {
      ...credential,
      privateKey: box.seal(
        JSON.stringify(credential.privateKey),
        sealContext("channel", senderKey, "privateKey"),
      ),
    };
  return credential;
}

function openAccessToken(
  stored: StoredAccessToken | null,
  open: (sealed: string, field: string) => string,
): AccessTokenCredential | undefined {
  if (stored === null) return undefined;
  if (stored.type === "static") return { type: "static", token: open(stored.token, "channelAccessToken") };
  if (stored.type === "v2.1")
    return { ...stored, privateKey: JSON.parse(open(stored.privateKey, "privateKey")) as JsonWebKey };
  return stored;
}

function toPartnerKey(credential: Credential): PartnerKey {
  return {
    id: credential.id,
    partnerId: credential.owner,
    name: credential.name,
    digest: credential.digest,
    managedBy: "api",
    createdAt: credential.createdAt,
    lastUsedAt: credential.lastUsedAt,
  };
}

// Every sealed value in an entry's JSON, with its context, rewritten by `change`.
function mapSealed(entry: ConfigEntry, change: (sealed: string, context: string) => string): string {
  if (entry.kind === "partner") {
    const body = JSON.parse(entry.body) as PartnerBody;
    for (const s of body.signingSecrets)
      s.sealed = change(s.sealed, sealContext("partner", entry.id, `signingSecret/${s.id}`));
    return JSON.stringify(body);
  }
  const body = JSON.parse(entry.body) as ChannelBody;
  body.channelSecret = change(body.channelSecret, sealContext("channel", entry.id, "channelSecret"));
  const stored = storedAccessToken(body);
  if (stored?.type === "static")
    stored.token = change(stored.token, sealContext("channel", entry.id, "channelAccessToken"));
  if (stored?.type === "v2.1")
    stored.privateKey = change(stored.privateKey, sealContext("channel", entry.id, "privateKey"));
  delete body.channelAccessToken;
  return JSON.stringify({ ...body, accessToken: stored });
}

/**
 * Checks that every stored secret opens with the configured keys (refusing to start otherwise, with the key
 * ids named) and seals again under the current key what a previous key sealed.
 */
async function resealEntries(options: RuntimeConfigOptions): Promise<void> {
  const { store, box, clock, logger } = options;
  const open = opener(box);
  let resealed = 0;
  for (const entry of await store.listConfigEntries()) {
    let changed = false;
    const body = mapSealed(entry, (sealed, context) => {
      if (box && !box.canOpen(sealed))
        throw new SecretKeyRefusal(
          `the database holds secrets sealed under key ${sealedKeyId(sealed) ?? "?"}, but TALKGATE_SECRET_KEY is key ${box.keyId} ` +
            "(while rotating, give the old key in TALKGATE_SECRET_KEY_PREVIOUS)",
        );
      try {
        const plain = open(sealed, context);
        if (sealedKeyId(sealed) === box?.keyId) return sealed;
        changed = true;
        return (box as SecretBox).seal(plain, context);
      } catch (error) {
        if (error instanceof SecretKeyRefusal) throw error;
        throw new SecretKeyRefusal(`${(error as Error).message}; talkgate cannot start with it`);
      }
    });
    if (changed) {
      await store.updateConfigEntry(entry.kind, entry.id, body, clock.now());
      resealed++;
    }
  }
  if (resealed > 0) logger.info({ entries: resealed, key: box?.keyId }, "config:secrets:resealed");
}
