// Unit tests for upload typing: well-formed JPEG, PNG, MP4, M4A and MP3 accepted; truncated, mis-sized and polyglot files refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateSync } from "node:zlib";
import {
  box,
  ftyp,
  id3v2,
  isoMedia,
  isoTrack,
  JPEG_SCAN,
  jpeg,
  jpegSegment,
  jpegSegments,
  MP3_FRAME_HEADER,
  m4a,
  mp3,
  mp3Frame,
  mp4,
  PNG_SIGNATURE,
  png,
  pngChunk,
  pngHeader,
} from "../../test/support/media-fixtures.ts";
import { checkUpload, type UploadCheck } from "./upload-type.ts";

const HTML = Buffer.from("<html><script>alert(document.domain)</script></html>");
const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);

function check(bytes: Buffer): Promise<UploadCheck> {
  return checkUpload(bytes.length, async (offset, length) => bytes.subarray(offset, offset + length));
}

/** `bytes` with `insert` put at `at` (negative: from the end). */
function inserted(bytes: Buffer, at: number, insert: Buffer): Buffer {
  const cut = at < 0 ? bytes.length + at : at;
  return Buffer.concat([bytes.subarray(0, cut), insert, bytes.subarray(cut)]);
}

/** A copy of `bytes` with the byte at `at` (negative: from the end) inverted. */
function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  const index = at < 0 ? copy.length + at : at;
  copy[index] = (copy[index] ?? 0) ^ 0xff;
  return copy;
}

/** `bytes` with the big-endian uint32 at `at` replaced by `value`. */
function withUint32(bytes: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt32BE(value, at);
  return copy;
}

// [what, bytes, content type when accepted | the reason's pattern when refused as malformed]
type Case = [string, Buffer, string | RegExp];

const s = jpegSegments();
const jpegOf = (...parts: Buffer[]) => Buffer.concat([SOI, ...parts, EOI]);
const JPEG_CASES: Case[] = [
  ["a baseline JFIF image", jpeg(), "image/jpeg"],
  ["a 4000×3000 frame header", jpeg({ width: 4000, height: 3000 }), "image/jpeg"],
  [
    "stuffed bytes, restart markers and fill bytes",
    jpegOf(
      s.dqt,
      s.sof0,
      s.dhtDc,
      s.dhtAc,
      s.sos,
      JPEG_SCAN,
      Buffer.from([0xff, 0x00, 0xff, 0xd0, 0x12, 0xff]),
    ),
    "image/jpeg",
  ],
  [
    "two scans (as progressive images have) with a table between them",
    jpegOf(s.dqt, s.sof0, s.dhtDc, s.dhtAc, s.sos, JPEG_SCAN, s.dhtAc, s.sos, JPEG_SCAN),
    "image/jpeg",
  ],
  ["cut inside the scan", jpeg().subarray(0, -2), /truncated: no EOI marker/],
  ["cut inside a segment", jpeg().subarray(0, 30), /truncated: the segment at byte 20 runs past the end/],
  ["only SOI", SOI, "unknown"],
  ["SOI then EOI", jpegOf(), /EOI before any scan/],
  [
    "a segment longer than the file",
    jpegOf(jpegSegment(0xe0, Buffer.alloc(4)).fill(0xee, 2, 3)),
    /runs past/,
  ],
  ["a segment shorter than it is", Buffer.from(jpeg()).fill(10, 5, 6), /not a marker at byte 14/],
  ["a segment length under 2", jpegOf(Buffer.from([0xff, 0xfe, 0, 1])), /a segment of length 1/],
  ["no frame header", jpegOf(s.dqt, s.dhtDc, s.dhtAc, s.sos, JPEG_SCAN), /a scan before the frame header/],
  ["a frame 0 pixels wide", jpeg({ width: 0 }), /a frame of 0×1 pixels/],
  ["a frame 0 pixels high", jpeg({ height: 0 }), /a frame of 1×0 pixels/],
  ["two frame headers", jpegOf(s.sof0, s.sof0, s.sos, JPEG_SCAN), /a second frame header/],
  [
    "a broken scan header",
    jpegOf(s.sof0, jpegSegment(0xda, Buffer.from([2, 1, 0, 0, 63, 0]))),
    /scan header/,
  ],
  ["a restart marker outside a scan", jpegOf(Buffer.from([0xff, 0xd0]), s.sof0), /unexpected marker 0xFFD0/],
  ["HTML after EOI", Buffer.concat([jpeg(), HTML]), /data after EOI/],
  ["HTML after EOI, then EOI again", Buffer.concat([jpeg(), HTML, EOI]), /data after EOI/],
  ["HTML between segments", inserted(jpeg(), 2 + s.app0.length, HTML), /not a marker at byte 20/],
  ["HTML right after SOI", inserted(jpeg(), 2, HTML), "unknown"],
  ["a JPEG after HTML", Buffer.concat([HTML, jpeg()]), "unknown"],
];

