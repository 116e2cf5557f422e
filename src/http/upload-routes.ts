// POST /line/media (partner API: upload a file to send) and GET /media/:name (public: LINE fetches it from here).
import { randomBytes } from "node:crypto";
import type { MultipartFile } from "@fastify/multipart";
import { Type } from "@sinclair/typebox";
import { create as contentDisposition } from "content-disposition";
import type { FastifyInstance } from "fastify";
import type { Clock, MediaFiles } from "../app/ports.ts";
import type { Uploads } from "../app/store.ts";
import { TalkgateError } from "../core/errors.ts";
import { checkUpload, UPLOAD_TYPES, type UploadCheck } from "../core/upload-type.ts";
import { serveFile } from "./serve-file.ts";

export interface UploadDeps {
  files: MediaFiles;
  publicBaseUrl: string;
  store: Pick<Uploads, "recordUploads" | "uploadUsage">;
  clock: Clock;
  /** Each partner's quota, how long uploads are kept, and the free space the disk keeps for the database. */
  uploads: { quotaBytes: number; quotaFiles: number; retentionMs: number; minFreeBytes: number };
}

// Unguessable names (32 random bytes) are the only protection of uploads: LINE fetches them without auth.
const NAME = /^([A-Za-z0-9_-]{43})\.([a-z0-9]{3,4})$/;
// What opening a name that is not a stored file fails with.
const MISSING = new Set<unknown>(["ENOENT", "ENOTDIR", "EISDIR"]);
const LARGEST = Math.max(...[...UPLOAD_TYPES.values()].map((type) => type.maxBytes));
const LARGEST_IMAGE = Math.max(
  ...[...UPLOAD_TYPES.values()].filter((type) => type.kind === "image").map((type) => type.maxBytes),
);
// The largest request: a file, a preview image, and room for the multipart framing.
const BODY_LIMIT = LARGEST + LARGEST_IMAGE + 64 * 1024;

const UploadAnswer = Type.Object({
  code: Type.Literal("0"),
  url: Type.String({ description: "the file's public URL (publicBaseUrl/media/…), for LINE to load" }),
  content_type: Type.String({ description: "as judged from the file's contents" }),
  size: Type.Integer({ description: "bytes" }),
  preview_url: Type.Optional(
    Type.String({ description: "the preview image's public URL, when one was sent" }),
  ),
});
// Pino's levels, most verbose first.
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** Registers POST /line/media in the (authenticated) partner API scope. */
export function registerUploadRoute(api: FastifyInstance, deps: UploadDeps): void {
  // @fastify/multipart traces its options with every request header (the partner's key among them), so
  // the route logs at info at the most verbose; a quieter parent (warn, silent) stays as quiet.
  const parent = LOG_LEVELS.find((level) => level === api.log.level);
  const logLevel = parent && LOG_LEVELS.indexOf(parent) > LOG_LEVELS.indexOf("info") ? parent : "info";
  const schema = { response: { 200: UploadAnswer } };
  api.post("/line/media", { logLevel, bodyLimit: BODY_LIMIT, schema }, async (request) => {
    if (!request.isMultipart())
      throw new TalkgateError("-415", "send multipart/form-data with a `file` part");
    const { partnerId } = request.partner;
    const room = await roomFor(deps, partnerId);
    const saved: Record<string, Stored> = {};
    try {
      for await (const part of request.files({ limits: { fileSize: LARGEST, files: 2 } })) {
        if (part.fieldname !== "file" && part.fieldname !== "preview") {
          part.file.resume();
          throw new TalkgateError(
            "-405",
            `${part.fieldname}: unknown part (send "file" and optionally "preview")`,
          );
        }
        if (saved[part.fieldname]) {
          part.file.resume();
          throw new TalkgateError("-405", `${part.fieldname}: sent twice (send one of each part)`);
        }
        const stored = await store(deps, part);
        saved[part.fieldname] = stored;
        room.bytes -= stored.size;
        if (room.bytes < 0) throw quotaFull(deps);
      }
      if (!saved.file) throw new TalkgateError("-405", "file: missing");
      await deps.store.recordUploads(partnerId, Object.values(saved), deps.clock.now());
    } catch (error) {
      // A refused request keeps none of its parts: no one learns their URLs, yet LINE could load them.
      await Promise.all(Object.values(saved).map((part) => deps.files.remove(part.name).catch(() => {})));
      throw uploadError(error);
    }
    const { file, preview } = saved;
    request.log.info(
      { partner: request.partner.partnerId, size: file.size, type: file.content_type },
      "upload:stored",
    );
    return {
      code: "0",
      url: file.url,
      content_type: file.content_type,
      size: file.size,
      ...(preview ? { preview_url: preview.url } : {}),
    };
  });
}

/**
 * What a partner may still upload: refused at once when the disk is down to the space kept free for the
 * database (uploads stop before webhook intake would), or the partner's quota is used up.
 */
