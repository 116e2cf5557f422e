// Use case: operators change partners, channels, partner keys and signing secrets at runtime (SPEC §10). Entries of
// the configuration file are read-only; secrets are sealed before they are stored and never given back.
import { createHash } from "node:crypto";
import type { AccessTokenCredential } from "../core/access-token.ts";
import { newToken, tokenDigest, tokenId } from "../core/credentials.ts";
import { TalkgateError } from "../core/errors.ts";
import { httpUrlProblem } from "../core/http-url.ts";
import { DEFAULT_FORWARD_EVENT_TYPES } from "../core/partner-payload.ts";
import type { SecretBox } from "../core/secret-box.ts";
import { signingSecretProblem } from "../core/signature.ts";
import type { Clock } from "./ports.ts";
import {
  type Channel,
  type ChannelBody,
  type Partner,
  type PartnerBody,
  type RuntimeConfig,
  sealAccessToken,
  sealContext,
} from "./runtime-config.ts";
import type { ConfigEntry, OperatorData, Outbox } from "./store.ts";

/** Signing secrets a partner may have at once: the current one and the next, during a rotation. */
export const MAX_SIGNING_SECRETS = 2;

export interface NewPartner {
  id: string;
  receiveUrl: string;
  signingSecret?: string | undefined;
  allowPrivateNetwork?: boolean | undefined;
  allowWebhookEndpointChange?: boolean | undefined;
  lineEventFields?: boolean | undefined;
}

export type PartnerChange = Partial<
  Pick<
    Partner,
    "receiveUrl" | "allowPrivateNetwork" | "allowWebhookEndpointChange" | "lineEventFields" | "disabled"
  >
>;

export interface NewChannel {
  senderKey: string;
  partner: string;
  channelSecret: string;
  accessToken?: AccessTokenCredential | undefined;
  forwardEventTypes?: readonly string[] | undefined;
}

export interface ChannelChange {
  partner?: string | undefined;
  channelSecret?: string | undefined;
  /** null removes it. */
  accessToken?: AccessTokenCredential | null | undefined;
  forwardEventTypes?: readonly string[] | undefined;
  disabled?: boolean | undefined;
}

export interface ManageConfigDeps {
  store: OperatorData & Pick<Outbox, "countDeliveries">;
  runtime: RuntimeConfig;
  clock: Clock;
}

/** Names a signing secret without revealing it. */
export function signingSecretId(secret: string): string {
  return createHash("sha256").update(secret).digest("hex").slice(0, 8);
}

/** The partners and channels operators manage: every change is stored, then this instance reloads at once. */
export class ManageConfig {
  readonly #deps: ManageConfigDeps;

  constructor(deps: ManageConfigDeps) {
    this.#deps = deps;
  }

  partner(id: string): Partner {
    const partner = this.#deps.runtime.snapshot.partners.get(id);
    if (!partner) throw new TalkgateError("-804", `no partner ${JSON.stringify(id)}`);
    return partner;
  }

  channel(senderKey: string): Channel {
    const channel = this.#deps.runtime.snapshot.channels.get(senderKey);
    if (!channel) throw new TalkgateError("-804", `no channel ${JSON.stringify(senderKey)}`);
    return channel;
  }

  async createPartner(input: NewPartner): Promise<Partner> {
    if (this.#deps.runtime.snapshot.partners.has(input.id))
      throw new TalkgateError("-809", `partner ${JSON.stringify(input.id)} exists already`);
    checkUrl(input.receiveUrl);
    const now = this.#deps.clock.now();
    const body: PartnerBody = {
      receiveUrl: input.receiveUrl,
      signingSecrets: [],
      allowPrivateNetwork: input.allowPrivateNetwork ?? false,
      allowWebhookEndpointChange: input.allowWebhookEndpointChange ?? false,
      lineEventFields: input.lineEventFields ?? false,
      disabled: false,
    };
    if (input.signingSecret !== undefined)
      body.signingSecrets.push(this.#sealSigningSecret(input.id, input.signingSecret, now));
    await this.#create({
      kind: "partner",
      id: input.id,
      body: JSON.stringify(body),
      createdAt: now,
      updatedAt: now,
    });
    return this.partner(input.id);
  }

  async updatePartner(id: string, change: PartnerChange): Promise<Partner> {
    if (change.receiveUrl !== undefined) checkUrl(change.receiveUrl);
    await this.#update("partner", id, (body: PartnerBody) => ({ ...body, ...defined(change) }));
    return this.partner(id);
  }