const PIXELS = deflateSync(Buffer.from([0, 0x80]));
const IDAT = pngChunk("IDAT", PIXELS);
const pngOf = (...chunks: Buffer[]) => Buffer.concat([PNG_SIGNATURE, ...chunks]);
const PNG_CASES: Case[] = [
  ["a 1×1 greyscale image", png(), "image/png"],
  ["an ancillary text chunk", png([pngChunk("tEXt", Buffer.from("Comment\0hello"))]), "image/png"],
  [
    "IDAT data split over two chunks",
    pngOf(
      pngChunk("IHDR", pngHeader()),
      pngChunk("IDAT", PIXELS.subarray(0, 4)),
      pngChunk("IDAT", PIXELS.subarray(4)),
      pngChunk("IEND"),
    ),
    "image/png",
  ],
  [
    "an indexed-colour image",
    pngOf(pngChunk("IHDR", pngHeader(1, 1, 8, 3)), pngChunk("PLTE", Buffer.alloc(6)), IDAT, pngChunk("IEND")),
    "image/png",
  ],
  ["cut inside IDAT", png().subarray(0, 50), /truncated: the IDAT chunk runs past the end/],
  ["cut after IDAT", png().subarray(0, -12), /truncated: no IEND chunk/],
  ["cut inside IEND", png().subarray(0, -4), /truncated: a chunk at byte \d+ is cut short/],
  ["only the signature", PNG_SIGNATURE, /truncated: no IEND chunk/],
  ["a bad CRC in IDAT", flipped(png(), -13), /bad CRC in the IDAT chunk at byte 33/],
  ["a flipped bit in IDAT data", flipped(png(), 42), /bad CRC in the IDAT chunk at byte 33/],
  ["a bad CRC in IHDR", flipped(png(), 29), /bad CRC in the IHDR chunk at byte 8/],
  ["an IDAT length too long", withUint32(png(), 33, 0x1000), /the IDAT chunk runs past the end/],
  ["an IDAT length one short", withUint32(png(), 33, PIXELS.length - 1), /bad CRC in the IDAT chunk/],
  ["a length over 2^31", withUint32(png(), 33, 0x80000000), /claims 2147483648 bytes/],
  [
    "IHDR not first",
    pngOf(pngChunk("tEXt", Buffer.from("a\0b")), pngChunk("IHDR", pngHeader())),
    /first chunk is tEXt/,
  ],
  ["an IHDR of 12 bytes", pngOf(pngChunk("IHDR", pngHeader().subarray(0, 12))), /IHDR chunk of bad length/],
  ["an image 0 pixels wide", pngOf(pngChunk("IHDR", pngHeader(0, 1))), /0×1 pixels/],
  ["bit depth 4 in colour", pngOf(pngChunk("IHDR", pngHeader(1, 1, 4, 2))), /bit depth 4 with colour type 2/],
  ["colour type 5", pngOf(pngChunk("IHDR", pngHeader(1, 1, 8, 5))), /bit depth 8 with colour type 5/],
  ["a second IHDR", png([pngChunk("IHDR", pngHeader())]), /a second IHDR/],
  ["no IDAT", pngOf(pngChunk("IHDR", pngHeader()), pngChunk("IEND")), /no IDAT chunk/],
  [
    "IDAT chunks apart",
    png([IDAT, pngChunk("tEXt", Buffer.from("a\0b"))]),
    /IDAT chunks that are not consecutive/,
  ],
  [
    "an indexed-colour image without a palette",
    pngOf(pngChunk("IHDR", pngHeader(1, 1, 8, 3)), IDAT, pngChunk("IEND")),
    /no PLTE chunk/,
  ],
  ["a palette in a greyscale image", png([pngChunk("PLTE", Buffer.alloc(3))]), /PLTE in a greyscale image/],
  ["IEND with data", pngOf(pngChunk("IHDR", pngHeader()), IDAT, pngChunk("IEND", HTML)), /IEND with data/],
  ["HTML after IEND", Buffer.concat([png(), HTML]), /data after IEND/],
  ["a second PNG after IEND", Buffer.concat([png(), png()]), /data after IEND/],
  ["HTML between chunks", inserted(png(), 33, HTML), /not a chunk at byte 33/],
  ["HTML as a critical chunk", png([pngChunk("HTML", HTML)]), /unknown critical chunk HTML/],
];

