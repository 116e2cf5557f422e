// Partner API keys: `Authorization: Bearer <key>`, checked in constant time, each key confined to its partner's channels.
import { createHash, timingSafeEqual } from "node:crypto";
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

/** Looks API keys up by their SHA-256, so the lookup's timing says nothing about the keys themselves. */
export class PartnerKeys {
  readonly #byDigest = new Map<string, { digest: Buffer; access: PartnerAccess }>();

  constructor(
    partners: ReadonlyArray<{ id: string; apiKeys: readonly string[]; allowWebhookEndpointChange?: boolean }>,
    channels: ReadonlyArray<{ senderKey: string; partner: string }>,
  ) {
    for (const partner of partners) {
      const own = new Set(channels.filter((c) => c.partner === partner.id).map((c) => c.senderKey));
      const requireChannel = (senderKey: string) => {
        if (!own.has(senderKey))
          throw new TalkgateError("-406", `unknown sender_key ${JSON.stringify(senderKey)}`);
      };
      for (const key of partner.apiKeys) {
        const hash = digest(key);
        const keyId = hash.toString("hex").slice(0, 16);
        const access: PartnerAccess = {
          partnerId: partner.id,
          keyId,
          senderKeys: [...own],
          allowWebhookEndpointChange: partner.allowWebhookEndpointChange ?? false,
          requireChannel,
        };
        this.#byDigest.set(hash.toString("hex"), { digest: hash, access });
      }
    }
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
    return entry.access;
  }
}
