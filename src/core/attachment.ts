// Attachments (SPEC §5): which messages carry content to fetch from LINE, and what an unsent message keeps.
import { asObject, type JsonObject } from "./line-event.ts";
import { cutAtGrapheme } from "./long-text.ts";

export type MediaKind = "image" | "video" | "audio" | "file";

const MEDIA_KINDS: ReadonlySet<string> = new Set(["image", "video", "audio", "file"]);

/**
 * The kind of content a message event carries on LINE, to be downloaded: image, video and audio whose
 * `contentProvider.type` is `line`, and every file. Null for other messages and for `external` content,
 * whose URLs are in the payload already.
 */
export function attachmentKind(event: JsonObject): MediaKind | null {
  if (event.type !== "message") return null;
  const message = asObject(event.message);
  const kind = message?.type;
  if (typeof kind !== "string" || !MEDIA_KINDS.has(kind)) return null;
  if (kind !== "file" && asObject(message?.contentProvider)?.type === "external") return null;
  return kind as MediaKind;
}

/** The event with its message's content removed (the user unsent it): only the message's id and type stay. */
export function withoutContent(event: JsonObject): JsonObject {
  const message = asObject(event.message);
  if (!message) return event;
  return { ...event, message: { id: message.id, type: message.type } };
}

const EXTENSIONS = new Map<string, string>(
  Object.entries({
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "aac",
    "audio/mpeg": "mp3",
  }),
);

/**
 * The file name an attachment is served under: a file message's own name reduced to a plain name (no
 * directories, no control characters), else `<serial_number>.<extension of its content type>`.
 */
export function attachmentFileName(
  fileName: unknown,
  serialNumber: string,
  contentType: string | null,
): string {
  if (typeof fileName === "string") {
    const base = fileName.split(/[/\\]/).pop() ?? "";
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
    const clean = base.replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim();
    if (clean && clean !== "." && clean !== "..") return cutAtGrapheme(clean, 255);
  }
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return `${serialNumber}.${EXTENSIONS.get(type) ?? "bin"}`;
}
