// JPEG (ITU-T T.81, Annex B): marker segments with their lengths, one frame header, scans, EOI as the last bytes.
import { BLOCK, type ByteReader, Malformed, readUint } from "./byte-reader.ts";

const EOI = 0xd9;
const SOS = 0xda;
// SOF0–SOF15 less DHT (0xC4), JPG (0xC8) and DAC (0xCC) (T.81 table B.1).
const FRAME_HEADERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
// A bound on the segments walked, so 10 MB of empty segments cannot keep the check busy.
const MAX_SEGMENTS = 100_000;

/** True when `head` starts with SOI and another marker. */
export function looksLikeJpeg(head: Uint8Array): boolean {
  return head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
}

/** Checks the structure of a JPEG file; throws {@link Malformed} naming the first problem. */
export async function checkJpeg(file: ByteReader): Promise<void> {
  let at = 2;
  let frame = false;
  let scans = 0;
  for (let segments = 0; ; segments++) {
    if (segments === MAX_SEGMENTS) throw new Malformed(`more than ${MAX_SEGMENTS} segments`);
    if (file.size - at < 2) throw new Malformed("truncated: no EOI marker");
    if ((await file.uint(at, 1)) !== 0xff) throw new Malformed(`not a marker at byte ${at}`);
    // Any marker may be preceded by fill bytes 0xFF (B.1.1.2).
    let code = await file.uint(at + 1, 1);
    while (code === 0xff) {
      at++;
      if (file.size - at < 2) throw new Malformed("truncated: no EOI marker");
      code = await file.uint(at + 1, 1);
    }
    const start = at;
    at += 2;
    if (code === EOI) {
      if (scans === 0) throw new Malformed("EOI before any scan");
      if (at !== file.size) throw new Malformed("data after EOI");
      return;
    }
    // Below 0xC0 only TEM and reserved codes; SOI again or RSTn outside a scan do not belong here either.
    if (code < 0xc0 || code === 0xd8 || (code >= 0xd0 && code <= 0xd7)) {
      throw new Malformed(`unexpected marker 0xFF${hex(code)} at byte ${start}`);
    }
    if (file.size - at < 2) throw new Malformed("truncated: no EOI marker");
    const length = await file.uint(at, 2);
    if (length < 2) throw new Malformed(`a segment of length ${length} at byte ${start}`);
    if (at + length > file.size) {
      throw new Malformed(`truncated: the segment at byte ${start} runs past the end of the file`);
    }
    if (FRAME_HEADERS.has(code)) {
      if (frame) throw new Malformed(`a second frame header at byte ${start}`);
      checkFrameHeader(await file.bytes(at, length));
      frame = true;
    } else if (code === SOS) {
      if (!frame) throw new Malformed("a scan before the frame header (SOF)");
      checkScanHeader(await file.bytes(at, length));
      scans++;
      at = await afterEntropyCodedData(file, at + length);
      continue;
    }
    at += length;
  }
}

// SOFn (B.2.2): Lf, P, Y, X, Nf, then Nf components of 3 bytes.
function checkFrameHeader(segment: Uint8Array): void {
  const height = readUint(segment, 3, 2);
  const width = readUint(segment, 5, 2);
  const components = segment[7] ?? 0;
  if (segment.length < 8 || segment.length !== 8 + 3 * components) {
    throw new Malformed("a frame header (SOF) of bad length");
  }
  if (width === 0 || height === 0) throw new Malformed(`a frame of ${width}×${height} pixels`);
  if (components < 1 || components > 4) throw new Malformed(`a frame of ${components} components`);
  for (let i = 0; i < components; i++) {
    const sampling = segment[9 + 3 * i] ?? 0;
    const table = segment[10 + 3 * i] ?? 0;
    if (sampling >> 4 < 1 || sampling >> 4 > 4 || (sampling & 15) < 1 || (sampling & 15) > 4 || table > 3) {
      throw new Malformed("a frame component with bad sampling factors or table");
    }
  }
}

// SOS (B.2.3): Ls, Ns, then Ns components of 2 bytes and 3 bytes of spectral selection.
function checkScanHeader(segment: Uint8Array): void {
  const components = segment[2] ?? 0;
  if (components < 1 || components > 4 || segment.length !== 6 + 2 * components) {
    throw new Malformed("a scan header (SOS) of bad length");
  }
}

// Entropy-coded data runs to the next marker: 0xFF is followed by 0x00 (a stuffed byte) or RSTn
// within it (B.1.1.5). Answers where that next marker starts.
async function afterEntropyCodedData(file: ByteReader, from: number): Promise<number> {
  let at = from;
  while (at < file.size) {
    const block = await file.bytes(at, Math.min(BLOCK, file.size - at));
    let i = block.indexOf(0xff);
    while (i !== -1 && i + 1 < block.length) {
      const next = block[i + 1] ?? 0;
      if (next !== 0x00 && (next < 0xd0 || next > 0xd7)) return at + i;
      i = block.indexOf(0xff, i + 2);
    }
    if (i === -1) at += block.length;
    else if (at + i + 1 < file.size) at += i;
    else break;
  }
  throw new Malformed("truncated: no EOI marker");
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, "0");
}
