// Secrets at rest (SPEC §10): AES-256-GCM under TALKGATE_SECRET_KEY, each sealed value bound to where it is kept.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from "node:crypto";

const PREFIX = "tgs1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A key that seals secrets; `id` names it (the start of its SHA-256) without revealing it. */
export interface SecretKey {
  id: string;
  key: KeyObject;
}

/** Reads a key given as standard base64 of 32 bytes (`openssl rand -base64 32`); throws naming `name`. */
export function parseSecretKey(name: string, value: string): SecretKey {
  const bytes = Buffer.from(value.trim(), "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value.trim()) || bytes.length !== KEY_BYTES)
    throw new Error(
      `${name} must be ${KEY_BYTES} random bytes in standard base64 (make one with: openssl rand -base64 32)`,
    );
  return { id: createHash("sha256").update(bytes).digest("hex").slice(0, 8), key: createSecretKey(bytes) };
}

/** Whether a stored value is a sealed secret, and under which key. */
export function sealedKeyId(sealed: string): string | null {
  const [prefix, keyId] = sealed.split(".");
  return prefix === PREFIX && keyId ? keyId : null;
}

/**
 * Seals and opens secrets. `context` (e.g. `channel/1656168303/channelSecret`) is authenticated with each
 * value, so a sealed value moved to another row or field does not open.
 */
export class SecretBox {
  readonly #current: SecretKey;
  readonly #keys: Map<string, SecretKey>;

  /** Seals with `current`; opens what `current` or any of `previous` sealed (key rotation). */
  constructor(current: SecretKey, previous: readonly SecretKey[] = []) {
    this.#current = current;
    this.#keys = new Map([...previous, current].map((key) => [key.id, key]));
  }

  get keyId(): string {
    return this.#current.id;
  }

  /** Whether `sealed` was sealed under a key this box can open. */
  canOpen(sealed: string): boolean {
    const keyId = sealedKeyId(sealed);
    return keyId !== null && this.#keys.has(keyId);
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#current.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return [PREFIX, this.#current.id, iv.toString("base64url"), body.toString("base64url")].join(".");
  }

  /** The secret sealed in `sealed`; throws when the key is unknown or the value was altered or moved. */
  open(sealed: string, context: string): string {
    const [prefix, keyId, iv, body] = sealed.split(".");
    const key = keyId ? this.#keys.get(keyId) : undefined;
    if (prefix !== PREFIX || !key || !iv || !body)
      throw new Error(`a secret of ${context} was sealed under key ${keyId ?? "?"}, which is not given`);
    const bytes = Buffer.from(body, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", key.key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      throw new Error(
        `a secret of ${context} does not open with key ${key.id}: altered, or sealed elsewhere`,
      );
    }
  }
}
