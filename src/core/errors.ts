// The one error type talkgate answers with, and the catalogue of its codes (docs/errors.md lists them).

/** Every code talkgate answers with, its HTTP status and what it means. */
export const ERROR_CODES = {
  "-401": { status: 401, meaning: "partner API key missing or not valid" },
  "-404": { status: 502, meaning: "LINE unreachable (connection failed or timed out)" },
  "-405": { status: 400, meaning: "bad parameter (the message names the field)" },
  "-406": { status: 404, meaning: "invalid sender_key: unknown, or not one of this key's channels" },
  "-407": { status: 503, meaning: "the channel has no usable channel access token" },
  "-409": { status: 409, meaning: "the conversation is in standby: another module holds the chat" },
  "-412": { status: 401, meaning: "LINE signature (x-line-signature) missing or not valid" },
  "-413": { status: 413, meaning: "request body too large" },
  "-415": { status: 415, meaning: "unsupported content type" },
  "-423": { status: 409, meaning: "the same serial_number is being sent right now" },
  "-202": { status: 202, meaning: "the attachment is not stored yet; ask again later" },
  "-410": { status: 410, meaning: "gone: unsent by the user, or deleted at LINE before it could be fetched" },
  "-508": { status: 404, meaning: "no such data (no message with that serial_number in that channel)" },
  "-509": {
    status: 404,
    meaning: "the message has no such part: no attachment to download (or hosted outside LINE), or no text",
  },
  "-600": { status: 500, meaning: "storage failure" },
  "-601": { status: 404, meaning: "no such route" },
  "-699": { status: 500, meaning: "internal error" },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a machine-readable code, the HTTP status it answers with, and an optional cause. */
export class TalkgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TalkgateError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}
