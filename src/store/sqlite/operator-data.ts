// The operator plane's rows in the SQLite file: configuration entries, credentials, sessions and the audit log.
import type { DatabaseSync } from "node:sqlite";
import type { ConfigEntry, OperatorData } from "../../app/store.ts";
import { type AuditRow, type CredentialRow, toAuditEntry, toCredential } from "../rows.ts";
import type { GroupCommit } from "./group-commit.ts";

/** {@link OperatorData} over the file; writes go through the store's group commit. */
export function sqliteOperatorData(db: DatabaseSync, writes: GroupCommit): OperatorData {
  const sql = {
    version: db.prepare("SELECT version FROM config_version"),
    bump: db.prepare("UPDATE config_version SET version = version + 1"),
    entries: db.prepare(
      "SELECT kind, id, body, created_at, updated_at FROM config_entries ORDER BY kind, id",
    ),
    createEntry: db.prepare(
      `INSERT INTO config_entries (kind, id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    updateEntry: db.prepare("UPDATE config_entries SET body = ?, updated_at = ? WHERE kind = ? AND id = ?"),
    deleteEntry: db.prepare("DELETE FROM config_entries WHERE kind = ? AND id = ?"),
    credentials: db.prepare(
      `SELECT id, kind, owner, name, digest, created_at, created_by, revoked_at, last_used_at
       FROM credentials WHERE kind = ? ORDER BY created_at, id`,
    ),
    addCredential: db.prepare(
      `INSERT INTO credentials (id, kind, owner, name, digest, created_at, created_by, revoked_at, last_used_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    revoke: db.prepare(
      "UPDATE credentials SET revoked_at = ? WHERE kind = ? AND id = ? AND revoked_at IS NULL",
    ),
    touch: db.prepare("UPDATE credentials SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?"),
    createSession: db.prepare(
      `INSERT INTO operator_sessions (digest, operator, csrf_digest, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?)`,
    ),
    findSession: db.prepare(
      `SELECT digest, operator, csrf_digest, created_at, expires_at FROM operator_sessions
       WHERE digest = ? AND expires_at > ?`,
    ),
    endSessions: db.prepare(
      "DELETE FROM operator_sessions WHERE digest = ? OR operator = ? OR expires_at <= ?",
    ),
    appendAudit: db.prepare(
      `INSERT INTO audit_log (at, actor_kind, actor, credential_id, action, target, outcome, request_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    listAudit: db.prepare(
      `SELECT id, at, actor_kind, actor, credential_id, action, target, outcome, request_id FROM audit_log
       WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR target = ?3)
         AND (?4 IS NULL OR outcome = ?4) AND at >= ?5 AND at < ?6 AND id < ?7
       ORDER BY id DESC LIMIT ?8`,
    ),
  };
  // A change that applied moves the version in the same transaction.
  const changed = (result: { changes: number | bigint }) => {
    if (Number(result.changes) === 0) return false;
    sql.bump.run();
    return true;
  };

  return {
    async configVersion() {
      return Number((sql.version.get() as { version: number }).version);
    },
    async listConfigEntries() {
      return (
        sql.entries.all() as Array<{
          kind: ConfigEntry["kind"];
          id: string;
          body: string;
          created_at: number;
          updated_at: number;
        }>
      ).map((r) => ({
        kind: r.kind,
        id: r.id,
        body: r.body,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }));
    },
    createConfigEntry: (e) =>
      writes.run(() => changed(sql.createEntry.run(e.kind, e.id, e.body, e.createdAt, e.updatedAt))),
    updateConfigEntry: (kind, id, body, now) =>
      writes.run(() => changed(sql.updateEntry.run(body, now, kind, id))),
    deleteConfigEntry: (kind, id) => writes.run(() => changed(sql.deleteEntry.run(kind, id))),
    async listCredentials(kind) {
      return (sql.credentials.all(kind) as unknown as CredentialRow[]).map(toCredential);
    },
    addCredential: (c) =>
      writes.run(() => {
        changed(
          sql.addCredential.run(
            c.id,
            c.kind,
            c.owner,
            c.name,
            c.digest,
            c.createdAt,
            c.createdBy,
            c.revokedAt,
            c.lastUsedAt,
          ),
        );
      }),
    revokeCredential: (kind, id, now) => writes.run(() => changed(sql.revoke.run(now, kind, id))),
    touchCredentials: (ids, at) =>
      writes.run(
        () => {
          for (const id of ids) sql.touch.run(at, id);
        },
        { durable: false },
      ),
    createSession: (s) =>
      writes.run(() => {
        sql.createSession.run(s.digest, s.operator, s.csrfDigest, s.createdAt, s.expiresAt);
      }),
    async findSession(digest, now) {
      const row = sql.findSession.get(digest, now) as
        | { digest: string; operator: string; csrf_digest: string; created_at: number; expires_at: number }
        | undefined;
      return row
        ? {
            digest: row.digest,
            operator: row.operator,
            csrfDigest: row.csrf_digest,
            createdAt: row.created_at,
            expiresAt: row.expires_at,
          }
        : null;
    },
    endSessions: (which, now) =>
      writes.run(() => {
        sql.endSessions.run(
          "digest" in which ? which.digest : null,
          "operator" in which ? which.operator : null,
          now,
        );
      }),
    appendAudit: (e) =>
      writes.run(() => {
        sql.appendAudit.run(
          e.at,
          e.actorKind,
          e.actor,
          e.credentialId,
          e.action,
          e.target,
          e.outcome,
          e.requestId,
        );
      }),
    async listAudit(f) {
      const rows = sql.listAudit.all(
        f.actor ?? null,
        f.action ?? null,
        f.target ?? null,
        f.outcome ?? null,
        f.from ?? 0,
        f.to ?? Number.MAX_SAFE_INTEGER,
        f.before ?? Number.MAX_SAFE_INTEGER,
        f.limit,
      ) as unknown as AuditRow[];
      return rows.map(toAuditEntry);
    },
  };
}
