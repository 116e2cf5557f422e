// Partner API keys: `Authorization: Bearer <key>`, checked in constant time, each key confined to its partner's channels.
import { createHash, timingSafeEqual } from "node:crypto";
import type { ConfigSnapshot } from "../app/runtime-config.ts";
import { TalkgateError } from "../core/errors.ts";

/** What one authenticated key may reach. */
export interface PartnerAccess {
  partnerId: string;
  /** Names the key without revealing it (the start of its SHA-256), e.g. for rate limits. */
  keyId: string;
  /** The channels this key reaches. */
  senderKeys: readonly string[];
  /** Whether it may repoint its channels' webhook URL at LINE (partners[].allowWebhookEndpointChange). */
  allowWebhookEndpointChange: boolean;
  /** Throws -406 for a channel that is not this partner's, exactly as for one that does not exist. */
  requireChannel(senderKey: string): void;
}

const digest = (key: string) => createHash("sha256").update(key).digest();

/** A partner as its keys see it: the keys themselves (the configuration file) or their digests (the database). */
export interface KeyedPartner {
  id: string;
  apiKeys?: readonly string[];
  keyDigests?: ReadonlyArray<{ id: string; digest: string }>;
  allowWebhookEndpointChange?: boolean;
  /** A disabled partner's keys are refused. */
  disabled?: boolean;
}

/** Looks API keys up by their SHA-256, so the lookup's timing says nothing about the keys themselves. */
export class PartnerKeys {
  readonly #byDigest = new Map<string, { digest: Buffer; access: PartnerAccess }>();
  readonly #onUsed: (keyId: string) => void;

  /** `channels` marked disabled are out of every key's reach; `onUsed` hears of each key accepted. */
  constructor(
    partners: readonly KeyedPartner[],
    channels: ReadonlyArray<{ senderKey: string; partner: string; disabled?: boolean }>,
    onUsed: (keyId: string) => void = () => {},
  ) {
    this.#onUsed = onUsed;
    for (const partner of partners) {
      if (partner.disabled) continue;
      const own = new Set(
        channels.filter((c) => c.partner === partner.id && !c.disabled).map((c) => c.senderKey),
      );
      const requireChannel = (senderKey: string) => {
        if (!own.has(senderKey))
          throw new TalkgateError("-406", `unknown sender_key ${JSON.stringify(senderKey)}`);
      };
      const keys = [
        ...(partner.apiKeys ?? []).map((key) => {
          const hex = digest(key).toString("hex");
          return { id: hex.slice(0, 16), digest: hex };
        }),
        ...(partner.keyDigests ?? []),
      ];
      for (const key of keys) {
        const access: PartnerAccess = {
          partnerId: partner.id,
          keyId: key.id,
          senderKeys: [...own],
          allowWebhookEndpointChange: partner.allowWebhookEndpointChange ?? false,
          requireChannel,
        };
        this.#byDigest.set(key.digest, { digest: Buffer.from(key.digest, "hex"), access });
      }
    }
  }

  /** The keys of a runtime configuration snapshot: every live key of every enabled partner. */
  static fromSnapshot(snapshot: ConfigSnapshot, onUsed?: (keyId: string) => void): PartnerKeys {
    const keys = [...snapshot.keys.values()];
    return new PartnerKeys(
      [...snapshot.partners.values()].map((partner) => ({
        ...partner,
        keyDigests: keys.filter((k) => k.partnerId === partner.id),
      })),
      [...snapshot.channels.values()],
      onUsed,
    );
  }

  /** The access of the key in an `Authorization: Bearer <key>` header; -401 when missing or unknown. */
  authenticate(authorization: string | undefined): PartnerAccess {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
    if (!match?.[1])
      throw new TalkgateError("-401", "missing partner API key: send Authorization: Bearer <key>");
    const given = digest(match[1]);
    const entry = this.#byDigest.get(given.toString("hex"));
    if (!entry || !timingSafeEqual(entry.digest, given))
      throw new TalkgateError("-401", "partner API key not valid");
    this.#onUsed(entry.access.keyId);
    return entry.access;
  }
}
