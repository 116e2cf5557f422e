// In-process tests of POST /line/media's logging: never more verbose than info, never louder than talkgate's logger.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyBaseLogger, LogController } from "fastify";
import pino from "pino";
import { png } from "../../test/support/media-fixtures.ts";
import { DiskMediaFiles } from "../media/disk-media-files.ts";
import { PartnerKeys } from "./partner-auth.ts";
import { registerUploadRoute } from "./upload-routes.ts";

const KEY = "tg_live_upload_log_0123456789abcdef";
const keys = new PartnerKeys([{ id: "partner", apiKeys: [KEY] }], []);
const dir = mkdtempSync(join(tmpdir(), "talkgate-upload-log-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Uploads a PNG to an app whose logger is at `level`; answers the status and every line logged. */
async function uploadLoggedAt(level: string) {
  const lines: string[] = [];
  const logger = pino({ level }, { write: (line: string) => lines.push(line) });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(async (api) => {
    api.addHook("onRequest", async (request) => {
      request.partner = keys.authenticate(request.headers.authorization);
    });
    await api.register(multipart);
    registerUploadRoute(api, {
      files: new DiskMediaFiles(dir),
      publicBaseUrl: "https://talkgate.example",
      store: { recordUploads: async () => {}, uploadUsage: async () => ({ files: 0, bytes: 0 }) },
      clock: { now: () => Date.now() },
      uploads: { quotaBytes: 1_000_000, quotaFiles: 10, retentionMs: 60_000, minFreeBytes: 0 },
    });
  });
  const form = new FormData();
  form.append("file", new Blob([png()]), "a.png");
  const body = new Request("http://talkgate.example/", { method: "POST", body: form });
  const response = await app.inject({
    method: "POST",
    url: "/line/media",
    headers: { authorization: `Bearer ${KEY}`, "content-type": body.headers.get("content-type") ?? "" },
    payload: Buffer.from(await body.arrayBuffer()),
  });
  await app.close();
  return { status: response.statusCode, lines };
}

for (const level of ["silent", "fatal", "error", "warn"]) {
  test(`with talkgate's logger at ${level}, an upload logs nothing`, async () => {
    const { status, lines } = await uploadLoggedAt(level);
    assert.equal(status, 200);
    assert.deepEqual(lines, []);
  });
}

for (const level of ["info", "debug", "trace"]) {
  test(`with talkgate's logger at ${level}, an upload logs upload:stored and never the request's headers`, async () => {
    const { status, lines } = await uploadLoggedAt(level);
    assert.equal(status, 200);
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).msg),
      ["upload:stored"],
    );
    assert.ok(!lines.some((line) => line.includes(KEY)));
  });
}
