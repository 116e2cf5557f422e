#!/usr/bin/env node
// Starts the talkgate command line (cli.ts) with Node's compile cache: the TypeScript sources are stripped and compiled
// once per change rather than at every start, so a running talkgate does not hold Node's type stripper (~18 MiB).
// The cache lives in NODE_COMPILE_CACHE, else under the temp directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
import module from "node:module";

module.enableCompileCache();
const { runCli } = await import("./cli.ts");
runCli(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
