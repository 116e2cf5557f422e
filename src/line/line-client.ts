// The LINE Messaging API through the official SDK's clients, one per channel, answering values not exceptions.
import { HTTPFetchError, messagingApi } from "@line/bot-sdk";
import { Agent, request } from "undici";
import type { ContentResult, LineApi, LineProfile, LineResult, TranscodingStatus } from "../app/ports.ts";
import type { ChatRef } from "../core/line-event.ts";

export interface LineChannelCredentials {
  senderKey: string;
  channelAccessToken: string;
}

export interface LineClientOptions {
  apiBaseUrl: string;
  dataApiBaseUrl: string;
  /** Longest wait for content headers, and for the next chunk of a body. */
  contentTimeoutMs: number;
}

interface Channel {
  token: string;
  api: messagingApi.MessagingApiClient;
  blob: messagingApi.MessagingApiBlobClient;
}

/** {@link LineApi} over `@line/bot-sdk`, pointed at LINE or the emulator. */
export class LineClient implements LineApi {
  readonly #channels = new Map<string, Channel>();
  readonly #options: LineClientOptions;
  // Content downloads bypass the SDK's blob client: it cannot bound a stalled body or cancel a download.
  readonly #contentAgent: Agent;

  constructor(channels: readonly LineChannelCredentials[], options: LineClientOptions) {
    this.#options = options;
    this.#contentAgent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
    for (const { senderKey, channelAccessToken: token } of channels) {
      this.#channels.set(senderKey, {
        token,
        api: new messagingApi.MessagingApiClient({ channelAccessToken: token, baseURL: options.apiBaseUrl }),
        blob: new messagingApi.MessagingApiBlobClient({
          channelAccessToken: token,
          baseURL: options.dataApiBaseUrl,
        }),
      });
    }
  }

  getProfile(senderKey: string, chat: ChatRef, userId: string): Promise<LineResult<LineProfile>> {
    return this.#call(senderKey, ({ api }) => {
      if (chat.type === "group") return api.getGroupMemberProfile(chat.id, userId);
      if (chat.type === "room") return api.getRoomMemberProfile(chat.id, userId);
      return api.getProfile(userId);
    });
  }

  getTranscoding(senderKey: string, messageId: string): Promise<LineResult<TranscodingStatus>> {
    return this.#call(senderKey, async ({ blob }) => {
      const { status } = await blob.getMessageContentTranscodingByMessageId(messageId);
      return status as TranscodingStatus;
    });
  }

  async getContent(senderKey: string, messageId: string): Promise<ContentResult> {
    const channel = this.#channels.get(senderKey);
    if (!channel) return { kind: "failed", status: null, reason: "no channel access token" };
    const url = new URL(
      `/v2/bot/message/${encodeURIComponent(messageId)}/content`,
      this.#options.dataApiBaseUrl,
    );
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, {
        headers: { authorization: `Bearer ${channel.token}` },
        dispatcher: this.#contentAgent,
        headersTimeout: this.#options.contentTimeoutMs,
        bodyTimeout: this.#options.contentTimeoutMs,
      });
    } catch (error) {
      return { kind: "failed", status: null, reason: (error as { code?: string }).code ?? String(error) };
    }
    const { statusCode: status, headers, body } = response;
    if (status === 200) {
      const length = Number(headers["content-length"]);
      const type = headers["content-type"];
      return {
        kind: "ready",
        contentType: typeof type === "string" ? type : "application/octet-stream",
        length: Number.isSafeInteger(length) && length >= 0 ? length : null,
        body,
      };
    }
    await body.dump();
    if (status === 202) return { kind: "not-ready" };
    if (status === 404 || status === 410) return { kind: "gone", status };
    return { kind: "failed", status, reason: `LINE answered ${status}` };
  }

  async close(): Promise<void> {
    await this.#contentAgent.close();
  }

  async #call<T>(senderKey: string, call: (channel: Channel) => Promise<T>): Promise<LineResult<T>> {
    const channel = this.#channels.get(senderKey);
    if (!channel) return { ok: false, status: null, reason: "no channel access token" };
    try {
      return { ok: true, value: await call(channel) };
    } catch (error) {
      if (error instanceof HTTPFetchError)
        return { ok: false, status: error.status, reason: `LINE answered ${error.status}` };
      return { ok: false, status: null, reason: error instanceof Error ? error.message : String(error) };
    }
  }
}