  /** Deletes a partner that no channel uses; its keys are revoked. */
  async deletePartner(id: string): Promise<void> {
    this.#own(this.partner(id), id);
    const used = [...this.#deps.runtime.snapshot.channels.values()].filter((c) => c.partner === id);
    if (used.length > 0)
      throw new TalkgateError(
        "-809",
        `partner ${JSON.stringify(id)} still has channels (${used.map((c) => c.senderKey).join(", ")}); delete or move them first`,
      );
    const now = this.#deps.clock.now();
    for (const key of await this.#deps.store.listCredentials("partner-key"))
      if (key.owner === id && key.revokedAt === null)
        await this.#deps.store.revokeCredential("partner-key", key.id, now);
    await this.#deps.store.deleteConfigEntry("partner", id);
    await this.#deps.runtime.refresh();
  }

  /** Adds a signing secret (at most two at once: deliveries then carry a signature by each). */
  async addSigningSecret(id: string, secret: string): Promise<Partner> {
    const now = this.#deps.clock.now();
    await this.#update("partner", id, (body: PartnerBody) => {
      if (body.signingSecrets.length >= MAX_SIGNING_SECRETS)
        throw new TalkgateError(
          "-809",
          `partner ${JSON.stringify(id)} has ${MAX_SIGNING_SECRETS} signing secrets already; retire one first`,
        );
      const sealed = this.#sealSigningSecret(id, secret, now);
      if (body.signingSecrets.some((s) => s.id === sealed.id))
        throw new TalkgateError("-809", "signingSecret: this partner has that secret already");
      return { ...body, signingSecrets: [...body.signingSecrets, sealed] };
    });
    return this.partner(id);
  }

