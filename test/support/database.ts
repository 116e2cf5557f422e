// Which database the integration suites run on: SQLite (the default) or, with TALKGATE_TEST_DATABASE=postgres,
// a real PostgreSQL server this test process starts (test/support/postgres.ts). `npm test` runs them on both.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sharedPostgres } from "./postgres.ts";

export type TestDatabase = "sqlite" | "postgres";

function chosen(): TestDatabase {
  const value = process.env.TALKGATE_TEST_DATABASE ?? "sqlite";
  if (value !== "sqlite" && value !== "postgres")
    throw new Error(`TALKGATE_TEST_DATABASE=${value}: use sqlite or postgres`);
  return value;
}

/** The database this run of the suites is on. */
export const TEST_DATABASE: TestDatabase = chosen();

/**
 * The `database` setting for a test's data directory: a SQLite file in it, or a PostgreSQL database of its
 * own, made the first time and named in the directory, so that a restart on the same directory finds it.
 */
export async function testDatabaseUrl(dir: string): Promise<string> {
  if (TEST_DATABASE === "sqlite") return `sqlite:${join(dir, "talkgate.db")}`;
  const named = join(dir, "database-url");
  if (existsSync(named)) return readFileSync(named, "utf8");
  const url = await (await sharedPostgres()).createDatabase();
  writeFileSync(named, url);
  return url;
}
