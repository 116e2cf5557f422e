// MP3 (MPEG-1/2/2.5 Audio Layer III): an optional ID3v2 tag, frames back to back, an optional ID3v1 tag.
import { type ByteReader, latin1, Malformed } from "./byte-reader.ts";

// Layer III bitrates in kbit/s by bitrate index (ISO/IEC 11172-3 §2.4.2.3, 13818-3 §2.4.2.3); index 0
// ("free format") gives no frame length and 15 is forbidden.
const BITRATES_V1 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATES_V2 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
// Sample rates by version bits (0: MPEG-2.5, 2: MPEG-2, 3: MPEG-1) and sampling frequency index.
const SAMPLE_RATES = new Map([
  [0, [11025, 12000, 8000]],
  [2, [22050, 24000, 16000]],
  [3, [44100, 48000, 32000]],
]);
const ID3V1_SIZE = 128;

interface FrameHeader {
  version: number;
  sampleRate: number;
  length: number;
}

/** True when `head` starts with an ID3v2 tag or an MPEG audio frame sync. */
export function looksLikeMp3(head: Uint8Array): boolean {
  return latin1(head.subarray(0, 3)) === "ID3" || (head[0] === 0xff && ((head[1] ?? 0) & 0xe0) === 0xe0);
}

/**
 * Checks that after any ID3v2 tags Layer III frames follow one another, each where the previous one's
 * header says it ends, to the end of the file or an ID3v1 tag. Only the 4-byte frame headers are read.
 * Throws {@link Malformed} naming the first problem.
 */
export async function checkMp3(file: ByteReader): Promise<void> {
  let at = 0;
  while (file.size - at >= 3 && (await file.text(at, 3)) === "ID3") at = await afterId3v2(file, at);
  let first: FrameHeader | undefined;
  let frames = 0;
  while (at < file.size) {
    if (frames >= 2 && file.size - at === ID3V1_SIZE && (await file.text(at, 3)) === "TAG") return;
    const frame = file.size - at >= 4 ? frameHeader(await file.bytes(at, 4)) : undefined;
    if (!frame) {
      const after = frames === 0 ? "" : ", where the previous frame ends";
      throw new Malformed(`not an MPEG audio frame at byte ${at}${after}`);
    }
    if (first && (frame.version !== first.version || frame.sampleRate !== first.sampleRate)) {
      throw new Malformed(`the frame at byte ${at} changes MPEG version or sample rate`);
    }
    if (at + frame.length > file.size) {
      throw new Malformed(`truncated: the frame at byte ${at} runs past the end of the file`);
    }
    first ??= frame;
    frames++;
    at += frame.length;
  }
  if (frames < 2) throw new Malformed("fewer than two MPEG audio frames");
}

// ID3v2 header (id3v2.4.0-structure §3.1): "ID3", version, revision, flags, a 28-bit syncsafe size that
// excludes the header and the footer (flag 0x10, v2.4 only).
async function afterId3v2(file: ByteReader, at: number): Promise<number> {
  if (file.size - at < 10) throw new Malformed("truncated: an ID3v2 tag is cut short");
  const [, , , major = 0, revision = 0, flags = 0, ...size] = await file.bytes(at, 10);
  if (major < 2 || major > 4 || revision === 0xff || size.some((byte) => byte >= 0x80)) {
    throw new Malformed(`a broken ID3v2 tag header at byte ${at}`);
  }
  const length = size.reduce((total, byte) => total * 128 + byte, 0);
  const end = at + 10 + length + (major === 4 && flags & 0x10 ? 10 : 0);
  if (end > file.size) throw new Malformed("truncated: the ID3v2 tag runs past the end of the file");
  return end;
}

// An MPEG audio frame header (11172-3 §2.4.1.3): sync, version, layer, bitrate, sample rate, padding.
function frameHeader(bytes: Uint8Array): FrameHeader | undefined {
  const [sync = 0, b1 = 0, b2 = 0, b3 = 0] = bytes;
  if (sync !== 0xff || (b1 & 0xe0) !== 0xe0) return undefined;
  const version = (b1 >> 3) & 3;
  const layer = (b1 >> 1) & 3;
  const rates = SAMPLE_RATES.get(version);
  const kbits = (version === 3 ? BITRATES_V1 : BITRATES_V2)[b2 >> 4] ?? 0;
  const sampleRate = rates?.[(b2 >> 2) & 3];
  // Layer bits 01 are Layer III; emphasis 10 is reserved.
  if (layer !== 1 || !sampleRate || kbits === 0 || (b3 & 3) === 2) return undefined;
  const padding = (b2 >> 1) & 1;
  // A Layer III frame holds 1152 samples in MPEG-1, 576 in MPEG-2 and 2.5: 144 or 72 bytes per kbit/s.
  const length = Math.floor(((version === 3 ? 144 : 72) * kbits * 1000) / sampleRate) + padding;
  return { version, sampleRate, length };
}
