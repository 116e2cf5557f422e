// The LINE Messaging API through the official SDK's clients, one per channel, answering values not exceptions.
import type { messagingApi } from "@line/bot-sdk";
import Agent from "undici/lib/dispatcher/agent.js";
import type {
  ContentResult,
  LineApi,
  LineProfile,
  LineResult,
  SentMessages,
  TranscodingStatus,
  WebhookTest,
} from "../app/ports.ts";
import type { ChatRef } from "../core/line-event.ts";
import { releaseChunk } from "./release-chunk.ts";

export interface LineChannelCredentials {
  senderKey: string;
  channelAccessToken: string;
}

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

// A channel's SDK clients, made at its first call.
interface Channel {
  api: messagingApi.MessagingApiClient;
  blob: messagingApi.MessagingApiBlobClient;
}

type Sdk = typeof import("@line/bot-sdk");
// The SDK (its index loads every LINE API client, ~380 modules) loads on the first call, not at start.
let sdk: Promise<Sdk> | undefined;
const loadSdk = (): Promise<Sdk> => {
  sdk ??= import("@line/bot-sdk");
  return sdk;
};

type Undici = typeof import("undici");
// undici's request() comes with its index, which loads on the first content download; the Agent loads at start.
let undici: Promise<Undici> | undefined;
const loadUndici = (): Promise<Undici> => {
  undici ??= import("undici");
  return undici;
};

/** {@link LineApi} over `@line/bot-sdk`, pointed at LINE or the emulator. */
export class LineClient implements LineApi {
  readonly #tokens = new Map<string, string>();
  readonly #channels = new Map<string, Channel>();
  readonly #options: LineClientOptions;
  // Content downloads bypass the SDK's blob client: it cannot bound a stalled body or cancel a download.
  readonly #contentAgent: Agent;

  constructor(channels: readonly LineChannelCredentials[], options: LineClientOptions) {
    this.#options = options;
    this.#contentAgent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
    this.setChannels(channels);
  }

  /** The channels and tokens calls use from now on (a changed token gets new clients). */
  setChannels(channels: readonly LineChannelCredentials[]): void {
    const next = new Map(channels.map((c) => [c.senderKey, c.channelAccessToken]));
    for (const [senderKey, token] of this.#tokens)
      if (next.get(senderKey) !== token) this.#channels.delete(senderKey);
    this.#tokens.clear();
    for (const [senderKey, token] of next) this.#tokens.set(senderKey, token);
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
    const token = this.#tokens.get(senderKey);
    if (token === undefined) return { kind: "failed", status: null, reason: "no channel access token" };
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

  // Runs one SDK call with a time bound and turns every outcome into a LineResult with LINE's request id.
  async #call<T>(
    endpoint: string,
    senderKey: string,
    call: (channel: Channel) => Promise<{ httpResponse: Response; body: T }>,
  ): Promise<LineResult<T>> {
    const token = this.#tokens.get(senderKey);
    if (token === undefined) return { ok: false, status: null, reason: "no channel access token" };
    const { HTTPFetchError, messagingApi } = await loadSdk();
    let channel = this.#channels.get(senderKey);
    if (!channel) {
      channel = {
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
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LineTimeout()), this.#options.timeoutMs);
    });
    try {
      const { httpResponse, body } = await Promise.race([call(channel), timeout]);
      this.#options.onCall?.(endpoint, httpResponse.status);
      return { ok: true, value: body, requestId: httpResponse.headers.get("x-line-request-id") };
    } catch (error) {
      this.#options.onCall?.(endpoint, error instanceof HTTPFetchError ? error.status : null);
      if (!(error instanceof HTTPFetchError)) {
        const reason = error instanceof LineTimeout ? "timed out" : describeNetworkError(error);
        return { ok: false, status: null, reason };
      }
      const answer = parseJson(error.body);
      const requestId = error.headers.get("x-line-request-id");
      const accepted = error.status === 409 ? error.headers.get("x-line-accepted-request-id") : null;
      return {
        ok: false,
        status: error.status,
        reason: typeof answer?.message === "string" ? answer.message : `LINE answered ${error.status}`,
        requestId,
        ...(accepted !== null
          ? {
              accepted: {
                requestId: accepted,
                sentMessages: Array.isArray(answer?.sentMessages) ? answer.sentMessages : [],
              },
            }
          : {}),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

class LineTimeout extends Error {}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  if (typeof cause === "string") return cause;
  return error instanceof Error ? error.message : String(error);
}
