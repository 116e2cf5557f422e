// LINE's channel access token API through the official SDK's ChannelAccessTokenClient: issue (v2.1 with a signed
// assertion, stateless, short-lived) and revoke, answering values not exceptions.
import type { channelAccessToken } from "@line/bot-sdk";
import type { IssuedToken, LineResult, LineTokenApi, TokenChannel } from "../app/ports.ts";
import { type ManagedCredential, type RevocableTokenType, signAssertion } from "../core/access-token.ts";
import { loadSdk, settleLineCall } from "./line-call.ts";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export interface LineTokenClientOptions {
  apiBaseUrl: string;
  timeoutMs: number;
  onCall?: (endpoint: string, status: number | null) => void;
}

/** {@link LineTokenApi} over `@line/bot-sdk`, pointed at LINE or the emulator. */
export class LineTokenClient implements LineTokenApi {
  readonly #options: LineTokenClientOptions;
  #client: channelAccessToken.ChannelAccessTokenClient | undefined;

  constructor(options: LineTokenClientOptions) {
    this.#options = options;
  }

  async issue(
    channel: TokenChannel,
    credential: ManagedCredential,
    now: number,
  ): Promise<LineResult<IssuedToken>> {
    const client = await this.#sdk();
    const { senderKey, channelSecret } = channel;
    if (credential.type === "v2.1") {
      const assertion = signAssertion({
        channelId: senderKey,
        kid: credential.kid,
        privateKey: credential.privateKey,
        now,
        tokenTtlSeconds: credential.ttlSeconds,
      });
      const result = await this.#settle(() =>
        client.issueChannelTokenByJWTWithHttpInfo("client_credentials", JWT_BEARER, assertion),
      );
      return result.ok
        ? {
            ...result,
            value: {
              token: result.value.access_token,
              expiresInSeconds: result.value.expires_in,
              keyId: result.value.key_id,
            },
          }
        : result;
    }
    const result = await this.#settle(() =>
      credential.type === "stateless"
        ? client.issueStatelessChannelTokenByClientSecretWithHttpInfo(senderKey, channelSecret)
        : client.issueChannelTokenWithHttpInfo("client_credentials", senderKey, channelSecret),
    );
    return result.ok
      ? {
          ...result,
          value: { token: result.value.access_token, expiresInSeconds: result.value.expires_in, keyId: null },
        }
      : result;
  }

  async revoke(channel: TokenChannel, type: RevocableTokenType, token: string): Promise<LineResult<null>> {
    const client = await this.#sdk();
    const result = await this.#settle(() =>
      type === "v2.1"
        ? client.revokeChannelTokenByJWTWithHttpInfo(channel.senderKey, channel.channelSecret, token)
        : client.revokeChannelTokenWithHttpInfo(token),
    );
    return result.ok ? { ...result, value: null } : result;
  }

  #settle<T>(call: () => Promise<{ httpResponse: Response; body: T }>): Promise<LineResult<T>> {
    return settleLineCall(call, {
      endpoint: "token",
      timeoutMs: this.#options.timeoutMs,
      onCall: this.#options.onCall,
    });
  }

  async #sdk(): Promise<channelAccessToken.ChannelAccessTokenClient> {
    const { channelAccessToken } = await loadSdk();
    this.#client ??= new channelAccessToken.ChannelAccessTokenClient({ baseURL: this.#options.apiBaseUrl });
    return this.#client;
  }
}
