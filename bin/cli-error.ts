// The CLI's one failure type: reported as one line (no stack trace), exiting with its code.

/** A failure the CLI reports as one line (no stack trace), exiting with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}
