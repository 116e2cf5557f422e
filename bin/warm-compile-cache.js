// Run by talkgate.js in a child process: imports the sources named on its command line so that Node strips their types
// and compiles them into the compile cache, then exits. Compiling is all it is for, so the packages they import are
// replaced by empty modules (loading them would double the time): the sources that import one fail to link and do
// not run; the others only define things, or throw outside their own thread (a worker's entry point). Either way each
// source is compiled, and cached, first.
import module from "node:module";

module.registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    return resolved.url.includes("/node_modules/")
      ? { url: "data:text/javascript,", shortCircuit: true }
      : resolved;
  },
});
await Promise.allSettled(process.argv.slice(2).map((url) => import(url)));
module.flushCompileCache();
process.exit(0);