const M4A_TRACKS = (brand: string, ...handlers: string[]) => isoMedia({ brand, handlers });
const MOOV_AT = mp4().readUInt32BE(0);
const MDAT_AT = mp4().length - box("mdat", Buffer.from("media data")).length;
const MP4_CASES: Case[] = [
  ["a video with sound", mp4(), "video/mp4"],
  ["an M4A file", m4a(), "audio/x-m4a"],
  ["a video without sound", M4A_TRACKS("mp42", "vide"), "video/mp4"],
  ["an isom file with only a sound track", M4A_TRACKS("isom", "soun"), "audio/x-m4a"],
  ["an M4B audiobook", M4A_TRACKS("M4B ", "soun"), "audio/x-m4a"],
  ["a hint track beside the video", M4A_TRACKS("isom", "vide", "hint"), "video/mp4"],
  ["a last box of size 0 (to the end of the file)", withUint32(mp4(), MDAT_AT, 0), "video/mp4"],
  [
    "an mdat with a 64-bit size",
    Buffer.concat([
      mp4().subarray(0, MDAT_AT),
      Buffer.from([0, 0, 0, 1]),
      Buffer.from("mdat"),
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 20]),
      Buffer.from("data"),
    ]),
    "video/mp4",
  ],
  ["a free box at the end", Buffer.concat([mp4(), box("free", Buffer.alloc(16))]), "video/mp4"],
  ["the QuickTime brand", M4A_TRACKS("qt  "), /the brand "qt {2}" is not one of MP4 or M4A/],
  ["an HEIF image", M4A_TRACKS("heic"), /the brand "heic"/],
  ["a 3GPP brand", M4A_TRACKS("3gp4"), /the brand "3gp4"/],
  [
    "an M4A brand with a video track",
    M4A_TRACKS("M4A ", "soun", "vide"),
    /a video track in a file of the audio brand "M4A "/,
  ],
  ["no audio or video track", M4A_TRACKS("isom", "hint"), /no audio or video track/],
  ["no tracks", M4A_TRACKS("isom"), /no audio or video track/],
  ["no moov", Buffer.concat([ftyp("isom"), box("mdat", HTML)]), /no moov box/],
  ["two moov boxes", Buffer.concat([mp4(), mp4().subarray(MOOV_AT, MDAT_AT)]), /a second moov box/],
  ["two ftyp boxes", Buffer.concat([mp4(), ftyp("isom")]), /a second ftyp box/],
  [
    "a track without hdlr",
    Buffer.concat([ftyp("isom"), box("moov", box("trak", box("mdia")))]),
    /without a media handler/,
  ],
  [
    "an ftyp of 7 bytes of data",
    Buffer.concat([box("ftyp", Buffer.from("isom\0\0\0")), mp4().subarray(MOOV_AT)]),
    /ftyp box of bad length/,
  ],
  ["cut inside mdat", mp4().subarray(0, -3), /the "mdat" box at byte \d+ runs past the end of the file/],
  ["cut inside moov", mp4().subarray(0, 100), /the "moov" box at byte 28 runs past the end of the file/],
  ["only ftyp", ftyp("isom"), /no moov box/],
  [
    "a box size too small for its header",
    withUint32(mp4(), MDAT_AT, 4),
    /"mdat" box at byte \d+ is shorter than its header/,
  ],
  [
    "a moov size 4 bytes short",
    withUint32(mp4(), MOOV_AT, mp4().readUInt32BE(MOOV_AT) - 4),
    /not a box at byte 810/,
  ],
  [
    "a moov size 4 bytes long",
    withUint32(mp4(), MOOV_AT, mp4().readUInt32BE(MOOV_AT) + 4),
    /"medi" box at byte 818 runs past the end of the file/,
  ],
  ["a box of size 0 inside moov", withUint32(mp4(), MOOV_AT + 8, 0), /a box of size 0 inside the "moov" box/],
  ["HTML after the last box", Buffer.concat([mp4(), HTML]), /not a box at byte 832/],
  ["a few bytes after the last box", Buffer.concat([mp4(), Buffer.from("<b>")]), /data after the last box/],
  ["HTML between boxes", inserted(mp4(), MDAT_AT, HTML), /not a box at byte \d+/],
  ["binary junk between boxes", inserted(mp4(), MDAT_AT, Buffer.alloc(12, 0xc8)), /not a box at byte/],
  [
    "HTML inside moov",
    inserted(withUint32(mp4(), MOOV_AT, mp4().readUInt32BE(MOOV_AT) + HTML.length), MOOV_AT + 8, HTML),
    /not a box at byte 36/,
  ],
  [
    "a trak cut short inside moov",
    Buffer.concat([ftyp("isom"), box("moov", isoTrack("vide").subarray(0, 40))]),
    /the "trak" box at byte \d+ runs past the end of its "moov" box/,
  ],
];

