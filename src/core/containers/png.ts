// PNG (W3C PNG 3rd edition, §5): chunks with lengths and CRCs from IHDR to IEND, and nothing after IEND.
import { crc32 } from "node:zlib";
import { BLOCK, type ByteReader, latin1, Malformed, readUint } from "./byte-reader.ts";

const SIGNATURE = "\x89PNG\r\n\x1a\n";
// Bit depths allowed for each colour type (§11.2.1, table 11).
const DEPTHS = new Map([
  [0, [1, 2, 4, 8, 16]],
  [2, [8, 16]],
  [3, [1, 2, 4, 8]],
  [4, [8, 16]],
  [6, [8, 16]],
]);
const KNOWN_CRITICAL = new Set(["IHDR", "PLTE", "IDAT", "IEND"]);
const MAX_UINT31 = 2 ** 31 - 1;
// A bound on the chunks walked, so 10 MB of empty chunks cannot keep the check busy.
const MAX_CHUNKS = 100_000;

/** True when `head` starts with the PNG signature. */
export function looksLikePng(head: Uint8Array): boolean {
  return latin1(head.subarray(0, 8)) === SIGNATURE;
}

/** Checks every chunk of a PNG file; throws {@link Malformed} naming the first problem. */
export async function checkPng(file: ByteReader): Promise<void> {
  let at = SIGNATURE.length;
  let colourType = -1;
  let palette = false;
  let idat: "none" | "open" | "done" = "none";
  for (let index = 0; ; index++) {
    if (at === file.size) throw new Malformed("truncated: no IEND chunk");
    if (index === MAX_CHUNKS) throw new Malformed(`more than ${MAX_CHUNKS} chunks`);
    if (file.size - at < 12) throw new Malformed(`truncated: a chunk at byte ${at} is cut short`);
    const head = await file.bytes(at, 8);
    const length = readUint(head, 0, 4);
    const type = latin1(head.subarray(4, 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new Malformed(`not a chunk at byte ${at}`);
    if (length > MAX_UINT31) throw new Malformed(`the ${type} chunk at byte ${at} claims ${length} bytes`);
    const end = at + 12 + length;
    if (end > file.size) throw new Malformed(`truncated: the ${type} chunk runs past the end of the file`);
    // The CRC covers the chunk type and data (§5.3), read a block at a time.
    let crc = crc32(head.subarray(4, 8));
    for (let from = at + 8; from < at + 8 + length; from += BLOCK) {
      crc = crc32(await file.bytes(from, Math.min(BLOCK, at + 8 + length - from)), crc);
    }
    if (crc !== (await file.uint(at + 8 + length, 4))) {
      throw new Malformed(`bad CRC in the ${type} chunk at byte ${at}`);
    }
    if (index === 0 && type !== "IHDR") throw new Malformed(`the first chunk is ${type}, not IHDR`);
    if (idat === "open" && type !== "IDAT") idat = "done";
    switch (type) {
      case "IHDR":
        if (index !== 0) throw new Malformed("a second IHDR chunk");
        colourType = checkHeader(length === 13 ? await file.bytes(at + 8, 13) : undefined);
        break;
      case "PLTE":
        if (palette) throw new Malformed("a second PLTE chunk");
        if (idat !== "none") throw new Malformed("PLTE after IDAT");
        if (colourType === 0 || colourType === 4) throw new Malformed("PLTE in a greyscale image");
        if (length === 0 || length % 3 !== 0 || length > 256 * 3) throw new Malformed("a PLTE of bad length");
        palette = true;
        break;
      case "IDAT":
        if (idat === "done") throw new Malformed("IDAT chunks that are not consecutive");
        idat = "open";
        break;
      case "IEND":
        if (length !== 0) throw new Malformed("IEND with data");
        if (idat === "none") throw new Malformed("no IDAT chunk");
        if (colourType === 3 && !palette) throw new Malformed("no PLTE chunk in an indexed-colour image");
        if (end !== file.size) throw new Malformed("data after IEND");
        return;
      default:
        // An upper-case first letter marks a chunk a decoder must understand (§5.4).
        if (/^[A-Z]/.test(type) && !KNOWN_CRITICAL.has(type)) {
          throw new Malformed(`unknown critical chunk ${type}`);
        }
    }
    at = end;
  }
}

// IHDR (§11.2.1): answers the colour type once the fields are sane.
function checkHeader(data: Uint8Array | undefined): number {
  if (!data) throw new Malformed("an IHDR chunk of bad length");
  const width = readUint(data, 0, 4);
  const height = readUint(data, 4, 4);
  const [depth = 0, colourType = 0, compression, filter, interlace = 0] = data.subarray(8);
  if (width === 0 || height === 0 || width > MAX_UINT31 || height > MAX_UINT31) {
    throw new Malformed(`an image of ${width}×${height} pixels`);
  }
  if (!DEPTHS.get(colourType)?.includes(depth)) {
    throw new Malformed(`bit depth ${depth} with colour type ${colourType}`);
  }
  if (compression !== 0 || filter !== 0 || interlace > 1) {
    throw new Malformed("unknown compression, filter or interlace method in IHDR");
  }
  return colourType;
}
