// Issued channel tokens on PostgreSQL: one row per channel, its renewal lease taken with an upsert, so that one
// instance of a cluster renews and every instance reads the result.
import type { ChannelTokens } from "../../app/store.ts";
import { type ChannelTokenDbRow, toChannelTokenRow } from "../rows.ts";
import type { Pool } from "./sql.ts";

/** {@link ChannelTokens} over a pool. */
export function postgresChannelTokens(pool: Pool): ChannelTokens {
  return {
    async listChannelTokens() {
      const rows = await pool<ChannelTokenDbRow[]>`
        SELECT sender_key, credential_id, token, key_id, issued_at, expires_at, retired, last_renewal_at,
          last_failure_at, last_failure, failures, version
        FROM channel_tokens ORDER BY sender_key`;
      return rows.map(toChannelTokenRow);
    },

    async leaseChannelToken(senderKey, owner, now, leaseMs) {
      const [row] = await pool<ChannelTokenDbRow[]>`
        INSERT INTO channel_tokens AS t (sender_key, lease_owner, lease_until)
        VALUES (${senderKey}, ${owner}, ${now + leaseMs})
        ON CONFLICT (sender_key) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
        WHERE t.lease_owner IS NULL OR t.lease_owner = excluded.lease_owner OR t.lease_until <= ${now}
        RETURNING sender_key, credential_id, token, key_id, issued_at, expires_at, retired, last_renewal_at, last_failure_at,
          last_failure, failures, version`;
      return row ? toChannelTokenRow(row) : null;
    },

    async saveChannelToken(row, owner) {
      const saved = await pool`
        UPDATE channel_tokens SET credential_id = ${row.credentialId}, token = ${row.token}, key_id = ${row.keyId},
          issued_at = ${row.issuedAt}, expires_at = ${row.expiresAt}, retired = ${row.retired},
          last_renewal_at = ${row.lastRenewalAt}, last_failure_at = ${row.lastFailureAt},
          last_failure = ${row.lastFailure}, failures = ${row.failures},
          lease_owner = NULL, lease_until = NULL, version = version + 1
        WHERE sender_key = ${row.senderKey} AND lease_owner = ${owner}
        RETURNING sender_key`;
      return saved.length > 0;
    },
  };
}
