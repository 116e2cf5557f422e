// The LINE Messaging API through the official SDK's clients, one per channel and token, answering values not
// exceptions. A managed token LINE refuses (401) is renewed once and the call made once more (SPEC §11).
import type { messagingApi } from "@line/bot-sdk";
import Agent from "undici/lib/dispatcher/agent.js";
import type {
  ChannelTokenSource,
  ContentResult,
  LineApi,
  LineProfile,
  LineResult,
  SentMessages,
  TranscodingStatus,
  WebhookTest,
} from "../app/ports.ts";
import type { ChatRef } from "../core/line-event.ts";
import { loadSdk, settleLineCall } from "./line-call.ts";
import { releaseChunk } from "./release-chunk.ts";

export interface LineClientOptions {
  apiBaseUrl: string;
  dataApiBaseUrl: string;
  /** Longest wait for content headers, and for the next chunk of a body. */
  contentTimeoutMs: number;
  /** Longest wait for any other LINE API answer. */
  timeoutMs: number;
  /** Told of every call's endpoint and HTTP status (null: LINE not reached), for metrics. */
  onCall?: (endpoint: string, status: number | null) => void;
}

// A channel's SDK clients for one token, made at the first call with it.
interface Channel {
  token: string;
  api: messagingApi.MessagingApiClient;
  blob: messagingApi.MessagingApiBlobClient;
}

type Undici = typeof import("undici");
// undici's request() comes with its index, which loads on the first content download; the Agent loads at start.
let undici: Promise<Undici> | undefined;
const loadUndici = (): Promise<Undici> => {
  undici ??= import("undici");
  return undici;
};

/** {@link LineApi} over `@line/bot-sdk`, pointed at LINE or the emulator. */
export class LineClient implements LineApi {
  readonly #tokens: ChannelTokenSource;
  readonly #channels = new Map<string, Channel>();
  readonly #options: LineClientOptions;
  // Content downloads bypass the SDK's blob client: it cannot bound a stalled body or cancel a download.
  readonly #contentAgent: Agent;