const TAG = Buffer.concat([Buffer.from("TAG"), Buffer.alloc(125)]);
const frame = (b2: number, b1 = 0xfb) => mp3Frame(Buffer.from([0xff, b1, b2, 0xc0]));
const MP3_CASES: Case[] = [
  ["three frames after an ID3v2 tag", mp3(), "audio/mpeg"],
  ["frames without a tag", mp3({ id3: false }), "audio/mpeg"],
  ["an ID3v1 tag at the end", Buffer.concat([mp3(), TAG]), "audio/mpeg"],
  ["two ID3v2 tags", Buffer.concat([id3v2(), mp3()]), "audio/mpeg"],
  [
    "a padded frame",
    Buffer.concat([mp3Frame(), mp3Frame(Buffer.from([0xff, 0xfb, 0x16, 0xc0]), 97)]),
    "audio/mpeg",
  ],
  [
    "MPEG-2 frames (24 kHz, 8 kbit/s: 24 bytes)",
    Buffer.concat([
      mp3Frame(Buffer.from([0xff, 0xf3, 0x14, 0xc0]), 24),
      mp3Frame(Buffer.from([0xff, 0xf3, 0x14, 0xc0]), 24),
    ]),
    "audio/mpeg",
  ],
  ["one frame", mp3({ frames: 1 }), /fewer than two MPEG audio frames/],
  ["a tag and no frame", id3v2(), /fewer than two MPEG audio frames/],
  ["cut inside the last frame", mp3().subarray(0, -1), /truncated: the frame at byte \d+ runs past the end/],
  ["cut inside the tag", id3v2().subarray(0, 12), /truncated: the ID3v2 tag runs past the end/],
  [
    "a tag size too large",
    Buffer.from(mp3()).fill(0x7f, 6, 10),
    /truncated: the ID3v2 tag runs past the end/,
  ],
  ["a tag size too small", Buffer.from(mp3()).fill(0, 9, 10), /not an MPEG audio frame at byte 10$/],
  ["a tag size that is not syncsafe", Buffer.from(mp3()).fill(0x80, 9, 10), /a broken ID3v2 tag header/],
  ["ID3 version 5", Buffer.from(mp3()).fill(5, 3, 4), /a broken ID3v2 tag header/],
  [
    "HTML after the last frame",
    Buffer.concat([mp3(), HTML]),
    /not an MPEG audio frame at byte \d+, where the previous frame ends/,
  ],
  [
    "HTML between frames",
    inserted(mp3(), -96, HTML),
    /not an MPEG audio frame at byte \d+, where the previous frame ends/,
  ],
  ["HTML after the tag", inserted(mp3(), id3v2().length, HTML), /not an MPEG audio frame at byte 29$/],
  [
    "a frame length one byte off",
    Buffer.concat([mp3Frame(), mp3Frame(MP3_FRAME_HEADER, 95), mp3Frame()]),
    /where the previous frame ends/,
  ],
  [
    "Layer II frames (MP2)",
    Buffer.concat([frame(0x14, 0xfd), frame(0x14, 0xfd)]),
    /not an MPEG audio frame at byte 0$/,
  ],
  [
    "the free-format bitrate",
    Buffer.concat([frame(0x04), frame(0x04)]),
    /not an MPEG audio frame at byte 0$/,
  ],
  ["a forbidden bitrate", Buffer.concat([frame(0xf4), frame(0xf4)]), /not an MPEG audio frame at byte 0$/],
  ["a reserved sample rate", Buffer.concat([frame(0x1c), frame(0x1c)]), /not an MPEG audio frame at byte 0$/],
  [
    "the sample rate changing",
    Buffer.concat([mp3Frame(), mp3Frame(Buffer.from([0xff, 0xfb, 0x10, 0xc0]), 104), mp3Frame()]),
    /the frame at byte 96 changes MPEG version or sample rate/,
  ],
  [
    "an ID3v1 tag after one frame",
    Buffer.concat([mp3({ frames: 1 }), TAG]),
    /not an MPEG audio frame at byte \d+, where/,
  ],
  ["an ID3v1 tag not at the end", Buffer.concat([mp3(), TAG, mp3Frame()]), /where the previous frame ends/],
];

