// Preloaded into the talkgate child (`node --import bench/memory-probe.ts …`) by the media scenario when
// BENCH_MEDIA_PROBE=1: appends `process.memoryUsage()` as one JSON line every BENCH_MEMORY_PROBE_MS (default
// 20) to BENCH_MEMORY_PROBE_FILE, so RSS growth can be split into V8 heap, external memory and ArrayBuffers.
// It changes nothing in talkgate; it only adds a timer to its event loop.
import { closeSync, openSync, writeSync } from "node:fs";

const file = process.env.BENCH_MEMORY_PROBE_FILE;
if (file) {
  const fd = openSync(file, "a");
  const everyMs = Number(process.env.BENCH_MEMORY_PROBE_MS) || 20;
  const sample = () => {
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    writeSync(fd, `${JSON.stringify({ t: Date.now(), rss, heapTotal, heapUsed, external, arrayBuffers })}\n`);
  };
  sample();
  setInterval(sample, everyMs).unref();
  process.once("exit", () => {
    sample();
    closeSync(fd);
  });
}