  async retireSigningSecret(id: string, secretId: string): Promise<Partner> {
    await this.#update("partner", id, (body: PartnerBody) => {
      if (!body.signingSecrets.some((s) => s.id === secretId))
        throw new TalkgateError(
          "-804",
          `partner ${JSON.stringify(id)} has no signing secret ${JSON.stringify(secretId)}`,
        );
      return { ...body, signingSecrets: body.signingSecrets.filter((s) => s.id !== secretId) };
    });
    return this.partner(id);
  }

  /** Makes a partner API key; answers it once (only its digest is kept). */
  async createPartnerKey(
    partnerId: string,
    name: string,
    createdBy: string,
  ): Promise<{ id: string; key: string }> {
    this.#own(this.partner(partnerId), partnerId);
    const key = newToken("partner-key");
    const id = tokenId(key);
    await this.#deps.store.addCredential({
      id,
      kind: "partner-key",
      owner: partnerId,
      name,
      digest: tokenDigest(key),
      createdAt: this.#deps.clock.now(),
      createdBy,
      revokedAt: null,
      lastUsedAt: null,
    });
    await this.#deps.runtime.refresh();
    return { id, key };
  }

  async revokePartnerKey(partnerId: string, keyId: string): Promise<void> {
    this.#own(this.partner(partnerId), partnerId);
    const key = (await this.#deps.store.listCredentials("partner-key")).find(
      (k) => k.id === keyId && k.owner === partnerId && k.revokedAt === null,
    );
    if (!key || !(await this.#deps.store.revokeCredential("partner-key", keyId, this.#deps.clock.now())))
      throw new TalkgateError(
        "-804",
        `partner ${JSON.stringify(partnerId)} has no live key ${JSON.stringify(keyId)}`,
      );
    await this.#deps.runtime.refresh();
  }

  async createChannel(input: NewChannel): Promise<Channel> {
    const { snapshot } = this.#deps.runtime;
    if (snapshot.channels.has(input.senderKey))
      throw new TalkgateError("-809", `channel ${JSON.stringify(input.senderKey)} exists already`);
    this.#partnerFor(input.partner);
    const box = this.#box();
    const now = this.#deps.clock.now();
    const body: ChannelBody = {
      partner: input.partner,
      channelSecret: box.seal(input.channelSecret, sealContext("channel", input.senderKey, "channelSecret")),
      accessToken: input.accessToken ? sealAccessToken(input.accessToken, input.senderKey, box) : null,
      forwardEventTypes: [...(input.forwardEventTypes ?? DEFAULT_FORWARD_EVENT_TYPES)],
      disabled: false,
    };
    await this.#create({
      kind: "channel",
      id: input.senderKey,
      body: JSON.stringify(body),
      createdAt: now,
      updatedAt: now,
    });
    return this.channel(input.senderKey);
  }

  async updateChannel(senderKey: string, change: ChannelChange): Promise<Channel> {
    if (change.partner !== undefined) this.#partnerFor(change.partner);
    await this.#update("channel", senderKey, (body: ChannelBody) => {
      const next = { ...body };
      if (change.partner !== undefined) next.partner = change.partner;
      if (change.forwardEventTypes !== undefined) next.forwardEventTypes = [...change.forwardEventTypes];
      if (change.disabled !== undefined) next.disabled = change.disabled;
      if (change.channelSecret !== undefined)
        next.channelSecret = this.#box().seal(
          change.channelSecret,
          sealContext("channel", senderKey, "channelSecret"),
        );
      if (change.accessToken !== undefined) {
        delete next.channelAccessToken;
        next.accessToken = change.accessToken && sealAccessToken(change.accessToken, senderKey, this.#box());
      }
      return next;
    });
    return this.channel(senderKey);
  }

  /** Deletes a channel with no deliveries waiting (its stored events stay). */
  async deleteChannel(senderKey: string): Promise<void> {
    this.#own(this.channel(senderKey), senderKey);
    const waiting =
      (await this.#deps.store.countDeliveries({ senderKeys: [senderKey], state: "pending" })) +
      (await this.#deps.store.countDeliveries({ senderKeys: [senderKey], state: "retrying" }));
    if (waiting > 0)
      throw new TalkgateError(
        "-809",
        `channel ${JSON.stringify(senderKey)} has ${waiting} deliveries waiting; disable it and let them finish first`,
      );
    await this.#deps.store.deleteConfigEntry("channel", senderKey);
    await this.#deps.runtime.refresh();
  }

  #partnerFor(id: string): void {
    if (!this.#deps.runtime.snapshot.partners.has(id))
      throw new TalkgateError("-405", `partner: no partner ${JSON.stringify(id)}`);
  }

  #box(): SecretBox {
    const box = this.#deps.runtime.box;
    if (!box)
      throw new TalkgateError(
        "-812",
        "TALKGATE_SECRET_KEY is not set: talkgate cannot store a secret (see docs/security.md)",
      );
    return box;
  }

  #sealSigningSecret(partnerId: string, secret: string, now: number): PartnerBody["signingSecrets"][number] {
    const problem = signingSecretProblem(secret);
    if (problem)
      throw new TalkgateError("-405", `signingSecret: ${problem} (make one with: talkgate secrets signing)`);
    const id = signingSecretId(secret);
    return {
      id,
      addedAt: now,
      sealed: this.#box().seal(secret, sealContext("partner", partnerId, `signingSecret/${id}`)),
    };
  }

  // Entries of the configuration file change only there.
  #own(entry: { managedBy: string }, id: string): void {
    if (entry.managedBy === "file")
      throw new TalkgateError(
        "-809",
        `${JSON.stringify(id)} is managed by the configuration file: change it there (the admin API shows it read-only)`,
      );
  }

  async #create(entry: ConfigEntry): Promise<void> {
    if (!(await this.#deps.store.createConfigEntry(entry)))
      throw new TalkgateError("-809", `${entry.kind} ${JSON.stringify(entry.id)} exists already`);
    await this.#deps.runtime.refresh();
  }

  async #update<B>(kind: ConfigEntry["kind"], id: string, change: (body: B) => B): Promise<void> {
    const current = kind === "partner" ? this.partner(id) : this.channel(id);
    this.#own(current, id);
    const entry = (await this.#deps.store.listConfigEntries()).find((e) => e.kind === kind && e.id === id);
    if (!entry) throw new TalkgateError("-804", `no ${kind} ${JSON.stringify(id)}`);
    const body = change(JSON.parse(entry.body) as B);
    await this.#deps.store.updateConfigEntry(kind, id, JSON.stringify(body), this.#deps.clock.now());
    await this.#deps.runtime.refresh();
  }
}

function checkUrl(receiveUrl: string): void {
  const problem = httpUrlProblem(receiveUrl);
  if (problem) throw new TalkgateError("-405", `receiveUrl: ${problem}`);
}

// The fields of `change` that are set.
function defined<T extends object>(change: T): Partial<T> {
  return Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined)) as Partial<T>;
}
