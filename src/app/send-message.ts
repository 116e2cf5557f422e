// Use case: a partner answers a customer (POST /line/message/send) — once, never twice, at the lowest cost LINE allows.
import { createHash } from "node:crypto";
import { TalkgateError } from "../core/errors.ts";
import { validateMessages } from "../core/line-messages.ts";
import { lineFailure, requireToken } from "./line-answers.ts";
import type { Clock, LineApi, LineResult, SendAnswer, Store } from "./ports.ts";

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
  store: Store;
  line: LineApi;
  clock: Clock;
  options: SendOptions;
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
  const problems = validateMessages(request.messages);
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
  await store.finishSend(request.senderKey, request.serialNumber, outcome, clock.now());
  if ("error" in outcome) throw outcome.error;
  return outcome.answer;
}

/** How a delivery attempt ended; `replyUnanswered`: a reply went to LINE without a definite answer. */
type Delivered = { answer: SendAnswer } | { error: TalkgateError; replyUnanswered: boolean };

async function deliver(
  deps: SendDeps,
  request: SendRequest,
  conversation: string,
  { replyToken, replyUnanswered }: { replyToken: string | null; replyUnanswered: boolean },
): Promise<Delivered> {
  const { line, store } = deps;
  const { senderKey, messages, notificationDisabled } = request;
  // A token is claimed before use, so two sends can never spend the same one.
  if (
    replyToken &&
    (await store.claimReplyToken(senderKey, conversation, replyToken, request.serialNumber))
  ) {
    // An earlier attempt of this send may have spent the token without learning so (timeout, crash).
    let unanswered = replyUnanswered;
    const replied = await withRetries(deps, async () => {
      const result = await line.reply(senderKey, replyToken, messages, notificationDisabled);
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
    if (!isInvalidReplyToken(replied)) return { error: lineFailure(replied), replyUnanswered: unanswered };
    // LINE took the token, and only this send had it: the unanswered attempt delivered the messages.
    if (unanswered) return { answer: { method: "reply", sentMessages: [], requestId: null } };
  }
  const retryKey = retryKeyOf(senderKey, request.serialNumber);
  const pushed = await withRetries(deps, () =>
    line.push(senderKey, request.target.id, messages, notificationDisabled, retryKey),
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
  return { error: lineFailure(pushed), replyUnanswered: false };
}

function isRetryable(result: LineResult<unknown>): boolean {
  return !result.ok && (result.status === null || result.status >= 500);
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
