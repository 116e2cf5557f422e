// What an uploaded file is, by its first bytes (never by its name or declared type), and LINE's size limits.

export interface UploadType {
  kind: "image" | "video" | "audio";
  contentType: string;
  extension: string;
  /** LINE's limit for sending this kind (Messaging API reference). */
  maxBytes: number;
}

const MB = 1024 * 1024;
const JPEG: UploadType = { kind: "image", contentType: "image/jpeg", extension: "jpg", maxBytes: 10 * MB };
const PNG: UploadType = { kind: "image", contentType: "image/png", extension: "png", maxBytes: 10 * MB };
const MP4: UploadType = { kind: "video", contentType: "video/mp4", extension: "mp4", maxBytes: 200 * MB };
const M4A: UploadType = { kind: "audio", contentType: "audio/x-m4a", extension: "m4a", maxBytes: 200 * MB };
const MP3: UploadType = { kind: "audio", contentType: "audio/mpeg", extension: "mp3", maxBytes: 200 * MB };

/** The types LINE accepts for image, video and audio messages, by extension. */
export const UPLOAD_TYPES: ReadonlyMap<string, UploadType> = new Map(
  [JPEG, PNG, MP4, M4A, MP3].map((type) => [type.extension, type]),
);

/** The upload type of a file from its first bytes (16 are enough), or null when LINE would not take it. */
export function detectUploadType(head: Uint8Array): UploadType | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return JPEG;
  if (ascii(0, 8) === "\x89PNG\r\n\x1a\n") return PNG;
  // ISO base media files: a box of type "ftyp" whose major brand tells audio (M4A) from video.
  if (ascii(4, 8) === "ftyp") return /^M4[AB] /.test(ascii(8, 12)) ? M4A : MP4;
  if (ascii(0, 3) === "ID3" || (head[0] === 0xff && ((head[1] ?? 0) & 0xe0) === 0xe0)) return MP3;
  return null;
}
