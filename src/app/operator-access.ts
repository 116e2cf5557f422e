// Use case: who an operator is (SPEC §10) — sign-in with a password (throttled by failures in the audit log, so across
// every instance), sessions and operator API tokens kept in the database as digests, roles from the configuration.
import {
  hashPassword,
  newToken,
  sameDigest,
  TOKEN_PREFIX,
  tokenDigest,
  tokenId,
  verifyPassword,
} from "../core/credentials.ts";
import { TalkgateError } from "../core/errors.ts";
import type { Clock } from "./ports.ts";
import type { Credential, OperatorData } from "./store.ts";

export type OperatorRole = "admin" | "viewer";

/** An authenticated operator, and how they proved it. */
export interface OperatorIdentity {
  name: string;
  role: OperatorRole;
  /** The operator token used (its id), or null for a session. */
  credentialId: string | null;
  /** A session's CSRF token digest: changes made with a session must present the token. */
  csrfDigest: string | null;
}

export interface OperatorAccessOptions {
  operators: ReadonlyArray<{ name: string; role: OperatorRole; passwordHash: string }>;
  sessionTtlMs: number;
  /** Failed sign-ins of one name within the window, after which sign-in is refused until the window passes. */
  signInMaxFailures: number;
  signInWindowMs: number;
}

/** The audit action of a sign-in; its failures are what throttles the next ones. */
export const SIGN_IN_ACTION = "operator.sign-in";
const SIGN_IN_FAILED = "-801";

// Unknown names are checked against this, so that their answer takes as long as a wrong password's.
let decoy: Promise<string> | undefined;

/** Signs operators in and recognises them again by session or token. */
export class OperatorAccess {
  readonly #store: OperatorData;
  readonly #clock: Clock;
  readonly #options: OperatorAccessOptions;

  constructor(store: OperatorData, clock: Clock, options: OperatorAccessOptions) {
    this.#store = store;
    this.#clock = clock;
    this.#options = options;
  }

  get operators(): OperatorAccessOptions["operators"] {
    return this.#options.operators;
  }

  /**
   * Checks a name and password; answers a new session (its cookie token and CSRF token, each shown once).
   * Refused with -829 after too many failures of that name, before the password is even looked at.
   */
  async signIn(
    name: string,
    password: string,
  ): Promise<{ session: string; csrfToken: string; expiresAt: number; operator: OperatorIdentity }> {
    const now = this.#clock.now();
    const { signInMaxFailures, signInWindowMs } = this.#options;
    const failures = await this.#store.listAudit({
      action: SIGN_IN_ACTION,
      target: name,
      outcome: SIGN_IN_FAILED,
      from: now - signInWindowMs,
      limit: signInMaxFailures,
    });
    const oldest = failures.at(-1);
    if (failures.length >= signInMaxFailures && oldest) {
      const retryAfterS = Math.max(1, Math.ceil((oldest.at + signInWindowMs - now) / 1000));
      throw Object.assign(
        new TalkgateError("-829", `too many failed sign-ins for this name; retry in ${retryAfterS} s`),
        { retryAfterS },
      );
    }
    const operator = this.#options.operators.find((o) => o.name === name);
    decoy ??= hashPassword("talkgate decoy password");
    const matches = await verifyPassword(password, operator?.passwordHash ?? (await decoy));
    if (!operator || !matches) throw new TalkgateError("-801", "name or password not valid");
    const session = newToken("session");
    const csrfToken = newToken("session");
    const expiresAt = now + this.#options.sessionTtlMs;
    await this.#store.createSession({
      digest: tokenDigest(session),
      operator: name,
      csrfDigest: tokenDigest(csrfToken),
      createdAt: now,
      expiresAt,
    });
    return {
      session,
      csrfToken,
      expiresAt,
      operator: { name, role: operator.role, credentialId: null, csrfDigest: tokenDigest(csrfToken) },
    };
  }

  async signOut(session: string): Promise<void> {
    await this.#store.endSessions({ digest: tokenDigest(session) }, this.#clock.now());
  }

  /**
   * The operator of a bearer token (`tgo_…`) or else of a session cookie; -801 for anything else, a partner
   * API key included. An operator no longer in the configuration is refused, whatever they hold.
   */
  async authenticate(bearer: string | undefined, session: string | undefined): Promise<OperatorIdentity> {
    const now = this.#clock.now();
    if (bearer !== undefined) {
      if (!bearer.startsWith(TOKEN_PREFIX["operator-token"]))
        throw new TalkgateError(
          "-801",
          "not an operator token (a partner API key does not open the admin API)",
        );
      const digest = tokenDigest(bearer);
      const token = (await this.#store.listCredentials("operator-token")).find(
        (t) => t.revokedAt === null && sameDigest(t.digest, digest),
      );
      const operator = token && this.#options.operators.find((o) => o.name === token.owner);
      if (!token || !operator) throw new TalkgateError("-801", "operator token not valid or revoked");
      void this.#store.touchCredentials([token.id], now).catch(() => {});
      return { name: operator.name, role: operator.role, credentialId: token.id, csrfDigest: null };
    }
    if (session !== undefined) {
      const found = await this.#store.findSession(tokenDigest(session), now);
      const operator = found && this.#options.operators.find((o) => o.name === found.operator);
      if (!found || !operator) throw new TalkgateError("-801", "session expired or not valid: sign in again");
      return { name: operator.name, role: operator.role, credentialId: null, csrfDigest: found.csrfDigest };
    }
    throw new TalkgateError(
      "-801",
      "missing operator credentials: send Authorization: Bearer <operator token>, or sign in",
    );
  }

  /** Makes an operator API token for `operator`; answers it once (only its digest is kept). */
  async createToken(
    operator: string,
    name: string,
    createdBy: string,
  ): Promise<{ id: string; token: string }> {
    if (!this.#options.operators.some((o) => o.name === operator))
      throw new TalkgateError(
        "-405",
        `operator: no operator ${JSON.stringify(operator)} in the configuration`,
      );
    const token = newToken("operator-token");
    const id = tokenId(token);
    await this.#store.addCredential({
      id,
      kind: "operator-token",
      owner: operator,
      name,
      digest: tokenDigest(token),
      createdAt: this.#clock.now(),
      createdBy,
      revokedAt: null,
      lastUsedAt: null,
    });
    return { id, token };
  }

  listTokens(): Promise<Credential[]> {
    return this.#store.listCredentials("operator-token");
  }

  async revokeToken(id: string): Promise<void> {
    if (!(await this.#store.revokeCredential("operator-token", id, this.#clock.now())))
      throw new TalkgateError("-804", `no live operator token ${JSON.stringify(id)}`);
  }
}
