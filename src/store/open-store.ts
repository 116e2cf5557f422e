// Opens the store that the configuration's database URL names.
import type { Store } from "../app/store.ts";
import type { TalkgateConfig } from "../config/config.ts";
import { openSqliteStore } from "./sqlite/sqlite-store.ts";

/** The store of `database` (`sqlite:<path>`), its schema brought up to date. */
export function openStore(database: TalkgateConfig["database"]): Store {
  return openSqliteStore(database.path);
}
