// Use cases of the partner API that act on a chat or a channel at LINE: loading, read, profile, directory, webhook URL.
import { TalkgateError } from "../core/errors.ts";
import { asObject } from "../core/line-event.ts";
import { lineValue, requireToken } from "./line-answers.ts";
import type { Clock, LineApi, LineProfile } from "./ports.ts";
import type { Directory, EventLog } from "./store.ts";

export interface ChatDeps {
  store: EventLog & Directory;
  line: LineApi;
  clock: Clock;
}

/** Shows LINE's loading animation in a user's 1:1 chat for `seconds` (5–60, in steps of 5). */
export async function showLoading(
  deps: ChatDeps,
  senderKey: string,
  userId: string,
  seconds: number,
): Promise<void> {
  if (!Number.isInteger(seconds) || seconds < 5 || seconds > 60 || seconds % 5 !== 0) {
    throw new TalkgateError("-405", "seconds: must be 5, 10, 15 … 60");
  }
  requireToken(deps.line, senderKey);
  lineValue(await deps.line.showLoading(senderKey, userId, seconds));
}

/** Marks the user's messages as read up to the message with this serial_number (its markAsReadToken). */
export async function markAsRead(deps: ChatDeps, senderKey: string, serialNumber: string): Promise<void> {
  const message = await deps.store.findMessage(senderKey, serialNumber);
  if (!message) throw new TalkgateError("-508", `no message ${serialNumber} in channel ${senderKey}`);
  const token = asObject(message.event.message)?.markAsReadToken;
  if (typeof token !== "string") {
    throw new TalkgateError(
      "-509",
      `message ${serialNumber} carries no markAsReadToken (LINE gives one to messages only)`,
    );
  }
  requireToken(deps.line, senderKey);
  lineValue(await deps.line.markAsRead(senderKey, token));
}

/** The user's LINE profile with talkgate's directory fields. */
export async function userProfile(
  deps: ChatDeps,
  senderKey: string,
  userId: string,
): Promise<LineProfile & { e164: string; agreeType: number }> {
  requireToken(deps.line, senderKey);
  const [profile, entry] = await Promise.all([
    deps.line.getProfile(senderKey, { type: "user" }, userId),
    deps.store.getDirectoryEntry(senderKey, userId),
  ]);
  return { ...lineValue(profile), e164: entry?.e164 ?? "", agreeType: entry?.agreeType ?? 0 };
}

/** Sets a user's directory entry, carried as e164 and agree_type in later payloads. */
export async function setUser(
  deps: ChatDeps,
  senderKey: string,
  userId: string,
  fields: { e164?: string | undefined; agreeType?: number | undefined },
): Promise<void> {
  await deps.store.setDirectoryEntry(senderKey, userId, fields, deps.clock.now());
}

/** The channel's webhook URL at LINE. */
export async function webhookEndpoint(
  deps: ChatDeps,
  senderKey: string,
): Promise<{ endpoint: string; active: boolean }> {
  requireToken(deps.line, senderKey);
  return lineValue(await deps.line.getWebhookEndpoint(senderKey));
}

/**
 * Sets the channel's webhook URL at LINE (HTTPS, as LINE requires). Answers the URL it replaced (null
 * when LINE would not say), for the record of who moved a channel's webhooks where.
 */
export async function setWebhookEndpoint(
  deps: ChatDeps,
  senderKey: string,
  endpoint: string,
): Promise<{ previous: string | null }> {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    // reported below
  }
  if (url?.protocol !== "https:") throw new TalkgateError("-405", "endpoint: must be an https:// URL");
  requireToken(deps.line, senderKey);
  const before = await deps.line.getWebhookEndpoint(senderKey);
  lineValue(await deps.line.setWebhookEndpoint(senderKey, endpoint));
  return { previous: before.ok ? before.value.endpoint : null };
}
