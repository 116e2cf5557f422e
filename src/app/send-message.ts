// Use case: a partner answers a customer (POST /line/message/send) — once, never twice, at the lowest cost LINE allows.
import { createHash } from "node:crypto";
import { type ErrorCode, TalkgateError } from "../core/errors.ts";
import { validateMessages } from "../core/line-messages.ts";
import { lineFailure, requireToken } from "./line-answers.ts";
import type { Clock, LineApi, LineResult, Metrics } from "./ports.ts";
import type { InterruptedAttempt, SendAnswer, SendOutcome, Sends } from "./store.ts";

/** Who a send goes to: a user's 1:1 chat, a group or a room. */
export interface SendTarget {
  type: "user" | "group" | "room";
  id: string;
}

export interface SendRequest {
  partnerId: string;
  senderKey: string;
  target: SendTarget;
  /** The partner's own id of this send (≤ 30 characters): the same one is never sent twice. */
  serialNumber: string;
  messages: unknown[];
  notificationDisabled: boolean;
}

export interface SendOptions {
  /** A reply token older than this is not used (LINE's are good for about a minute). */
  replyTokenMaxAgeMs: number;
  /** Attempts at one LINE call when it fails with 5xx or does not answer. */
  attempts: number;
  /** Delay before the second attempt; doubles after each. */
  retryDelayMs: number;
  /** A send still marked in progress after this long was cut off (a crash) and may be resumed. */
  staleAfterMs: number;
}

export interface SendDeps {
  store: Sends;
  line: LineApi;
  clock: Clock;
  metrics: Pick<Metrics, "send">;
  options: SendOptions;
  /** Origins whose plain http:// media URLs may be sent (`talkgate dev` only: LINE itself never takes them). */
  httpMediaOrigins?: readonly string[];
  sleep?: (ms: number) => Promise<void>;
}

