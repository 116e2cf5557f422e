// The LINE Messaging API through the official SDK's clients, one per channel, answering values not exceptions.
import { HTTPFetchError, messagingApi } from "@line/bot-sdk";
import type { LineApi, LineProfile, LineResult } from "../app/ports.ts";
import type { ChatRef } from "../core/line-event.ts";

export interface LineChannelCredentials {
  senderKey: string;
  channelAccessToken: string;
}

/** {@link LineApi} over `@line/bot-sdk`, pointed at `apiBaseUrl` (LINE, or the emulator). */
export class LineClient implements LineApi {
  readonly #clients = new Map<string, messagingApi.MessagingApiClient>();

  constructor(channels: readonly LineChannelCredentials[], options: { apiBaseUrl: string }) {
    for (const channel of channels) {
      this.#clients.set(
        channel.senderKey,
        new messagingApi.MessagingApiClient({
          channelAccessToken: channel.channelAccessToken,
          baseURL: options.apiBaseUrl,
        }),
      );
    }
  }

  getProfile(senderKey: string, chat: ChatRef, userId: string): Promise<LineResult<LineProfile>> {
    return this.#call(senderKey, (client) => {
      if (chat.type === "group") return client.getGroupMemberProfile(chat.id, userId);
      if (chat.type === "room") return client.getRoomMemberProfile(chat.id, userId);
      return client.getProfile(userId);
    });
  }

  async #call<T>(
    senderKey: string,
    call: (client: messagingApi.MessagingApiClient) => Promise<T>,
  ): Promise<LineResult<T>> {
    const client = this.#clients.get(senderKey);
    if (!client) return { ok: false, status: null, reason: "no channel access token" };
    try {
      return { ok: true, value: await call(client) };
    } catch (error) {
      if (error instanceof HTTPFetchError)
        return { ok: false, status: error.status, reason: `LINE answered ${error.status}` };
      return { ok: false, status: null, reason: error instanceof Error ? error.message : String(error) };
    }
  }
}
