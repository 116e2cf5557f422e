// Opens the store that the configuration's database URL names, and the files that go with it; or only migrates it.
import type { Logger } from "pino";
import type { MediaFiles } from "../app/ports.ts";
import type { Store } from "../app/store.ts";
import type { TalkgateConfig } from "../config/config.ts";
import { DiskMediaFiles } from "../media/disk-media-files.ts";
import { migrateDatabase, redactedUrl } from "./postgres/connection.ts";
import { DatabaseFiles } from "./postgres/database-files.ts";
import { openPostgresStore } from "./postgres/postgres-store.ts";
import { migrateSqliteFile, openSqliteStore } from "./sqlite/sqlite-store.ts";

/**
 * The store of `config.database`, its schema brought up to date, and where attachments and uploads are
 * kept: `mediaDir`, unless several instances share a PostgreSQL database and no shared `mediaDir` was
 * declared: then in the database, so that every instance serves them.
 */
export async function openStore(
  config: TalkgateConfig,
  logger: Pick<Logger, "warn">,
): Promise<{ store: Store; files: MediaFiles }> {
  if (config.database.kind === "sqlite")
    return { store: openSqliteStore(config.database.path), files: new DiskMediaFiles(config.mediaDir) };
  const store = await openPostgresStore(config.database.url, config.postgres, (error) =>
    logger.warn({ err: error }, "database:connection:lost"),
  );
  return {
    store,
    files: config.mediaDirShared
      ? new DiskMediaFiles(config.mediaDir)
      : new DatabaseFiles(store.pool, { staleIncomingMs: config.media.leaseMs }),
  };
}

/**
 * Brings the schema of `config.database` up to date and closes it again (`talkgate migrate`); answers the
 * schema version. Throws a DatabaseRefusal when another talkgate process has the SQLite file or the schema
 * is newer than this build.
 */
export async function migrateStore(config: TalkgateConfig): Promise<number> {
  if (config.database.kind === "sqlite") return migrateSqliteFile(config.database.path);
  return migrateDatabase(config.database.url, config.postgres);
}

/** The database as messages name it: the SQLite file's path, or the URL without its password. */
export function describeDatabase(database: TalkgateConfig["database"]): string {
  return database.kind === "sqlite" ? database.path : redactedUrl(database.url);
}
