// What the PostgreSQL store's statements share: the transaction type, rows passed as one JSON parameter, work
// notifications (sent at commit), and waking conversations.
import type { Work } from "../../app/store.ts";
import type { Sql, Tx } from "./sql.ts";

export type { Tx };

/** Many rows as one `jsonb` parameter, read back with `jsonb_to_recordset`: one round trip, any count. */
export function json(sql: Sql, rows: readonly unknown[]) {
  return sql.json(rows);
}

/** The channel every instance listens on for new work. */
export const WORK_CHANNEL = "talkgate_work";

/** Tells every instance (when the transaction commits) that there may be work. */
export async function notify(tx: Tx, work: Work): Promise<void> {
  await tx`SELECT pg_notify(${WORK_CHANNEL}, ${work})`;
}

/** There may be work for these conversations from `at` on: due then at the latest. */
export async function wakeConversations(
  tx: Tx,
  refs: ReadonlyArray<{ senderKey: string; conversation: string }>,
  at: number,
): Promise<void> {
  if (refs.length === 0) return;
  await tx`UPDATE conversations c SET due_at = least(coalesce(c.due_at, ${at}), ${at})
    FROM jsonb_to_recordset(${json(
      tx,
      refs.map((r) => ({ s: r.senderKey, c: r.conversation })),
    )}) AS t(s text, c text)
    WHERE c.sender_key = t.s AND c.conversation = t.c`;
}
