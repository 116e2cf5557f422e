// ISO base media files (ISO/IEC 14496-12 §4.2): MP4 video and M4A audio, told apart by their tracks' handlers.
import { type ByteReader, latin1, Malformed, readUint } from "./byte-reader.ts";

// Major brands of MP4 (ISO/IEC 14496-14) and M4A files as encoders and phones write them; QuickTime
// ("qt  "), 3GPP, HEIF and AVIF images use the same boxes but are none of these.
const AUDIO_BRANDS = new Set(["M4A ", "M4B "]);
const BRANDS = new Set([
  ...AUDIO_BRANDS,
  ...["isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9"],
  ...["mp41", "mp42", "mp71", "avc1", "M4V ", "dash", "MSNV", "XAVC"],
]);
// A bound on the boxes walked, so a file of millions of empty boxes cannot keep the check busy.
const MAX_BOXES = 100_000;

interface Box {
  type: string;
  start: number;
  /** Where the box's contents start, after its header. */
  body: number;
  end: number;
}

/** True when `head` starts with an `ftyp` box. */
export function looksLikeIsoMedia(head: Uint8Array): boolean {
  return latin1(head.subarray(4, 8)) === "ftyp";
}

/** True when `head` starts with an `ftyp` box naming an audio-only brand (M4A, M4B). */
export function hasAudioBrand(head: Uint8Array): boolean {
  return looksLikeIsoMedia(head) && AUDIO_BRANDS.has(latin1(head.subarray(8, 12)));
}

/**
 * Checks that the top-level boxes tile the file, `ftyp` first with a known brand and one `moov`;
 * answers "video" when a track is video, "audio" when the tracks are sound only. Only box headers are
 * read, never the media data. Throws {@link Malformed} naming the first problem.
 */
export async function checkIsoMedia(file: ByteReader): Promise<"video" | "audio"> {
  const walked = { boxes: 0 };
  const top = await boxesIn(file, undefined, walked);
  const [first] = top;
  if (first?.type !== "ftyp") throw new Malformed("the first box is not ftyp");
  const brand = await checkFileType(file, first);
  if (top.filter((box) => box.type === "ftyp").length > 1) throw new Malformed("a second ftyp box");
  const movies = top.filter((box) => box.type === "moov");
  const [movie] = movies;
  if (!movie) throw new Malformed("no moov box");
  if (movies.length > 1) throw new Malformed("a second moov box");
  const handlers = new Set<string>();
  for (const track of await childrenNamed(file, movie, "trak", walked)) {
    const [media] = await childrenNamed(file, track, "mdia", walked);
    const [handler] = media ? await childrenNamed(file, media, "hdlr", walked) : [];
    // hdlr is a full box: version and flags, pre_defined, then handler_type (§8.4.3).
    if (!handler || handler.end - handler.body < 12) {
      throw new Malformed(`a track without a media handler (hdlr) at byte ${track.start}`);
    }
    handlers.add(await file.text(handler.body + 8, 4));
  }
  if (handlers.has("vide")) {
    if (AUDIO_BRANDS.has(brand)) throw new Malformed(`a video track in a file of the audio brand "${brand}"`);
    return "video";
  }
  if (handlers.has("soun")) return "audio";
  throw new Malformed("no audio or video track");
}

// ftyp (§4.3): major brand, minor version, then compatible brands of 4 bytes each.
async function checkFileType(file: ByteReader, box: Box): Promise<string> {
  const length = box.end - box.body;
  if (length < 8 || length % 4 !== 0) throw new Malformed("an ftyp box of bad length");
  const brand = await file.text(box.body, 4);
  if (!BRANDS.has(brand)) throw new Malformed(`the brand "${brand}" is not one of MP4 or M4A`);
  return brand;
}

async function childrenNamed(file: ByteReader, parent: Box, type: string, walked: { boxes: number }) {
  return (await boxesIn(file, parent, walked)).filter((box) => box.type === type);
}

// The boxes inside `parent` (the file's top-level boxes without one), which must end exactly where it ends.
async function boxesIn(file: ByteReader, parent: Box | undefined, walked: { boxes: number }): Promise<Box[]> {
  const where = parent ? `the end of its "${parent.type}" box` : "the end of the file";
  const end = parent?.end ?? file.size;
  const boxes: Box[] = [];
  for (let at = parent?.body ?? 0; at < end; ) {
    if (++walked.boxes > MAX_BOXES) throw new Malformed(`more than ${MAX_BOXES} boxes`);
    const left = end - at;
    if (left < 8) {
      throw new Malformed(parent ? `stray bytes at ${where} (byte ${at})` : "data after the last box");
    }
    const head = await file.bytes(at, 8);
    const type = latin1(head.subarray(4, 8));
    // Box types are four letters, digits or spaces (© in some metadata): anything else is not a box.
    if (!/^[A-Za-z0-9 \xa9]{4}$/.test(type)) throw new Malformed(`not a box at byte ${at}`);
    let size = readUint(head, 0, 4);
    let header = 8;
    if (size === 1) {
      if (left < 16) throw new Malformed(`the "${type}" box at byte ${at} runs past ${where}`);
      size = (await file.uint(at + 8, 4)) * 2 ** 32 + (await file.uint(at + 12, 4));
      header = 16;
    } else if (size === 0) {
      // Size 0: "the box extends to the end of the file", only for a box at the top level (§4.2).
      if (parent) throw new Malformed(`a box of size 0 inside the "${parent.type}" box at byte ${at}`);
      size = left;
    }
    if (size < header) throw new Malformed(`the "${type}" box at byte ${at} is shorter than its header`);
    if (size > left) throw new Malformed(`the "${type}" box at byte ${at} runs past ${where}`);
    boxes.push({ type, start: at, body: at + header, end: at + size });
    at += size;
  }
  return boxes;
}
