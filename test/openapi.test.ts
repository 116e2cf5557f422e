// The committed OpenAPI document (docs/openapi.json) is exactly what talkgate serves (regenerate with npm run openapi), and /line/docs shows it.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import pino from "pino";
import { servedOpenApi } from "../scripts/openapi.ts";
import { parseConfig } from "../src/config/config.ts";
import { startTalkgate } from "../src/main.ts";

test("docs/openapi.json matches the document generated from the route schemas", async () => {
  const committed: unknown = JSON.parse(readFileSync("docs/openapi.json", "utf8"));
  assert.deepEqual(committed, await servedOpenApi(), "run `npm run openapi` and commit docs/openapi.json");
});

test("the document describes every partner API route, and LINE message objects in full", async () => {
  const doc = (await servedOpenApi()) as {
    openapi: string;
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
    components: { schemas: Record<string, unknown> };
  };
  assert.equal(doc.openapi, "3.1.0");
  for (const path of [
    "/line/message/send",
    "/line/message/long",
    "/line/message/attachment",
    "/line/media",
    "/line/chat/loading",
    "/line/chat/read",
    "/line/user/profile",
    "/line/user",
    "/line/channel/webhook/endpoint/set",
    "/line/channel/webhook/endpoint/info",
  ]) {
    assert.ok(doc.paths[path], `${path} is documented`);
  }
  assert.ok(!doc.paths["/line/webhook/{senderKey}"], "LINE's webhook is not part of the partner API");
  const send = doc.paths["/line/message/send"]?.post?.requestBody?.content["application/json"]?.schema as {
    properties: { messages: { items: { $ref: string } } };
  };
  assert.equal(send.properties.messages.items.$ref, "#/components/schemas/LineMessage");
  assert.ok(doc.components.schemas.LineMessage);
});

test("/line/docs serves the readable page and its assets (loaded on the first request)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "talkgate-docs-"));
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
    // Two first requests at once share one loading.
    const [page, document] = await Promise.all([
      fetch(`${talkgate.url}/line/docs`),
      fetch(`${talkgate.url}/line/openapi.json`),
    ]);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await page.text(), /swagger-initializer\.js/);
    assert.equal(((await document.json()) as { openapi: string }).openapi, "3.1.0");
    const head = await fetch(`${talkgate.url}/line/docs`, { method: "HEAD" });
    assert.equal(head.status, 200);
    const bundle = await fetch(`${talkgate.url}/line/docs/static/swagger-ui-bundle.js`);
    assert.equal(bundle.status, 200);
    assert.ok((await bundle.arrayBuffer()).byteLength > 100_000);
    const json = await fetch(`${talkgate.url}/line/docs/json`);
    assert.deepEqual(await json.json(), await (await fetch(`${talkgate.url}/line/openapi.json`)).json());
    const missing = await fetch(`${talkgate.url}/line/docs/nope`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, "-601");
  } finally {
    await talkgate.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
