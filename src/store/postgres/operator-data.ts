// The operator plane's rows on PostgreSQL: configuration entries, credentials, sessions and the audit log.
import type { AuditFilter, ConfigEntry, OperatorData } from "../../app/store.ts";
import { type AuditRow, type CredentialRow, toAuditEntry, toCredential } from "../rows.ts";
import type { Pool, Tx } from "./sql.ts";

const bumpVersion = (tx: Tx) => tx`UPDATE config_version SET version = version + 1`;

/** {@link OperatorData} over a pool. */
export function postgresOperatorData(pool: Pool): OperatorData {
  return {
    async configVersion() {
      const [row] = await pool<Array<{ version: number }>>`SELECT version FROM config_version`;
      return Number(row?.version ?? 0);
    },

    async listConfigEntries() {
      const rows = await pool<
        Array<{ kind: ConfigEntry["kind"]; id: string; body: string; created_at: number; updated_at: number }>
      >`
        SELECT kind, id, body, created_at, updated_at FROM config_entries ORDER BY kind, id`;
      return rows.map((r) => ({
        kind: r.kind,
        id: r.id,
        body: r.body,
        createdAt: Number(r.created_at),
        updatedAt: Number(r.updated_at),
      }));
    },

    createConfigEntry(entry) {
      return pool.begin(async (tx) => {
        const inserted = await tx`INSERT INTO config_entries (kind, id, body, created_at, updated_at)
          VALUES (${entry.kind}, ${entry.id}, ${entry.body}, ${entry.createdAt}, ${entry.updatedAt})
          ON CONFLICT DO NOTHING RETURNING id`;
        if (inserted.length === 0) return false;
        await bumpVersion(tx);
        return true;
      });
    },

    updateConfigEntry(kind, id, body, now) {
      return pool.begin(async (tx) => {
        const updated = await tx`UPDATE config_entries SET body = ${body}, updated_at = ${now}
          WHERE kind = ${kind} AND id = ${id} RETURNING id`;
        if (updated.length === 0) return false;
        await bumpVersion(tx);
        return true;
      });
    },

    deleteConfigEntry(kind, id) {
      return pool.begin(async (tx) => {
        const deleted = await tx`DELETE FROM config_entries WHERE kind = ${kind} AND id = ${id} RETURNING id`;
        if (deleted.length === 0) return false;
        await bumpVersion(tx);
        return true;
      });
    },

    async listCredentials(kind) {
      const rows = await pool<CredentialRow[]>`
        SELECT id, kind, owner, name, digest, created_at, created_by, revoked_at, last_used_at
        FROM credentials WHERE kind = ${kind} ORDER BY created_at, id`;
      return rows.map(toCredential);
    },

    async addCredential(c) {
      await pool.begin(async (tx) => {
        await tx`INSERT INTO credentials (id, kind, owner, name, digest, created_at, created_by, revoked_at, last_used_at)
          VALUES (${c.id}, ${c.kind}, ${c.owner}, ${c.name}, ${c.digest}, ${c.createdAt}, ${c.createdBy},
            ${c.revokedAt}, ${c.lastUsedAt})`;
        await bumpVersion(tx);
      });
    },

    revokeCredential(kind, id, now) {
      return pool.begin(async (tx) => {
        const revoked = await tx`UPDATE credentials SET revoked_at = ${now}
          WHERE kind = ${kind} AND id = ${id} AND revoked_at IS NULL RETURNING id`;
        if (revoked.length === 0) return false;
        await bumpVersion(tx);
        return true;
      });
    },

    async touchCredentials(ids, at) {
      if (ids.length === 0) return;
      await pool`UPDATE credentials SET last_used_at = greatest(coalesce(last_used_at, 0), ${at})
        WHERE id IN (SELECT jsonb_array_elements_text(${pool.json(ids)}))`;
    },

    async createSession(s) {
      await pool`INSERT INTO operator_sessions (digest, operator, csrf_digest, created_at, expires_at)
        VALUES (${s.digest}, ${s.operator}, ${s.csrfDigest}, ${s.createdAt}, ${s.expiresAt})`;
    },

    async findSession(digest, now) {
      const [row] = await pool<
        Array<{
          digest: string;
          operator: string;
          csrf_digest: string;
          created_at: number;
          expires_at: number;
        }>
      >`
        SELECT digest, operator, csrf_digest, created_at, expires_at FROM operator_sessions
        WHERE digest = ${digest} AND expires_at > ${now}`;
      return row
        ? {
            digest: row.digest,
            operator: row.operator,
            csrfDigest: row.csrf_digest,
            createdAt: Number(row.created_at),
            expiresAt: Number(row.expires_at),
          }
        : null;
    },

    async endSessions(which, now) {
      const digest = "digest" in which ? which.digest : null;
      const operator = "operator" in which ? which.operator : null;
      await pool`DELETE FROM operator_sessions
        WHERE digest = ${digest} OR operator = ${operator} OR expires_at <= ${now}`;
    },

    async appendAudit(e) {
      await pool`INSERT INTO audit_log (at, actor_kind, actor, credential_id, action, target, outcome, request_id)
        VALUES (${e.at}, ${e.actorKind}, ${e.actor}, ${e.credentialId}, ${e.action}, ${e.target}, ${e.outcome},
          ${e.requestId})`;
    },

    async listAudit(f: AuditFilter) {
      const rows = await pool<AuditRow[]>`
        SELECT id, at, actor_kind, actor, credential_id, action, target, outcome, request_id FROM audit_log
        WHERE (${f.actor ?? null}::text IS NULL OR actor = ${f.actor ?? null})
          AND (${f.action ?? null}::text IS NULL OR action = ${f.action ?? null})
          AND (${f.target ?? null}::text IS NULL OR target = ${f.target ?? null})
          AND (${f.outcome ?? null}::text IS NULL OR outcome = ${f.outcome ?? null})
          AND at >= ${f.from ?? 0} AND at < ${f.to ?? Number.MAX_SAFE_INTEGER}
          AND id < ${f.before ?? Number.MAX_SAFE_INTEGER}
        ORDER BY id DESC LIMIT ${f.limit}`;
      return rows.map(toAuditEntry);
    },
  };
}
