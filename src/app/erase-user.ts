// Erasure of one user's data in one channel (SPEC §12), for POST /line/user/erase and the admin API: what talkgate
// stored of them goes — texts, contents, attachments and their files, the messages partners sent them, their
// directory entry, their cached name — while their events stay, in order, and new ones are relayed as ever.
import type { Logger } from "pino";
import { TalkgateError } from "../core/errors.ts";
import type { Clock, MediaFiles } from "./ports.ts";
import type { ErasedUser, Retention } from "./store.ts";
import type { UserNames } from "./user-names.ts";

export interface EraseDeps {
  store: Pick<Retention, "eraseUser">;
  files: Pick<MediaFiles, "remove">;
  names: Pick<UserNames, "forget">;
  clock: Clock;
  logger: Pick<Logger, "error">;
}

/** What was erased: counts, never the data. */
export type ErasedCounts = Omit<ErasedUser, "files">;

export async function eraseUser(deps: EraseDeps, senderKey: string, userId: string): Promise<ErasedCounts> {
  const { files, ...counts } = await deps.store.eraseUser(senderKey, userId, deps.clock.now());
  deps.names.forget(senderKey, userId);
  const removals = await Promise.allSettled(files.map((path) => deps.files.remove(path)));
  const failed = removals.filter((r) => r.status === "rejected");
  for (const failure of failed) deps.logger.error({ err: failure.reason, senderKey }, "erase:remove:failed");
  if (failed.length > 0)
    throw new TalkgateError(
      "-600",
      `the user's data is erased from the database, but ${failed.length} attachment file(s) could not be removed ` +
        "(erase:remove:failed in the log names them)",
    );
  return counts;
}
