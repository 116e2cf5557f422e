// Tiny well-formed media files built byte by byte (lengths, CRCs and frame sizes computed), for upload tests.
import { crc32, deflateSync } from "node:zlib";

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

// ─── JPEG ───────────────────────────────────────────────────────────────────────────────────────────────

/** A JPEG marker segment: 0xFF, the marker code, a length that counts itself, then `data`. */
export function jpegSegment(code: number, data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0xff, code]), u16(data.length + 2), data]);
}

/** The segments of {@link jpeg} from APP0 to SOS, for tests that rearrange them. */
export function jpegSegments(options: { width?: number; height?: number } = {}) {
  const huffmanTable = (classAndId: number) =>
    jpegSegment(0xc4, Buffer.from([classAndId, 1, ...Array(15).fill(0), 0x00]));
  return {
    app0: jpegSegment(0xe0, Buffer.from("JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00", "latin1")),
    dqt: jpegSegment(0xdb, Buffer.from([0x00, ...Array(64).fill(1)])),
    sof0: jpegSegment(
      0xc0,
      Buffer.concat([
        Buffer.from([8]),
        u16(options.height ?? 1),
        u16(options.width ?? 1),
        Buffer.from([1, 1, 0x11, 0]),
      ]),
    ),
    // One code of length 1 per table: DC difference category 0, and AC end-of-block.
    dhtDc: huffmanTable(0x00),
    dhtAc: huffmanTable(0x10),
    sos: jpegSegment(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0])),
  };
}

/** The entropy-coded data of {@link jpeg}'s one block: DC 0, end of block ("00"), padded with 1 bits. */
export const JPEG_SCAN = Buffer.from([0x3f]);

/** A baseline JFIF image, mid grey, 1×1 pixels unless told otherwise. */
export function jpeg(options: { width?: number; height?: number } = {}): Buffer {
  const s = jpegSegments(options);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    s.app0,
    s.dqt,
    s.sof0,
    s.dhtDc,
    s.dhtAc,
    s.sos,
    JPEG_SCAN,
    Buffer.from([0xff, 0xd9]),
  ]);
}

// ─── PNG ────────────────────────────────────────────────────────────────────────────────────────────────

/** The 8-byte PNG signature. */
export const PNG_SIGNATURE = Buffer.from("\x89PNG\r\n\x1a\n", "latin1");

/** A PNG chunk: length, type, data, and the CRC of type and data. */
export function pngChunk(type: string, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const typeAndData = Buffer.concat([Buffer.from(type, "latin1"), data]);
  return Buffer.concat([u32(data.length), typeAndData, u32(crc32(typeAndData))]);
}

/** IHDR data: width, height, bit depth, colour type, then compression, filter and interlace methods 0. */
export function pngHeader(width = 1, height = 1, depth = 8, colourType = 0): Buffer {
  return Buffer.concat([u32(width), u32(height), Buffer.from([depth, colourType, 0, 0, 0])]);
}

/** A 1×1 8-bit greyscale image, mid grey; `extra` chunks go between IHDR and IDAT. */
export function png(extra: Buffer[] = []): Buffer {
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk("IHDR", pngHeader()),
    ...extra,
    // One scanline: filter type 0, one grey sample.
    pngChunk("IDAT", deflateSync(Buffer.from([0, 0x80]))),
    pngChunk("IEND"),
  ]);
}

// ─── ISO base media (MP4, M4A) ──────────────────────────────────────────────────────────────────────────

/** An ISO media box with a 32-bit size. */
export function box(type: string, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([u32(body.length + 8), Buffer.from(type, "latin1"), body]);
}

function fullBox(type: string, flags: number, ...contents: Uint8Array[]): Buffer {
  return box(type, u32(flags), ...contents);
}

const UNITY_MATRIX = Buffer.concat([0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000].map(u32));

