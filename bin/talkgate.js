#!/usr/bin/env node
// Starts the talkgate command line (cli.ts) with Node's compile cache: the TypeScript sources are stripped and compiled
// once per change rather than at every start, so a running talkgate does not hold Node's type stripper (~18 MiB).
// The cache lives in NODE_COMPILE_CACHE, else under the temp directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
import module from "node:module";

// Plain JavaScript up to here, so that an older Node says what it lacks instead of failing on syntax.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`talkgate: needs Node.js 22.18 or later (this is ${process.version}); CI runs Node 24`);
  process.exit(1);
}
module.enableCompileCache();
const { CliError, runCli } = await import("./cli.ts");
runCli(process.argv.slice(2)).catch((error) => {
  // Expected failures are one line; anything else is a bug, shown whole.
  console.error(error instanceof CliError ? `talkgate: ${error.message}` : error);
  process.exit(error instanceof CliError ? error.exitCode : 1);
});
