// user_name for payloads: LINE display names, looked up once, cached, and never waited on for long.
import type { ChatRef } from "../core/line-event.ts";
import type { Clock, LineApi } from "./ports.ts";

export interface UserNameOptions {
  /** How long a payload may wait for a lookup in flight before it goes with "" (SPEC §3: 1.5 s). */
  waitMs: number;
  /** How long a found name is kept. */
  ttlMs: number;
  /** How long "LINE will not say" (404 or failure) is kept before asking again. */
  missTtlMs: number;
  /** Most names kept in memory; the oldest go first. */
  maxEntries: number;
}

export const DEFAULT_USER_NAME_OPTIONS: UserNameOptions = {
  waitMs: 1_500,
  ttlMs: 24 * 60 * 60_000,
  missTtlMs: 10 * 60_000,
  maxEntries: 100_000,
};

interface Entry {
  name: Promise<string>;
  /** The name once the lookup has settled, so that cached names cost no promise or timer. */
  settled?: string;
  expiresAt: number;
}

/** Resolves display names through the LINE profile APIs, with an in-memory cache and bounded waits. */
export class UserNames {
  readonly #line: LineApi;
  readonly #clock: Clock;
  readonly #options: UserNameOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(line: LineApi, clock: Clock, options: UserNameOptions) {
    this.#line = line;
    this.#clock = clock;
    this.#options = options;
  }

  /** Starts a lookup (if none is cached or in flight) so the name is ready when the payload is built. */
  prefetch(senderKey: string, chat: ChatRef, userId: string): void {
    this.#entry(senderKey, chat, userId);
  }

  /** The display name, or "" when LINE will not say or does not answer within the wait bound. */
  async resolve(senderKey: string, chat: ChatRef, userId: string): Promise<string> {
    const entry = this.#entry(senderKey, chat, userId);
    if (entry.settled !== undefined) return entry.settled;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(""), this.#options.waitMs);
    });
    try {
      return await Promise.race([entry.name, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Forgets a user's cached names in a channel (erasure): the next payload asks LINE again. */
  forget(senderKey: string, userId: string): void {
    for (const key of this.#entries.keys())
      if (key.startsWith(`${senderKey}/`) && key.endsWith(`/${userId}`)) this.#entries.delete(key);
  }

  // The cached entry, or a new one whose lookup starts now.
  #entry(senderKey: string, chat: ChatRef, userId: string): Entry {
    const key = `${senderKey}/${chat.type === "user" ? "user" : chat.id}/${userId}`;
    const now = this.#clock.now();
    const cached = this.#entries.get(key);
    if (cached && cached.expiresAt > now) return cached;

    const entry: Entry = { name: Promise.resolve(""), expiresAt: now + this.#options.ttlMs };
    const miss = () => {
      entry.expiresAt = this.#clock.now() + this.#options.missTtlMs;
      entry.settled = "";
      return "";
    };
    entry.name = this.#line.getProfile(senderKey, chat, userId).then((result) => {
      if (!result.ok) return miss();
      entry.settled = result.value.displayName;
      return entry.settled;
    }, miss);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return entry;
  }
}
