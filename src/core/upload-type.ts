// What an uploaded file is, by parsing its container (never by its name or declared type), and LINE's size limits.
import { ByteReader, Malformed, type ReadAt } from "./containers/byte-reader.ts";
import { checkIsoMedia, hasAudioBrand, looksLikeIsoMedia } from "./containers/iso-media.ts";
import { checkJpeg, looksLikeJpeg } from "./containers/jpeg.ts";
import { checkMp3, looksLikeMp3 } from "./containers/mp3.ts";
import { checkPng, looksLikePng } from "./containers/png.ts";

export type { ReadAt } from "./containers/byte-reader.ts";

export interface UploadType {
  kind: "image" | "video" | "audio";
  /** What to call it in messages ("PNG image"). */
  name: string;
  contentType: string;
  extension: string;
  /** LINE's limit for sending this kind (Messaging API reference). */
  maxBytes: number;
}

const MB = 1024 * 1024;
const JPEG: UploadType = {
  kind: "image",
  name: "JPEG image",
  contentType: "image/jpeg",
  extension: "jpg",
  maxBytes: 10 * MB,
};
const PNG: UploadType = {
  kind: "image",
  name: "PNG image",
  contentType: "image/png",
  extension: "png",
  maxBytes: 10 * MB,
};
const MP4: UploadType = {
  kind: "video",
  name: "MP4 video",
  contentType: "video/mp4",
  extension: "mp4",
  maxBytes: 200 * MB,
};
const M4A: UploadType = {
  kind: "audio",
  name: "M4A audio",
  contentType: "audio/x-m4a",
  extension: "m4a",
  maxBytes: 200 * MB,
};
const MP3: UploadType = {
  kind: "audio",
  name: "MP3 audio",
  contentType: "audio/mpeg",
  extension: "mp3",
  maxBytes: 200 * MB,
};

/** The types LINE accepts for image, video and audio messages, by extension. */
export const UPLOAD_TYPES: ReadonlyMap<string, UploadType> = new Map(
  [JPEG, PNG, MP4, M4A, MP3].map((type) => [type.extension, type]),
);

interface Format {
  looksLike(head: Uint8Array): boolean;
  /** The type the first bytes claim, for the size limit and messages before the whole check. */
  claimed(head: Uint8Array): UploadType;
  check(file: ByteReader): Promise<UploadType>;
}

const FORMATS: Format[] = [
  { looksLike: looksLikeJpeg, claimed: () => JPEG, check: (file) => checkJpeg(file).then(() => JPEG) },
  { looksLike: looksLikePng, claimed: () => PNG, check: (file) => checkPng(file).then(() => PNG) },
  {
    looksLike: looksLikeIsoMedia,
    claimed: (head) => (hasAudioBrand(head) ? M4A : MP4),
    check: async (file) => ((await checkIsoMedia(file)) === "audio" ? M4A : MP4),
  },
  { looksLike: looksLikeMp3, claimed: () => MP3, check: (file) => checkMp3(file).then(() => MP3) },
];
// Enough for every format's signature and the brand of an ftyp box.
const HEAD_BYTES = 12;

/** What {@link checkUpload} found: a type, or why the file is refused. */
export type UploadCheck =
  | { ok: true; type: UploadType }
  /** Not even the start of a type LINE takes. */
  | { ok: false; problem: "unknown" }
  /** Starts like `type` but is over LINE's limit for it (checked before the structure). */
  | { ok: false; problem: "too-large"; type: UploadType }
  /** Starts like `type` but is not a well-formed one; `reason` says why in plain words. */
  | { ok: false; problem: "malformed"; type: UploadType; reason: string };

/**
 * Decides what an uploaded file is by parsing its container through `read`: JPEG marker segments to
 * EOI, PNG chunks and CRCs to IEND, ISO media boxes tiling the file (M4A when its tracks are sound
 * only), MP3 frames back to back. Bytes after the container's end are refused. Video and audio are
 * read a header at a time, never whole; images (at most 10 MB) are read through.
 */
export async function checkUpload(size: number, read: ReadAt): Promise<UploadCheck> {
  const file = new ByteReader(size, read);
  const head = await file.bytes(0, Math.min(size, HEAD_BYTES));
  const format = FORMATS.find((candidate) => candidate.looksLike(head));
  if (!format) return { ok: false, problem: "unknown" };
  const claimed = format.claimed(head);
  if (size > claimed.maxBytes) return { ok: false, problem: "too-large", type: claimed };
  try {
    return { ok: true, type: await format.check(file) };
  } catch (error) {
    if (!(error instanceof Malformed)) throw error;
    return { ok: false, problem: "malformed", type: claimed, reason: error.message };
  }
}
