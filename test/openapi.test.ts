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

test("the answer check (test/support/check-answers.ts) catches what the document does not describe", async () => {
  const { answerProblem } = await import("./support/check-answers.ts");
  assert.equal(
    answerProblem(
      "GET",
      "/line/deliveries",
      200,
      "application/json",
      '{"code":"0","partner":{"id":"p","state":"delivering","paused_until":null},"deliveries":[],"next_cursor":null}',
    ),
    null,
  );
  assert.match(
    answerProblem("GET", "/line/deliveries", 200, "application/json", '{"code":"0"}') ?? "",
    /deliveries/,
  );
  assert.match(answerProblem("GET", "/line/deliveries", 302, "", "") ?? "", /status 302 is not documented/);
  assert.match(
    answerProblem("GET", "/line/message/attachment", 416, "image/png", "") ?? "",
    /documented application\/json/,
  );
  assert.equal(answerProblem("GET", "/line/message/attachment", 200, "image/png", ""), null);
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
    "/line/deliveries",
    "/line/deliveries/replay",
  ]) {
    assert.ok(doc.paths[path], `${path} is documented`);
    for (const [method, operation] of Object.entries(doc.paths[path] ?? {})) {
      const { responses, operationId } = operation as {
        responses: Record<string, unknown>;
        operationId?: string;
      };
      assert.ok(
        Object.keys(responses).some((status) => /^2/.test(status)),
        `${method} ${path}: a 2xx answer`,
      );
      assert.ok(operationId, `${method} ${path}: an operationId`);
    }
  }
  const upload = doc.paths["/line/media"]?.post?.requestBody?.content["multipart/form-data"]?.schema;
  assert.ok(upload, "the upload's multipart body is described");
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
    const html = await page.text();
    assert.match(html, /swagger-initializer\.js/);
    assert.match(
      html,
      /<title>talkgate partner API \(상담톡 API\)<\/title>/,
      "a real title, not Swagger UI's",
    );
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
