// Turns LINE's answers into the partner API's: the value, or the error code that passes LINE's status through.
import { lineStatusCode, TalkgateError } from "../core/errors.ts";
import type { LineApi, LineResult } from "./ports.ts";

/** Throws -407 when the channel has no access token to call LINE with. */
export function requireToken(line: LineApi, senderKey: string): void {
  if (!line.hasToken(senderKey)) {
    throw new TalkgateError("-407", `channel ${senderKey} has no channel access token configured`);
  }
}

/**
 * The error a failed LINE call answers with: -407 when the channel had no usable token, -404 when LINE was not
 * reached, else LINE's own status and message.
 */
export function lineFailure(result: LineResult<unknown> & { ok: false }): TalkgateError {
  if (result.noToken) return new TalkgateError("-407", result.reason);
  if (result.status === null) return new TalkgateError("-404", `LINE unreachable: ${result.reason}`);
  return new TalkgateError(lineStatusCode(result.status), result.reason);
}

/** The value of a LINE call, or its failure thrown. */
export function lineValue<T>(result: LineResult<T>): T {
  if (!result.ok) throw lineFailure(result);
  return result.value;
}