/** A track of one handler type ("vide", "soun"…) and no samples: tkhd, mdhd, hdlr, minf with empty tables. */
export function isoTrack(handler: string, id = 1): Buffer {
  const header =
    handler === "vide" ? fullBox("vmhd", 1, Buffer.alloc(8)) : fullBox("smhd", 0, Buffer.alloc(4));
  return box(
    "trak",
    fullBox(
      "tkhd",
      3,
      Buffer.concat([u32(0), u32(0), u32(id), u32(0), u32(0), Buffer.alloc(8)]),
      Buffer.concat([u16(0), u16(0), u16(handler === "soun" ? 0x100 : 0), u16(0), UNITY_MATRIX]),
      Buffer.concat(handler === "vide" ? [u32(16 << 16), u32(16 << 16)] : [u32(0), u32(0)]),
    ),
    box(
      "mdia",
      // Language "und", packed as three 5-bit letters.
      fullBox("mdhd", 0, u32(0), u32(0), u32(1000), u32(0), u16(0x55c4), u16(0)),
      fullBox("hdlr", 0, u32(0), Buffer.from(handler, "latin1"), Buffer.alloc(12), Buffer.from("talkgate\0")),
      box(
        "minf",
        header,
        box("dinf", fullBox("dref", 0, u32(1), fullBox("url ", 1))),
        box(
          "stbl",
          fullBox("stsd", 0, u32(0)),
          fullBox("stts", 0, u32(0)),
          fullBox("stsc", 0, u32(0)),
          fullBox("stsz", 0, u32(0), u32(0)),
          fullBox("stco", 0, u32(0)),
        ),
      ),
    ),
  );
}

/** An ftyp box: major brand, minor version 0x200, compatible brands. */
export function ftyp(brand: string, compatible: string[] = [brand]): Buffer {
  return box("ftyp", Buffer.from(brand, "latin1"), u32(0x200), Buffer.from(compatible.join(""), "latin1"));
}

/** A movie: ftyp, moov with a track per handler, and an mdat of `data`. */
export function isoMedia(options: { brand?: string; handlers?: string[]; data?: Buffer } = {}): Buffer {
  const brand = options.brand ?? "isom";
  const handlers = options.handlers ?? ["vide", "soun"];
  const mvhd = fullBox(
    "mvhd",
    0,
    Buffer.concat([u32(0), u32(0), u32(1000), u32(0), u32(0x10000), u16(0x100), Buffer.alloc(10)]),
    Buffer.concat([UNITY_MATRIX, Buffer.alloc(24), u32(handlers.length + 1)]),
  );
  return Buffer.concat([
    ftyp(brand, [brand, "isom", "mp41"]),
    box("moov", mvhd, ...handlers.map((handler, i) => isoTrack(handler, i + 1))),
    box("mdat", options.data ?? Buffer.from("media data")),
  ]);
}

/** An MP4 video: brand isom, a video and a sound track. */
export function mp4(): Buffer {
  return isoMedia();
}

/** An M4A audio file: brand "M4A ", one sound track. */
export function m4a(): Buffer {
  return isoMedia({ brand: "M4A ", handlers: ["soun"] });
}

// ─── MP3 ────────────────────────────────────────────────────────────────────────────────────────────────

/** An MPEG-1 Layer III frame header: 32 kbit/s, 48 kHz, mono, no CRC; its frame is 96 bytes. */
export const MP3_FRAME_HEADER = Buffer.from([0xff, 0xfb, 0x14, 0xc0]);

/** One frame of silence (side information and main data all zero) behind `header`. */
export function mp3Frame(header: Buffer = MP3_FRAME_HEADER, length = 96): Buffer {
  return Buffer.concat([header, Buffer.alloc(length - header.length)]);
}

/** An ID3v2.4 tag with one title frame. */
export function id3v2(title = "talkgate"): Buffer {
  const text = Buffer.concat([Buffer.from([3]), Buffer.from(title, "utf8")]);
  const frame = Buffer.concat([Buffer.from("TIT2"), syncsafe(text.length), u16(0), text]);
  return Buffer.concat([Buffer.from("ID3\x04\x00\x00", "latin1"), syncsafe(frame.length), frame]);
}

function syncsafe(value: number): Buffer {
  return Buffer.from([(value >> 21) & 127, (value >> 14) & 127, (value >> 7) & 127, value & 127]);
}

/** An MP3 file: an ID3v2 tag (unless `id3` is false), then `frames` silent frames. */
export function mp3(options: { frames?: number; id3?: boolean } = {}): Buffer {
  const frames = Array.from({ length: options.frames ?? 3 }, () => mp3Frame());
  return Buffer.concat([...(options.id3 === false ? [] : [id3v2()]), ...frames]);
}
