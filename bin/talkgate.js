#!/usr/bin/env node
// Starts the talkgate command line (cli.ts) with Node's compile cache, so that the TypeScript sources are stripped
// once per change rather than at every start: neither talkgate nor its worker threads then load Node's type stripper.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import module from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

// Worker threads read the directory from the environment: enableCompileCache() covers this thread only.
process.env.NODE_COMPILE_CACHE ||= join(tmpdir(), "node-compile-cache");
module.enableCompileCache();
// Undefined when it is off (NODE_DISABLE_COMPILE_CACHE=1) or the directory cannot be written.
const cacheDir = module.getCompileCacheDir();
if (cacheDir) await warmCompileCache(cacheDir);

const { runCli } = await import("./cli.ts");
runCli(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});

/**
 * Fills the compile cache in a short-lived child process when it lacks these sources (first start, upgrade, emptied
 * temp directory): the type stripper then loads there, instead of staying in this process for its whole life (a worker
 * thread would not do: the memory it used stays with the process). A marker named after this installation and its
 * sources' sizes and times records a filled cache; it replaces the installation's previous one.
 */
async function warmCompileCache(cacheDir) {
  try {
    const sources = ["bin", "src", "emulator"].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile() && /(?<!\.test|\.d)\.ts$/.test(entry.name))
        .map((entry) => join(entry.parentPath, entry.name)),
    );
    const hash = createHash("sha256");
    for (const file of sources.sort()) {
      const { size, mtimeMs } = statSync(file);
      hash.update(`${relative(ROOT, file)}\0${size}\0${mtimeMs}\n`);
    }
    const installation = `talkgate-${createHash("sha256").update(ROOT).digest("hex").slice(0, 8)}-`;
    const marker = join(cacheDir, `${installation}${hash.digest("hex").slice(0, 16)}`);
    if (existsSync(marker)) return;
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(new URL("./warm-compile-cache.js", import.meta.url)),
        ...sources.map((f) => pathToFileURL(f).href),
      ],
      { stdio: "ignore" },
    );
    const [code] = await once(child, "exit");
    if (code !== 0) throw new Error(`warm-compile-cache.js exited with ${code}`);
    for (const name of readdirSync(cacheDir)) {
      if (name.startsWith(installation)) rmSync(join(cacheDir, name));
    }
    writeFileSync(marker, "");
  } catch (error) {
    // Only the footprint suffers: the sources are stripped here, as without a cache.
    process.emitWarning(`talkgate: could not fill the compile cache: ${error}`);
  }
}
