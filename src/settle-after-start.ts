// Returns the garbage of starting up to the system once talkgate is ready (the CLI's `serve` calls it).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Runs one memory-reducing full GC. Loading ~750 modules and compiling the route schemas leaves
 * tens of MB of garbage and a young generation grown to 16 MB semi-spaces; V8 would otherwise keep
 * them while talkgate idles (its memory reducer did not within minutes). Takes ~100 ms, once.
 */
export function settleAfterStart(): void {
  // V8 offers a forced collection only through its gc extension, installed in contexts made while
  // --expose-gc is set.
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (options: object) => void;
  setFlagsFromString("--no-expose-gc");
  // "last-resort" is V8's collection for memory pressure: it compacts and shrinks the heap.
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
}
