// Run by talkgate.js in a child process: imports the sources named on its command line so that Node strips their types
// and compiles them into the compile cache, then exits. A module that throws when run outside its own thread (a worker's
// entry point) is cached all the same: compiling comes before running.
import module from "node:module";

await Promise.allSettled(process.argv.slice(2).map((url) => import(url)));
module.flushCompileCache();
// Modules that start timers on import would keep the process alive.
process.exit(0);
