// Whether a partner's send may go ahead, and how (SPEC §6): the same serial_number is never sent twice, a send cut
// off is finished the way it began, nothing is sent while the conversation is in standby. Pure: stores load the
// send's row and the conversation, apply the decision in one transaction.
import type { ConversationState } from "./event-record.ts";

/** A send as recorded (the `sends` row), as far as the decision needs it. */
export interface SendRecord {
  state: string;
  requestHash: string;
  /** The JSON answered (a sent answer, or a failure's {code, message}). */
  answer: string | null;
  updatedAt: number;
  /** An attempt under way or cut off: how it went to LINE. */
  attemptMethod: "reply" | "push" | null;
  attemptToken: string | null;
  attemptTokenAt: number | null;
}

/** What a send's repeat answers, the first time and every time. */
export interface SendAnswer {
  method: "reply" | "push";
  sentMessages: unknown[];
  requestId: string | null;
}

/**
 * An attempt of a send that went (or was about to go) to LINE without talkgate learning LINE's answer:
 * cut off by a crash, or never answered. A repeat of the send must finish it the same way.
 */
export type InterruptedAttempt =
  | { method: "push" }
  | { method: "reply"; token: string /** when the token's event was received */; tokenAt: number };

/** Whether a send may go ahead, and how. */
export type BeginSend =
  | { kind: "go"; replyToken: string | null; interrupted: InterruptedAttempt | null }
  | { kind: "done"; answer: SendAnswer }
  | { kind: "failed"; error: { code: string; message: string } }
  | { kind: "busy" }
  | { kind: "conflict" }
  | { kind: "standby" };

export interface SendTiming {
  /** A send still marked in progress after this long was cut off (a crash) and may be resumed. */
  staleAfterMs: number;
  /** A reply token older than this is not offered (LINE's are good for about a minute). */
  replyTokenMaxAgeMs: number;
}

/** What the store writes for a send that begins: its state and error code (standby is a failed send). */
export type SendWrite = { state: "sending"; errorCode: null } | { state: "failed"; errorCode: "-409" };

/**
 * Decides a send: a repeat of another request is a conflict; a sent one answers again; one that could not be
 * decided (`unknown`) fails again; one in progress for less than `staleAfterMs` is busy. Otherwise it goes —
 * finishing an interrupted attempt the same way, whatever the conversation's mode is now — unless the
 * conversation is in standby, with the conversation's unused reply token when it is young enough.
 */
export function decideSend(
  previous: SendRecord | null,
  conversation: ConversationState | null,
  requestHash: string,
  now: number,
  timing: SendTiming,
): { begin: BeginSend; write: SendWrite | null } {
  if (previous) {
    if (previous.requestHash !== requestHash) return { begin: { kind: "conflict" }, write: null };
    if (previous.state === "sent")
      return {
        begin: { kind: "done", answer: JSON.parse(previous.answer ?? "{}") as SendAnswer },
        write: null,
      };
    if (previous.state === "unknown") {
      const error = JSON.parse(previous.answer ?? "{}") as { code: string; message: string };
      return { begin: { kind: "failed", error }, write: null };
    }
    if (previous.state === "sending" && now - previous.updatedAt < timing.staleAfterMs)
      return { begin: { kind: "busy" }, write: null };
  }
  const interrupted = interruptedAttempt(previous);
  if (!interrupted && conversation?.lastMode === "standby")
    return { begin: { kind: "standby" }, write: { state: "failed", errorCode: "-409" } };
  const token = conversation?.replyToken ?? null;
  const fresh =
    token !== null &&
    conversation?.replyTokenUsedBy === null &&
    now - (conversation.replyTokenAt ?? 0) < timing.replyTokenMaxAgeMs;
  return {
    begin: { kind: "go", replyToken: fresh ? token : null, interrupted },
    write: { state: "sending", errorCode: null },
  };
}

function interruptedAttempt(previous: SendRecord | null): InterruptedAttempt | null {
  if (previous?.attemptMethod === "push") return { method: "push" };
  if (previous?.attemptMethod === "reply" && previous.attemptToken !== null)
    return { method: "reply", token: previous.attemptToken, tokenAt: previous.attemptTokenAt ?? 0 };
  return null;
}