for (const [group, cases] of [
  ["JPEG", JPEG_CASES],
  ["PNG", PNG_CASES],
  ["MP4/M4A", MP4_CASES],
  ["MP3", MP3_CASES],
] as const) {
  for (const [what, bytes, expected] of cases) {
    test(`${group}: ${what} is ${typeof expected === "string" ? expected : `refused (${expected.source})`}`, async () => {
      const result = await check(bytes);
      if (expected === "unknown") assert.deepEqual(result, { ok: false, problem: "unknown" });
      else if (typeof expected === "string") {
        assert.ok(result.ok, JSON.stringify(result));
        assert.equal(result.type.contentType, expected);
      } else {
        assert.equal(result.ok, false, JSON.stringify(result));
        assert.ok(!result.ok && result.problem === "malformed", JSON.stringify(result));
        assert.match(result.reason, expected);
      }
    });
  }
}

test("a file that starts like none of the types is unknown, whatever it holds after", async () => {
  for (const bytes of [
    HTML,
    Buffer.alloc(0),
    Buffer.from("GIF89a"),
    Buffer.from("RIFF....WEBPVP8 "),
    Buffer.from([0xff]),
  ]) {
    assert.deepEqual(await check(bytes), { ok: false, problem: "unknown" }, String(bytes));
  }
});

