// The admin API's door (SPEC §10): who the operator is (token or session), what their role lets them do, CSRF on
// changes made with a session, and the audit entry every audited route leaves — before its answer goes out.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { OperatorAccess, OperatorIdentity } from "../app/operator-access.ts";
import type { AuditEntry, OperatorData } from "../app/store.ts";
import { sameDigest, tokenDigest } from "../core/credentials.ts";
import { TalkgateError } from "../core/errors.ts";
import { storableForm } from "../core/storable-text.ts";
import { toTalkgateError } from "./error-handler.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "talkgate_session";

declare module "fastify" {
  interface FastifyRequest {
    operator: OperatorIdentity;
    /** What the audit entry of this request records; routes fill in what their config does not say. */
    audit: { action?: string; target?: string | null; actor?: string; outcome?: string };
  }
  interface FastifyContextConfig {
    /** The audit action of a route (e.g. `partner.create`); unset routes are not audited unless they say so. */
    audit?: string;
    /** A route open without credentials (sign-in). */
    public?: boolean;
  }
}

/** The value of the session cookie, if the request has one. */
export function sessionCookie(request: FastifyRequest): string | undefined {
  const match = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([^;]+)`).exec(request.headers.cookie ?? "");
  return match?.[1];
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (!match?.[1]) throw new TalkgateError("-801", "Authorization must be: Bearer <operator token>");
  return match[1];
}

const READS = new Set(["GET", "HEAD"]);

/** Authenticates every route of `scope` (but public ones), checks role and CSRF, and writes audit entries. */
export function installAdminAuth(
  scope: FastifyInstance,
  deps: { access: OperatorAccess; audit: Pick<OperatorData, "appendAudit">; now: () => number },
): void {
  scope.decorateRequest("operator", undefined as unknown as OperatorIdentity);
  scope.decorateRequest("audit", undefined as unknown as FastifyRequest["audit"]);
  scope.addHook("onRequest", async (request) => {
    request.audit = {};
    if (request.routeOptions.config.public) return;
    request.operator = await deps.access.authenticate(bearer(request), sessionCookie(request));
    if (READS.has(request.method)) return;
    if (request.operator.role !== "admin")
      throw new TalkgateError(
        "-803",
        `operator ${request.operator.name} is a viewer: viewers may not change anything`,
      );
    // A cookie goes with any request the browser makes; the token in a header only with the console's own.
    const { csrfDigest } = request.operator;
    if (csrfDigest !== null) {
      const given = request.headers["x-csrf-token"];
      if (typeof given !== "string" || !sameDigest(tokenDigest(given), csrfDigest))
        throw new TalkgateError("-813", "x-csrf-token: missing or not this session's (it came with sign-in)");
    }
  });
  scope.addHook("onError", async (request, _reply, error) => {
    request.audit.outcome = toTalkgateError(error).code;
  });
  scope.addHook("onSend", async (request, reply, payload) => {
    const action = request.audit.action ?? request.routeOptions.config.audit;
    // Refusals before the operator is known (no credentials) are no operator's action.
    const actor = request.audit.actor ?? request.operator?.name;
    if (!action || !actor) return payload;
    const entry: Omit<AuditEntry, "id"> = {
      at: deps.now(),
      actorKind: "operator",
      actor: storableForm(actor),
      credentialId: request.operator?.credentialId ?? null,
      action,
      target: auditTarget(request.audit.target ?? targetOf(request.params)),
      outcome: request.audit.outcome ?? (reply.statusCode < 400 ? "ok" : String(reply.statusCode)),
      requestId: request.id,
    };
    try {
      await deps.audit.appendAudit(entry);
    } catch (error) {
      request.log.error({ err: error, action }, "audit:write:failed");
    }
    return payload;
  });
}

/** A target as the audit log keeps it: what a request named, never refused by the database (NUL escaped). */
export function auditTarget(target: string | null): string | null {
  return target === null ? null : storableForm(target.slice(0, 200));
}

// The target of a route: its path parameters, joined (`jedai`, `jedai/keys/1a2b…`).
function targetOf(params: unknown): string | null {
  const values = Object.values((params ?? {}) as Record<string, string>);
  return values.length > 0 ? values.join("/") : null;
}