async function roomFor(deps: UploadDeps, partnerId: string): Promise<{ bytes: number }> {
  const { quotaBytes, quotaFiles, retentionMs, minFreeBytes } = deps.uploads;
  if ((await deps.files.freeBytes()) < minFreeBytes) {
    throw new TalkgateError(
      "-600",
      "uploads are refused while the disk has less free space than media.minFreeBytes (kept for incoming webhooks)",
    );
  }
  const usage = await deps.store.uploadUsage(partnerId, deps.clock.now() - retentionMs);
  if (usage.files >= quotaFiles || usage.bytes >= quotaBytes) throw quotaFull(deps);
  return { bytes: quotaBytes - usage.bytes };
}

function quotaFull(deps: UploadDeps): TalkgateError {
  const { quotaBytes, quotaFiles, retentionMs } = deps.uploads;
  return new TalkgateError(
    "-507",
    `this partner's uploads fill its quota (${quotaFiles} files, ${quotaBytes} bytes: media.uploadQuotaFiles, ` +
      `media.uploadQuotaBytes); each is removed ${Math.round(retentionMs / 3_600_000)} h after its upload`,
  );
}

// Errors of the file system (ENOSPC, EACCES…) are storage failures; the others come from a body that is
// not well-formed multipart.
function uploadError(error: unknown): unknown {
  if (error instanceof TalkgateError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("FST_")) return error;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    return new TalkgateError("-600", "the upload could not be stored", { cause: error });
  }
  return new TalkgateError("-405", `body: not well-formed multipart/form-data (${(error as Error).message})`);
}

interface Stored {
  name: string;
  url: string;
  content_type: string;
  size: number;
}

async function store(deps: UploadDeps, part: MultipartFile): Promise<Stored> {
  const name = `uploads/${randomBytes(32).toString("base64url")}`;
  const { size } = await deps.files.save(name, part.file, null);
  try {
    if (part.file.truncated) {
      throw new TalkgateError("-413", `${part.fieldname}: larger than LINE accepts (${LARGEST} bytes)`);
    }
    const check = await checkUpload(size, (offset, length) => readRange(deps.files, name, offset, length));
    if (!check.ok || (part.fieldname === "preview" && check.type.kind !== "image")) {
      throw refusal(part.fieldname, check);
    }
    const finalName = `${name}.${check.type.extension}`;
    await deps.files.rename(name, finalName);
    return {
      name: finalName,
      url: `${deps.publicBaseUrl}/media/${finalName.slice("uploads/".length)}`,
      content_type: check.type.contentType,
      size,
    };
  } catch (error) {
    await deps.files.remove(name);
    throw error;
  }
}

// Why a stored part is refused, or for a preview that is not an image, that it must be one.
function refusal(field: string, check: UploadCheck): TalkgateError {
  if (check.ok) {
    return new TalkgateError("-415", `${field}: must be a JPEG or PNG image, not ${check.type.name}`);
  }
  switch (check.problem) {
    case "unknown":
      return new TalkgateError("-415", `${field}: not a JPEG or PNG image, MP4 video or M4A/MP3 audio`);
    case "too-large":
      return new TalkgateError(
        "-413",
        `${field}: ${check.type.kind} larger than LINE accepts (${check.type.maxBytes} bytes)`,
      );
    case "malformed":
      return new TalkgateError("-415", `${field}: not a well-formed ${check.type.name} (${check.reason})`);
  }
}

async function readRange(
  files: MediaFiles,
  name: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array();
  const chunks: Buffer[] = [];
  for await (const chunk of files.open(name, { start: offset, end: offset + length - 1 }))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Registers the public GET /media/:name that LINE's servers and apps load uploaded media from. */
export function registerPublicMediaRoute(app: FastifyInstance, deps: UploadDeps): void {
  // HEAD is served by the route itself: Fastify's own HEAD twin would answer Content-Length 0.
  app.route<{ Params: { name: string } }>({
    method: ["GET", "HEAD"],
    url: "/media/:name",
    handler: async (request, reply) => {
      const match = NAME.exec(request.params.name);
      const type = match?.[2] ? UPLOAD_TYPES.get(match[2]) : undefined;
      if (!match || !type) throw new TalkgateError("-508", "no such media");
      const source = await deps.files.openSource(`uploads/${request.params.name}`).catch((error: unknown) => {
        if (MISSING.has((error as { code?: unknown }).code)) throw new TalkgateError("-508", "no such media");
        throw error;
      });
      return serveFile(request, reply, {
        source,
        contentType: type.contentType,
        disposition: contentDisposition(request.params.name, { type: "inline" }),
        // A name is never reused for other bytes.
        etag: `"${match[1]}"`,
        cacheControl: "public, max-age=86400, immutable",
      });
    },
  });
}
