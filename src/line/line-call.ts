// One call through `@line/bot-sdk`, bounded in time, its outcome a LineResult (never an exception) with LINE's
// request id: shared by the Messaging API client and the channel access token client.
import type { LineResult } from "../app/ports.ts";

type Sdk = typeof import("@line/bot-sdk");
// The SDK (its index loads every LINE API client, ~380 modules) loads on the first call, not at start.
let sdk: Promise<Sdk> | undefined;
export const loadSdk = (): Promise<Sdk> => {
  sdk ??= import("@line/bot-sdk");
  return sdk;
};

export interface CallOptions {
  /** Names the call for metrics. */
  endpoint: string;
  timeoutMs: number;
  /** Told of the call's HTTP status (null: LINE not reached), for metrics. */
  onCall?: ((endpoint: string, status: number | null) => void) | undefined;
}

/** Runs `call`, giving up after `timeoutMs`; a LINE error answer becomes `{ok: false, status, reason}`. */
export async function settleLineCall<T>(
  call: () => Promise<{ httpResponse: Response; body: T }>,
  options: CallOptions,
): Promise<LineResult<T>> {
  const { HTTPFetchError } = await loadSdk();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LineTimeout()), options.timeoutMs);
  });
  try {
    const { httpResponse, body } = await Promise.race([call(), timeout]);
    options.onCall?.(options.endpoint, httpResponse.status);
    return { ok: true, value: body, requestId: httpResponse.headers.get("x-line-request-id") };
  } catch (error) {
    options.onCall?.(options.endpoint, error instanceof HTTPFetchError ? error.status : null);
    if (!(error instanceof HTTPFetchError)) {
      const reason = error instanceof LineTimeout ? "timed out" : describeNetworkError(error);
      return { ok: false, status: null, reason };
    }
    const answer = parseJson(error.body);
    const accepted = error.status === 409 ? error.headers.get("x-line-accepted-request-id") : null;
    return {
      ok: false,
      status: error.status,
      reason: lineReason(answer) ?? `LINE answered ${error.status}`,
      requestId: error.headers.get("x-line-request-id"),
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

class LineTimeout extends Error {}

// The Messaging API says why in `message`; the OAuth endpoints in `error` and `error_description`.
function lineReason(answer: Record<string, unknown> | null): string | undefined {
  if (typeof answer?.message === "string") return answer.message;
  if (typeof answer?.error !== "string") return undefined;
  return typeof answer.error_description === "string"
    ? `${answer.error}: ${answer.error_description}`
    : answer.error;
}

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