test("a malformed file is named by the type it starts like", async () => {
  const cases: Array<[Buffer, string]> = [
    [Buffer.concat([jpeg(), HTML]), "JPEG image"],
    [Buffer.concat([png(), HTML]), "PNG image"],
    [Buffer.concat([mp4(), HTML]), "MP4 video"],
    [Buffer.concat([m4a(), HTML]), "M4A audio"],
    [Buffer.concat([mp3(), HTML]), "MP3 audio"],
  ];
  for (const [bytes, name] of cases) {
    const result = await check(bytes);
    assert.ok(!result.ok && result.problem === "malformed", JSON.stringify(result));
    assert.equal(result.type.name, name);
  }
});

/** A file of `size` bytes that is `head`, zeros, then `tail`, read without ever being built. */
function sparseFile(size: number, head: Buffer, tail: Buffer = Buffer.alloc(0)) {
  const reads: Array<[number, number]> = [];
  const read = async (offset: number, length: number) => {
    reads.push([offset, length]);
    const bytes = Buffer.alloc(length);
    head.subarray(offset, offset + length).copy(bytes);
    const tailStart = size - tail.length;
    if (offset + length > tailStart) {
      const from = Math.max(offset, tailStart);
      tail.subarray(from - tailStart, offset + length - tailStart).copy(bytes, from - offset);
    }
    return bytes;
  };
  return { read, reads, bytesRead: () => reads.reduce((total, [, length]) => total + length, 0) };
}

test("a 200 MB video is checked by reading its box headers, not its media data", async () => {
  const size = 200 * 1024 * 1024;
  // ftyp and moov, then an mdat header whose data (zeros) runs to the end, then a free box.
  const start = mp4().subarray(0, MDAT_AT);
  const head = Buffer.concat([start, box("mdat")]);
  head.writeUInt32BE(size - start.length - 8, start.length);
  const sparse = sparseFile(size, head, box("free"));
  const result = await checkUpload(size, sparse.read);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.type.contentType, "video/mp4");
  assert.ok(sparse.bytesRead() < 1024 * 1024, `read ${sparse.bytesRead()} bytes`);
});

test("a file over LINE's limit for the type it starts like is refused before its structure is read", async () => {
  const size = 10 * 1024 * 1024 + 1;
  const sparse = sparseFile(size, png());
  const result = await checkUpload(size, sparse.read);
  assert.ok(!result.ok && result.problem === "too-large", JSON.stringify(result));
  assert.equal(result.type.contentType, "image/png");
  assert.equal(sparse.reads.length, 1);
  assert.equal(sparse.reads[0]?.[0], 0);
});

test("a long MP3 is walked frame by frame without one read per frame", async () => {
  const frames = 20_000;
  const bytes = mp3({ frames });
  const sparse = sparseFile(bytes.length, bytes);
  const result = await checkUpload(bytes.length, sparse.read);
  assert.ok(result.ok, JSON.stringify(result));
  assert.ok(sparse.reads.length < 100, `${sparse.reads.length} reads for ${frames} frames`);
});

test("files of countless empty chunks, segments or boxes are refused once past a bound", async () => {
  const many = (count: number, item: Buffer) => Buffer.concat(Array.from({ length: count }, () => item));
  const comments = many(100_000, Buffer.from([0xff, 0xfe, 0, 2]));
  const cases: Array<[Buffer, RegExp]> = [
    [png([many(100_000, pngChunk("tEXt"))]), /more than 100000 chunks/],
    [Buffer.concat([SOI, comments, jpeg().subarray(2)]), /more than 100000 segments/],
    [Buffer.concat([mp4(), many(100_000, box("free"))]), /more than 100000 boxes/],
  ];
  for (const [bytes, reason] of cases) {
    const result = await check(bytes);
    assert.ok(!result.ok && result.problem === "malformed", JSON.stringify(result));
    assert.match(result.reason, reason);
  }
});
