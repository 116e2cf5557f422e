// npm run openapi: writes docs/openapi.json, the OpenAPI document of the partner API, as a running talkgate serves it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { parseConfig } from "../src/config/config.ts";
import { startTalkgate } from "../src/main.ts";

/** The document a talkgate with a minimal configuration serves at /line/openapi.json. */
export async function servedOpenApi(): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), "talkgate-openapi-"));
  const config = parseConfig(
    {
      listen: { host: "127.0.0.1", port: 0 },
      partners: [{ id: "p", receiveUrl: "http://127.0.0.1:9/line" }],
      channels: [{ senderKey: "1", channelSecret: "s", partner: "p" }],
    },
    { baseDir: dir },
  );
  const talkgate = await startTalkgate(config, { logger: pino({ level: "silent" }) });
  try {
    return await (await fetch(`${talkgate.url}/line/openapi.json`)).json();
  } finally {
    await talkgate.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  writeFileSync("docs/openapi.json", `${JSON.stringify(await servedOpenApi(), null, 2)}\n`);
  console.log("wrote docs/openapi.json");
}
