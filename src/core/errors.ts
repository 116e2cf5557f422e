// The one error type talkgate answers with, and the catalogue of its codes (docs/errors.md lists them).

/** Every code talkgate answers with, its HTTP status and what it means. */
export const ERROR_CODES = {
  // LINE's own answer passed through by the partner API (the message is LINE's).
  "400": { status: 400, meaning: "LINE refused the request as invalid" },
  "401": { status: 401, meaning: "LINE refused the channel access token" },
  "403": { status: 403, meaning: "LINE refused: the channel may not use this feature" },
  "404": { status: 404, meaning: "LINE does not know the user, group, room or resource" },
  "409": { status: 409, meaning: "LINE answered conflict" },
  "415": { status: 415, meaning: "LINE refused the content type" },
  "429": { status: 429, meaning: "LINE rate limit or monthly message quota reached" },
  "500": { status: 500, meaning: "LINE failed (after talkgate's retries)" },
  "-401": { status: 401, meaning: "partner API key missing or not valid" },
  "-403": {
    status: 403,
    meaning: "this partner may not do that: the operator has not given it the permission",
  },
  "-404": { status: 502, meaning: "LINE unreachable (connection failed or timed out)" },
  "-405": { status: 400, meaning: "bad parameter (the message names the field)" },
  "-406": { status: 404, meaning: "invalid sender_key: unknown, or not one of this key's channels" },
  "-407": { status: 503, meaning: "the channel has no usable channel access token" },
  "-409": { status: 409, meaning: "the conversation is in standby: another module holds the chat" },
  "-412": { status: 401, meaning: "LINE signature (x-line-signature) missing or not valid" },
  "-413": { status: 413, meaning: "request body too large" },
  "-415": { status: 415, meaning: "unsupported content type" },
  "-416": { status: 416, meaning: "the requested byte range lies outside the file" },
  "-423": { status: 409, meaning: "the same serial_number is being sent right now" },
  "-424": {
    status: 409,
    meaning: "unknown whether an interrupted reply of this serial_number reached the user; not sent again",
  },
  "-429": {
    status: 429,
    meaning: "too many requests with this partner API key; retry after the Retry-After seconds",
  },
  "-202": { status: 202, meaning: "the attachment is not stored yet; ask again later" },
  "-410": {
    status: 410,
    meaning:
      "gone: unsent by the user, deleted at LINE before it could be fetched, deleted after the retention period, or erased at the user's request",
  },
  "-508": { status: 404, meaning: "no such data (no message with that serial_number in that channel)" },
  "-509": {
    status: 404,
    meaning: "the message has no such part: no attachment to download (or hosted outside LINE), or no text",
  },
  "-507": {
    status: 507,
    meaning: "this partner's uploads fill its quota (media.uploadQuotaFiles, media.uploadQuotaBytes)",
  },
  "-600": { status: 500, meaning: "storage failure" },
  "-801": {
    status: 401,
    meaning:
      "admin API: operator token or session missing, not valid, expired or revoked (or a wrong sign-in)",
  },
  "-803": { status: 403, meaning: "admin API: this operator's role (viewer) may not change anything" },
  "-804": {
    status: 404,
    meaning: "admin API: no such partner, channel, key, token, signing secret or event",
  },
  "-809": {
    status: 409,
    meaning:
      "admin API: conflicts with what exists (the id is taken, the entry is managed by the configuration file, deliveries still wait, or a limit is reached)",
  },
  "-812": {
    status: 503,
    meaning: "admin API: TALKGATE_SECRET_KEY is not set, so no secret can be stored",
  },
  "-813": { status: 403, meaning: "admin API: a change made with a session needs its x-csrf-token header" },
  "-829": {
    status: 429,
    meaning: "admin API: too many failed sign-ins for this name; retry after the Retry-After seconds",
  },
  "-601": { status: 404, meaning: "no such route" },
  "-699": { status: 500, meaning: "internal error" },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The code passing LINE's HTTP status through: its own number when listed, else 400 or 500 by class. */
export function lineStatusCode(status: number): ErrorCode {
  const own = String(status);
  if (own in ERROR_CODES && status > 0) return own as ErrorCode;
  return status >= 500 ? "500" : "400";
}

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
