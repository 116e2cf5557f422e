// The PostgreSQL store: every port over one pool, work signals through LISTEN/NOTIFY, shared by any number of
// talkgate instances (SPEC §9).
import type { Store, Work } from "../../app/store.ts";
import { LocalWorkSignals } from "../local-work-signals.ts";
import { postgresChannelTokens } from "./channel-tokens.ts";
import { connect, migrate, type Pool, type PoolOptions } from "./connection.ts";
import { postgresEventLog } from "./event-log.ts";
import { postgresMediaJobs } from "./media-jobs.ts";
import { postgresOperatorData } from "./operator-data.ts";
import { postgresOutbox } from "./outbox.ts";
import { postgresRetention } from "./retention.ts";
import { postgresDirectory, postgresSends, postgresUploads } from "./sends.ts";
import { WORK_CHANNEL } from "./tx.ts";

/** A store over PostgreSQL, and its pool (for files kept in the database). */
export type PostgresStore = Store & { pool: Pool };

/**
 * Connects, brings the schema up to date (refusing a newer one), and listens for the work other instances
 * make. Fails when PostgreSQL cannot be reached within the connect timeout. A connection lost later (the
 * database restarted, the network cut) is told to `onConnectionLost`; the pool and the listener connect again.
 */
export async function openPostgresStore(
  url: string,
  options: PoolOptions,
  onConnectionLost: (error: Error) => void = () => {},
): Promise<PostgresStore> {
  const pool = connect(url, options, onConnectionLost);
  // Intake commits one transaction at a time (group commit) on a connection of its own: a webhook never waits
  // for a connection behind deliveries and downloads.
  const intake = connect(url, { ...options, poolSize: 1 }, onConnectionLost);
  try {
    await migrate(pool, url);
    const signals = new LocalWorkSignals();
    // Other instances' work arrives as notifications; this instance's own is signalled at once as well.
    await pool.listen(WORK_CHANNEL, (payload) => {
      if (payload === "delivery" || payload === "media") signals.signal(payload);
    });
    const signal = (work: Work) => signals.signal(work);
    return {
      pool,
      ...postgresEventLog({ commits: intake, reads: pool }, signal),
      ...postgresOutbox(pool, signal),
      ...postgresMediaJobs(pool, signal),
      ...postgresSends(pool),
      ...postgresDirectory(pool),
      ...postgresUploads(pool),
      ...postgresOperatorData(pool),
      ...postgresChannelTokens(pool),
      ...postgresRetention(pool),
      onWork: (work, wake) => signals.onWork(work, wake),
      async ping() {
        await pool`SELECT 1`;
      },
      async close() {
        await Promise.all([pool.end(), intake.end()]);
      },
    };
  } catch (error) {
    await Promise.all([pool.end(), intake.end()]).catch(() => {});
    throw error;
  }
}
