// @ts-check
// The signed-in operator and the session's CSRF token, kept in localStorage (the session cookie itself is HttpOnly:
// no script reads it).

/** @typedef {{ name: string, role: "admin" | "viewer" }} Operator */
/** @typedef {{ operator: Operator, csrfToken: string, expiresAt: number }} Session */

const STORAGE_KEY = "talkgate.session";

/** The stored session, or null when there is none (or it is not one). @returns {Session | null} */
export function storedSession() {
  try {
    const session = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
    return typeof session?.csrfToken === "string" && typeof session.operator?.name === "string"
      ? session
      : null;
  } catch {
    return null;
  }
}

/** @param {Session} session */
export function storeSession(session) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function forgetSession() {
  localStorage.removeItem(STORAGE_KEY);
}
