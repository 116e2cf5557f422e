// POST /line/media: uploads checked by content and LINE's size limits, served at a stable public URL.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jpeg, m4a, mp3, mp4, png } from "./support/media-fixtures.ts";
import { API_KEY, type Stack, startStack } from "./support/stack.ts";

const JPEG = jpeg();
const PNG = png();
const MP4 = mp4();
const M4A = m4a();
const MP3 = mp3();
const HTML = Buffer.from("<html><script>alert(document.cookie)</script></html>");

describe("media upload", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  async function upload(
    parts: Record<string, { bytes: Buffer; name: string; type?: string }>,
    key: string | null = API_KEY,
  ) {
    const form = new FormData();
    for (const [field, part] of Object.entries(parts)) {
      form.append(
        field,
        new Blob([part.bytes], { type: part.type ?? "application/octet-stream" }),
        part.name,
      );
    }
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    const response = await fetch(`${stack.talkgate.url}/line/media`, { method: "POST", body: form, headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** The files under mediaDir/uploads and its temporary directory. */
  function storedFiles(): string[] {
    return ["uploads", ".incoming"].flatMap((dir) => {
      try {
        return readdirSync(join(stack.config.mediaDir, dir)).map((name) => `${dir}/${name}`);
      } catch {
        return [];
      }
    });
  }

  test("images, videos and audio files are typed by content and served back byte-exact", async () => {
    for (const [bytes, type] of [
      [JPEG, "image/jpeg"],
      [PNG, "image/png"],
      [MP4, "video/mp4"],
      [M4A, "audio/x-m4a"],
      [MP3, "audio/mpeg"],
    ] as const) {
      // The declared type and name lie on purpose: only the bytes count.
      const answer = await upload({ file: { bytes, name: "whatever.txt", type: "text/plain" } });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.content_type, type);
      assert.equal(answer.body.size, bytes.length);
      const url = String(answer.body.url);
      assert.ok(url.startsWith(`${stack.config.publicBaseUrl}/media/`), url);
      const served = await fetch(url.replace(stack.config.publicBaseUrl, stack.talkgate.url));
      assert.equal(served.status, 200);
      assert.equal(served.headers.get("content-type"), type);
      assert.deepEqual(Buffer.from(await served.arrayBuffer()), bytes);
    }
  });

  test("a preview image comes back with its own URL", async () => {
    const answer = await upload({
      file: { bytes: MP4, name: "v.mp4" },
      preview: { bytes: PNG, name: "p.png" },
    });
    assert.equal(answer.status, 200);
    assert.match(String(answer.body.preview_url), /\/media\/[A-Za-z0-9_-]{43}\.png$/);
  });

  test("files LINE would refuse are refused: wrong type 415, image over 10 MB 413, no file 400", async () => {
    const text = await upload({
      file: { bytes: Buffer.from("hello, not an image"), name: "a.png", type: "image/png" },
    });
    assert.equal(text.status, 415);
    assert.equal(text.body.code, "-415");
    const big = await upload({
      file: { bytes: Buffer.concat([PNG, Buffer.alloc(10 * 1024 * 1024)]), name: "big.png" },
    });
    assert.equal(big.status, 413);
    assert.equal(big.body.code, "-413");
    const videoAsPreview = await upload({
      file: { bytes: MP4, name: "v.mp4" },
      preview: { bytes: MP4, name: "p.mp4" },
    });
    assert.equal(videoAsPreview.status, 415);
    const none = await upload({ other: { bytes: PNG, name: "x.png" } });
    assert.equal(none.status, 400);
    assert.equal(none.body.code, "-405");
  });

  test("a public URL serves its type and nothing else (nosniff, sandboxing CSP, inline), with Range and ETag", async () => {
    const answer = await upload({ file: { bytes: PNG, name: "p.png" } });
    const url = String(answer.body.url).replace(stack.config.publicBaseUrl, stack.talkgate.url);
    const whole = await fetch(url);
    assert.equal(whole.headers.get("x-content-type-options"), "nosniff");
    assert.equal(whole.headers.get("content-security-policy"), "default-src 'none'; sandbox");
    assert.match(whole.headers.get("content-disposition") ?? "", /^inline; filename=[A-Za-z0-9_-]{43}\.png$/);
    assert.equal(whole.headers.get("accept-ranges"), "bytes");
    const part = await fetch(url, { headers: { range: "bytes=1-3" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 1-3/${PNG.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), PNG.subarray(1, 4));
    const outside = await fetch(url, { headers: { range: `bytes=${PNG.length + 10}-` } });
    assert.equal(outside.status, 416);
    assert.equal(((await outside.json()) as { code: string }).code, "-416");
    const etag = whole.headers.get("etag") ?? "";
    assert.equal((await fetch(url, { headers: { "if-none-match": etag } })).status, 304);
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), String(PNG.length));
  });

  test("uploading needs a partner key; the public URL needs none but cannot be guessed", async () => {
    assert.equal((await upload({ file: { bytes: PNG, name: "a.png" } }, null)).status, 401);
    for (const name of ["nope.png", "../talkgate.db", `${"A".repeat(43)}.png`, `${"A".repeat(43)}.exe`]) {
      const response = await fetch(`${stack.talkgate.url}/media/${encodeURIComponent(name)}`);
      assert.equal(response.status, 404, name);
    }
  });
  test("a file that only starts like a type LINE takes is refused 415 naming the part and the flaw", async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ["JPEG + HTML", Buffer.concat([JPEG, HTML]), /^file: not a well-formed JPEG image \(data after EOI\)$/],
      ["PNG + HTML", Buffer.concat([PNG, HTML]), /^file: not a well-formed PNG image \(data after IEND\)$/],
      [
        "MP4 + HTML",
        Buffer.concat([MP4, HTML]),
        /^file: not a well-formed MP4 video \(not a box at byte \d+\)$/,
      ],
      [
        "M4A + HTML",
        Buffer.concat([M4A, HTML]),
        /^file: not a well-formed M4A audio \(not a box at byte \d+\)$/,
      ],
      [
        "MP3 + HTML",
        Buffer.concat([MP3, HTML]),
        /^file: not a well-formed MP3 audio \(not an MPEG audio frame at byte \d+, where the previous frame ends\)$/,
      ],
      // The polyglots of the hostile probe: 16 good bytes, then a page.
      [
        "16 bytes of PNG",
        Buffer.concat([PNG.subarray(0, 16), HTML]),
        /^file: not a well-formed PNG image \(.+\)$/,
      ],
      [
        "16 bytes of JPEG",
        Buffer.concat([JPEG.subarray(0, 16), HTML]),
        /^file: not a well-formed JPEG image/,
      ],
      ["16 bytes of MP4", Buffer.concat([MP4.subarray(0, 16), HTML]), /^file: not a well-formed MP4 video/],
      ["16 bytes of MP3", Buffer.concat([MP3.subarray(0, 16), HTML]), /^file: not a well-formed MP3 audio/],
    ];
    const before = storedFiles();
    for (const [what, bytes, message] of cases) {
      const answer = await upload({ file: { bytes, name: "a.png", type: "image/png" } });
      assert.equal(answer.status, 415, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, "-415");
      assert.match(String(answer.body.message), message, what);
    }
    assert.deepEqual(storedFiles(), before, "no refused file is kept");
  });

  test("a refused part leaves no file on disk, nor do the parts stored before it", async () => {
    const cases: Array<[string, Record<string, { bytes: Buffer; name: string }>, number, RegExp]> = [
      [
        "an unknown part after a file",
        { file: { bytes: PNG, name: "a.png" }, other: { bytes: PNG, name: "b.png" } },
        400,
        /^other: unknown part/,
      ],
      [
        "a preview that is a video",
        { file: { bytes: MP4, name: "v.mp4" }, preview: { bytes: MP4, name: "p.mp4" } },
        415,
        /^preview: must be a JPEG or PNG image, not MP4 video$/,
      ],
      [
        "a preview that is not well-formed",
        {
          file: { bytes: MP4, name: "v.mp4" },
          preview: { bytes: Buffer.concat([PNG, HTML]), name: "p.png" },
        },
        415,
        /^preview: not a well-formed PNG image/,
      ],
      ["a preview and no file", { preview: { bytes: PNG, name: "p.png" } }, 400, /^file: missing$/],
    ];
    for (const [what, parts, status, message] of cases) {
      const before = storedFiles();
      const answer = await upload(parts);
      assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
      assert.match(String(answer.body.message), message, what);
      assert.deepEqual(storedFiles(), before, what);
    }
  });

  test("a second file part is refused 400 and neither file is kept", async () => {
    const before = storedFiles();
    const form = new FormData();
    for (const bytes of [PNG, JPEG]) form.append("file", new Blob([bytes]), "a");
    const response = await fetch(`${stack.talkgate.url}/line/media`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const answer = (await response.json()) as { code: string; message: string };
    assert.equal(response.status, 400, JSON.stringify(answer));
    assert.deepEqual(answer, { code: "-405", message: "file: sent twice (send one of each part)" });
    assert.deepEqual(storedFiles(), before);
  });
});
