// Issued channel tokens in the SQLite file: one row per channel, its renewal lease taken with an upsert.
import type { DatabaseSync } from "node:sqlite";
import type { ChannelTokens } from "../../app/store.ts";
import { CHANNEL_TOKEN_COLUMNS, type ChannelTokenDbRow, toChannelTokenRow } from "../rows.ts";
import type { GroupCommit } from "./group-commit.ts";

/** {@link ChannelTokens} over the file; writes go through the store's group commit. */
export function sqliteChannelTokens(db: DatabaseSync, writes: GroupCommit): ChannelTokens {
  const sql = {
    list: db.prepare(`SELECT ${CHANNEL_TOKEN_COLUMNS} FROM channel_tokens ORDER BY sender_key`),
    lease: db.prepare(
      `INSERT INTO channel_tokens (sender_key, lease_owner, lease_until) VALUES (?1, ?2, ?3 + ?4)
       ON CONFLICT (sender_key) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
       WHERE lease_owner IS NULL OR lease_owner = excluded.lease_owner OR lease_until <= ?3
       RETURNING ${CHANNEL_TOKEN_COLUMNS}`,
    ),
    save: db.prepare(
      `UPDATE channel_tokens SET credential_id = ?, token = ?, key_id = ?, issued_at = ?, expires_at = ?, retired = ?,
         last_renewal_at = ?, last_failure_at = ?, last_failure = ?, failures = ?,
         lease_owner = NULL, lease_until = NULL, version = version + 1
       WHERE sender_key = ? AND lease_owner = ?`,
    ),
  };
  return {
    async listChannelTokens() {
      return (sql.list.all() as unknown as ChannelTokenDbRow[]).map(toChannelTokenRow);
    },
    leaseChannelToken: (senderKey, owner, now, leaseMs) =>
      writes.run(() => {
        const row = sql.lease.get(senderKey, owner, now, leaseMs) as ChannelTokenDbRow | undefined;
        return row ? toChannelTokenRow(row) : null;
      }),
    saveChannelToken: (row, owner) =>
      writes.run(
        () =>
          Number(
            sql.save.run(
              row.credentialId,
              row.token,
              row.keyId,
              row.issuedAt,
              row.expiresAt,
              row.retired,
              row.lastRenewalAt,
              row.lastFailureAt,
              row.lastFailure,
              row.failures,
              row.senderKey,
              owner,
            ).changes,
          ) > 0,
      ),
  };
}