/** The push retry key of a send: a UUID derived from (sender_key, serial_number), the same on every retry. */
export function retryKeyOf(senderKey: string, serialNumber: string): string {
  const hex = createHash("sha256").update(`talkgate:${senderKey}:${serialNumber}`).digest("hex");
  // Shaped as a version-4/variant-1 UUID, which LINE requires of X-Line-Retry-Key.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Sends the messages: by reply when the conversation has a fresh unused reply token (free), else by
 * push with a retry key (metered). A repeat of a serial_number answers the first result without calling
 * LINE; a send interrupted by a timeout or a crash is resumed with the same retry key.
 */
export async function sendMessage(deps: SendDeps, request: SendRequest): Promise<SendAnswer> {
  const problems = validateMessages(request.messages, {
    chat: request.target.type,
    httpOrigins: deps.httpMediaOrigins,
  });
  if (problems.length > 0) {
    throw new TalkgateError("-405", problems.map((p) => `${p.field}: ${p.message}`).join("; "));
  }
  requireToken(deps.line, request.senderKey);
  const { store, clock } = deps;
  const conversation = `${request.target.type}:${request.target.id}`;
  const begun = await store.beginSend(
    {
      senderKey: request.senderKey,
      serialNumber: request.serialNumber,
      partnerId: request.partnerId,
      conversation,
      to: request.target.id,
      messages: JSON.stringify(request.messages),
      notificationDisabled: request.notificationDisabled,
      requestHash: hashOf(request),
    },
    clock.now(),
    deps.options,
  );
  switch (begun.kind) {
    case "done":
      return begun.answer;
    case "failed":
      throw new TalkgateError(begun.error.code as ErrorCode, begun.error.message);
    case "busy":
      throw new TalkgateError("-423", `serial_number ${request.serialNumber} is being sent right now`);
    case "conflict":
      throw new TalkgateError(
        "-405",
        `serial_number: ${request.serialNumber} was already used for other messages`,
      );
    case "standby":
      throw new TalkgateError(
        "-409",
        "the conversation is in standby: another module holds the chat, nothing was sent",
      );
  }

  const outcome = await deliver(deps, request, conversation, begun);
  deps.metrics.send("answer" in outcome ? outcome.answer.method : "failed");
  await store.finishSend(request.senderKey, request.serialNumber, outcome, clock.now());
  if ("answer" in outcome) return outcome.answer;
  const { code, message } = "error" in outcome ? outcome.error : outcome.unknown;
  throw new TalkgateError(code as ErrorCode, message);
}

const UNKNOWN = {
  code: "-424",
  message:
    "an earlier attempt of this send was cut off after its reply went to LINE, and LINE no longer says " +
    "whether it delivered it (the reply token has expired); it is not sent again",
};

/**
 * Sends by reply or push. Each attempt is recorded before it goes out, so that a repeat after a
 * crash or a timeout finishes it the same way: a push with the same retry key (LINE answers 409 if it
 * took it), a reply with the same token (LINE calls a token it took "invalid").
 */
async function deliver(
  deps: SendDeps,
  request: SendRequest,
  conversation: string,
  { replyToken, interrupted }: { replyToken: string | null; interrupted: InterruptedAttempt | null },
): Promise<SendOutcome> {
  const { store } = deps;
  if (interrupted?.method === "reply") {
    const replied = await reply(deps, request, interrupted.token, interrupted.tokenAt, true);
    return replied === INVALID_TOKEN ? { unknown: UNKNOWN } : replied; // (resumed: never INVALID_TOKEN)
  }
  if (!interrupted && replyToken) {
    const claimed = await store.claimReplyToken(
      request.senderKey,
      conversation,
      replyToken,
      request.serialNumber,
    );
    if (claimed) {
      const replied = await reply(deps, request, replyToken, deps.clock.now(), false);
      if (replied !== INVALID_TOKEN) return replied;
    }
  }
  await store.notePush(request.senderKey, request.serialNumber);
  const { senderKey, messages, notificationDisabled } = request;
  const retryKey = retryKeyOf(senderKey, request.serialNumber);
  const pushed = await withRetries(deps, () =>
    deps.line.push(senderKey, request.target.id, messages, notificationDisabled, retryKey),
  );
  if (pushed.ok) {
    return {
      answer: {
        method: "push",
        sentMessages: pushed.value.sentMessages,
        requestId: pushed.requestId ?? null,
      },
    };
  }
  // 409: this retry key was accepted before (an attempt that timed out, or a crash): it is sent.
  if (pushed.accepted) {
    return {
      answer: {
        method: "push",
        sentMessages: pushed.accepted.sentMessages,
        requestId: pushed.accepted.requestId,
      },
    };
  }
  return { error: toError(pushed), interrupted: isRetryable(pushed) };
}

// A first reply LINE refused for its token: nothing was sent, push instead.
const INVALID_TOKEN = Symbol("invalid reply token");

/**
 * Replies with `token`. "Invalid reply token" after an attempt that may have reached LINE means LINE
 * took that attempt — while the token is young enough that it cannot simply have expired.
 */
async function reply(
  deps: SendDeps,
  request: SendRequest,
  token: string,
  tokenAt: number,
  resumed: boolean,
): Promise<SendOutcome | typeof INVALID_TOKEN> {
  const { senderKey, messages, notificationDisabled } = request;
  let unanswered = resumed;
  const replied = await withRetries(deps, async () => {
    const result = await deps.line.reply(senderKey, token, messages, notificationDisabled);
    if (isRetryable(result)) unanswered = true;
    return result;
  });
  if (replied.ok) {
    return {
      answer: {
        method: "reply",
        sentMessages: replied.value.sentMessages,
        requestId: replied.requestId ?? null,
      },
    };
  }
  if (!isInvalidReplyToken(replied)) return { error: toError(replied), interrupted: isRetryable(replied) };
  if (!unanswered) return INVALID_TOKEN;
  const young = deps.clock.now() - tokenAt < deps.options.replyTokenMaxAgeMs;
  return young ? { answer: { method: "reply", sentMessages: [], requestId: null } } : { unknown: UNKNOWN };
}

function toError(result: LineResult<unknown>): { code: string; message: string } {
  const error = result.ok ? new TalkgateError("-699", "not a failure") : lineFailure(result);
  return { code: error.code, message: error.message };
}

// LINE not reached, or failing: worth another try. A channel without a usable token never called LINE.
function isRetryable(result: LineResult<unknown>): boolean {
  return !result.ok && !result.noToken && (result.status === null || result.status >= 500);
}

function isInvalidReplyToken(result: LineResult<unknown>): boolean {
  return !result.ok && result.status === 400 && /invalid reply token/i.test(result.reason);
}

async function withRetries<T>(deps: SendDeps, call: () => Promise<LineResult<T>>): Promise<LineResult<T>> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let result = await call();
  for (let attempt = 1; attempt < deps.options.attempts && isRetryable(result); attempt++) {
    await sleep(deps.options.retryDelayMs * 2 ** (attempt - 1));
    result = await call();
  }
  return result;
}

function hashOf(request: SendRequest): string {
  const { target, messages, notificationDisabled } = request;
  return createHash("sha256")
    .update(JSON.stringify({ target, messages, notificationDisabled }))
    .digest("hex");
}
