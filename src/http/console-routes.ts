// The operator console's files (SPEC §10): console/index.html at /console and the files of console/assets/ at
// /console/assets/<file>, read once, each answer under a CSP that lets the page load nothing but talkgate's own.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { extname } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TalkgateError } from "../core/errors.ts";

/** The Content-Security-Policy of every console answer: no inline code or style, no other origin. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

const FOLDER = new URL("../../console/", import.meta.url);

/** The types of the files the console is made of; other files of console/assets/ are not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

interface ConsoleFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

async function readConsoleFile(url: URL): Promise<ConsoleFile> {
  const body = await readFile(url);
  const digest = createHash("sha256").update(body).digest("base64url").slice(0, 22);
  return { body, contentType: CONTENT_TYPES[extname(url.pathname)] ?? "", etag: `"${digest}"` };
}

/** index.html and the assets by file name: only these are ever answered, whatever a request names. */
async function readConsoleFiles(): Promise<{ index: ConsoleFile; assets: Map<string, ConsoleFile> }> {
  const assets = new Map<string, ConsoleFile>();
  for (const name of await readdir(new URL("assets/", FOLDER))) {
    if (CONTENT_TYPES[extname(name)])
      assets.set(name, await readConsoleFile(new URL(`assets/${name}`, FOLDER)));
  }
  return { index: await readConsoleFile(new URL("index.html", FOLDER)), assets };
}

function send(request: FastifyRequest, reply: FastifyReply, file: ConsoleFile): FastifyReply {
  // no-cache: the browser asks again each time, and a matching ETag costs a 304 without the body.
  reply
    .header("content-type", file.contentType)
    .header("etag", file.etag)
    .header("cache-control", "no-cache");
  if (request.headers["if-none-match"] === file.etag) return reply.status(304).send();
  return reply.send(file.body);
}

/** Registers GET /console, /console/ and /console/assets/:file; the files are read at the first request. */
export function registerConsoleRoutes(app: FastifyInstance): void {
  let files: ReturnType<typeof readConsoleFiles> | undefined;
  const consoleFiles = () => {
    files ??= readConsoleFiles();
    return files;
  };
  void app.register(async (scope) => {
    scope.addHook("onSend", async (_request, reply, payload) => {
      reply
        .header("content-security-policy", CONSOLE_CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer");
      return payload;
    });
    const index = async (request: FastifyRequest, reply: FastifyReply) =>
      send(request, reply, (await consoleFiles()).index);
    scope.get("/console", index);
    scope.get("/console/", index);
    scope.get<{ Params: { file: string } }>("/console/assets/:file", async (request, reply) => {
      const file = (await consoleFiles()).assets.get(request.params.file);
      if (!file) throw new TalkgateError("-601", `no console file ${JSON.stringify(request.params.file)}`);
      return send(request, reply, file);
    });
  });
}
