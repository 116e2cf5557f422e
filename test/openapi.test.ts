// The committed OpenAPI document (docs/openapi.json) is exactly what talkgate serves: regenerate with npm run openapi.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { servedOpenApi } from "../scripts/openapi.ts";

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