  constructor(tokens: ChannelTokenSource, options: LineClientOptions) {
    this.#tokens = tokens;
    this.#options = options;
    this.#contentAgent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  }

  hasToken(senderKey: string): boolean {
    return this.#tokens.has(senderKey);
  }

  getProfile(senderKey: string, chat: ChatRef, userId: string): Promise<LineResult<LineProfile>> {
    return this.#call("profile", senderKey, ({ api }) => {
      if (chat.type === "group") return api.getGroupMemberProfileWithHttpInfo(chat.id, userId);
      if (chat.type === "room") return api.getRoomMemberProfileWithHttpInfo(chat.id, userId);
      return api.getProfileWithHttpInfo(userId);
    });
  }

  async getTranscoding(senderKey: string, messageId: string): Promise<LineResult<TranscodingStatus>> {
    const result = await this.#call("transcoding", senderKey, ({ blob }) =>
      blob.getMessageContentTranscodingByMessageIdWithHttpInfo(messageId),
    );
    return result.ok ? { ...result, value: result.value.status as TranscodingStatus } : result;
  }

  reply(
    senderKey: string,
    replyToken: string,
    messages: unknown[],
    notificationDisabled: boolean,
  ): Promise<LineResult<SentMessages>> {
    return this.#call("reply", senderKey, ({ api }) =>
      api.replyMessageWithHttpInfo({
        replyToken,
        messages: messages as messagingApi.Message[],
        notificationDisabled,
      }),
    );
  }

  push(
    senderKey: string,
    to: string,
    messages: unknown[],
    notificationDisabled: boolean,
    retryKey: string,
  ): Promise<LineResult<SentMessages>> {
    return this.#call("push", senderKey, ({ api }) =>
      api.pushMessageWithHttpInfo(
        { to, messages: messages as messagingApi.Message[], notificationDisabled },
        retryKey,
      ),
    );
  }

  async showLoading(senderKey: string, chatId: string, seconds: number): Promise<LineResult<null>> {
    const result = await this.#call("loading", senderKey, ({ api }) =>
      api.showLoadingAnimationWithHttpInfo({ chatId, loadingSeconds: seconds }),
    );
    return result.ok ? { ...result, value: null } : result;
  }

  async markAsRead(senderKey: string, markAsReadToken: string): Promise<LineResult<null>> {
    const result = await this.#call("markAsRead", senderKey, ({ api }) =>
      api.markMessagesAsReadByTokenWithHttpInfo({ markAsReadToken }),
    );
    return result.ok ? { ...result, value: null } : result;
  }

  async getWebhookEndpoint(senderKey: string): Promise<LineResult<{ endpoint: string; active: boolean }>> {
    const result = await this.#call("webhookEndpoint", senderKey, ({ api }) =>
      api.getWebhookEndpointWithHttpInfo(),
    );
    return result.ok
      ? { ...result, value: { endpoint: result.value.endpoint, active: result.value.active } }
      : result;
  }

  async setWebhookEndpoint(senderKey: string, endpoint: string): Promise<LineResult<null>> {
    const result = await this.#call("webhookEndpoint", senderKey, ({ api }) =>
      api.setWebhookEndpointWithHttpInfo({ endpoint }),
    );
    return result.ok ? { ...result, value: null } : result;
  }

  async testWebhookEndpoint(senderKey: string, endpoint?: string): Promise<LineResult<WebhookTest>> {
    const result = await this.#call("webhookTest", senderKey, ({ api }) =>
      api.testWebhookEndpointWithHttpInfo(endpoint === undefined ? {} : { endpoint }),
    );
    if (!result.ok) return result;
    const { success, timestamp, statusCode, reason, detail } = result.value;
    return {
      ...result,
      value: {
        success: success ?? false,
        timestamp: new Date(timestamp).toISOString(),
        statusCode,
        reason,
        detail,
      },
    };
  }

  async getContent(senderKey: string, messageId: string): Promise<ContentResult> {
    const current = await this.#tokens.token(senderKey);
    if (!current.ok) return { kind: "failed", status: null, reason: current.reason };
    const first = await this.#download(messageId, current.token);
    if (first.kind !== "failed" || first.status !== 401) return first;
    const renewed = await this.#tokens.refused(senderKey, current.token);
    return renewed === null ? first : this.#download(messageId, renewed);
  }

  async #download(messageId: string, token: string): Promise<ContentResult> {
    const url = new URL(
      `/v2/bot/message/${encodeURIComponent(messageId)}/content`,
      this.#options.dataApiBaseUrl,
    );
    let response: Awaited<ReturnType<Undici["request"]>>;
    try {
      const { request } = await loadUndici();
      response = await request(url, {
        headers: { authorization: `Bearer ${token}` },
        dispatcher: this.#contentAgent,
        headersTimeout: this.#options.contentTimeoutMs,
        bodyTimeout: this.#options.contentTimeoutMs,
      });
    } catch (error) {
      this.#options.onCall?.("content", null);
      return { kind: "failed", status: null, reason: (error as { code?: string }).code ?? String(error) };
    }
    const { statusCode: status, headers, body } = response;
    this.#options.onCall?.("content", status);
    if (status === 200) {
      const length = Number(headers["content-length"]);
      const type = headers["content-type"];
      return {
        kind: "ready",
        contentType: typeof type === "string" ? type : "application/octet-stream",
        length: Number.isSafeInteger(length) && length >= 0 ? length : null,
        body,
        release: releaseChunk,
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

  // Runs one SDK call with the channel's token; a 401 to a managed token renews it and runs the call once more.
  async #call<T>(
    endpoint: string,
    senderKey: string,
    call: (channel: Channel) => Promise<{ httpResponse: Response; body: T }>,
  ): Promise<LineResult<T>> {
    const current = await this.#tokens.token(senderKey);
    if (!current.ok) return { ok: false, status: null, reason: current.reason, noToken: true };
    const first = await this.#callWith(endpoint, senderKey, current.token, call);
    if (first.ok || first.status !== 401) return first;
    const renewed = await this.#tokens.refused(senderKey, current.token);
    return renewed === null ? first : this.#callWith(endpoint, senderKey, renewed, call);
  }

  async #callWith<T>(
    endpoint: string,
    senderKey: string,
    token: string,
    call: (channel: Channel) => Promise<{ httpResponse: Response; body: T }>,
  ): Promise<LineResult<T>> {
    const { messagingApi } = await loadSdk();
    let channel = this.#channels.get(senderKey);
    if (channel?.token !== token) {
      channel = {
        token,
        api: new messagingApi.MessagingApiClient({
          channelAccessToken: token,
          baseURL: this.#options.apiBaseUrl,
        }),
        blob: new messagingApi.MessagingApiBlobClient({
          channelAccessToken: token,
          baseURL: this.#options.dataApiBaseUrl,
        }),
      };
      this.#channels.set(senderKey, channel);
    }
    const clients = channel;
    return settleLineCall(() => call(clients), {
      endpoint,
      timeoutMs: this.#options.timeoutMs,
      onCall: this.#options.onCall,
    });
  }
}
