// @ts-check
// The console's only way to talkgate: the admin API, JSON in and out, the session's CSRF token on every change,
// and any 401 reported (the session ended, or there was none).
import { storedSession } from "./session.js";

/** A refusal of the admin API ({code, message}), or no answer at all (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {number | null} retryAfterS the Retry-After of a 429, in seconds
   */
  constructor(status, code, message, retryAfterS = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

/** @type {() => void} */
let unauthorized = () => {};

/** Calls `handler` whenever talkgate answers 401. @param {() => void} handler */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Calls the admin API; answers its JSON (null for 204), or throws an {@link ApiError}.
 * @param {"GET" | "POST" | "PUT" | "PATCH" | "DELETE"} method
 * @param {string} path with its query
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const csrfToken = storedSession()?.csrfToken;
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "", error instanceof Error ? error.message : String(error));
  }
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => null);
  if (response.ok) return answer;
  if (response.status === 401) unauthorized();
  const retryAfter = response.headers.get("retry-after");
  throw new ApiError(
    response.status,
    String(answer?.code ?? ""),
    String(answer?.message ?? `${response.status} ${response.statusText}`),
    retryAfter === null ? null : Number(retryAfter),
  );
}
