// The refusal a database gives at open that an operator has to act on, not a bug: told as one line by the CLI.

/**
 * talkgate may not use this database as it is: another talkgate process has the SQLite file (or its lock
 * cannot be taken), or the schema is newer than this build knows. The message is one line that names the
 * database (never its password).
 */
export class DatabaseRefusal extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DatabaseRefusal";
  }
}
