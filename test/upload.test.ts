// POST /line/media: uploads checked by content and LINE's size limits, served at a stable public URL.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API_KEY, type Stack, startStack } from "./support/stack.ts";

const PNG = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), Buffer.alloc(100, 1)]);
const MP4 = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from("ftypisom"), Buffer.alloc(100, 2)]);
const M4A = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from("ftypM4A "), Buffer.alloc(50, 3)]);

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

  test("an image, a video and an audio file are typed by content and served back byte-exact", async () => {
    for (const [bytes, type] of [
      [PNG, "image/png"],
      [MP4, "video/mp4"],
      [M4A, "audio/x-m4a"],
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

  test("uploading needs a partner key; the public URL needs none but cannot be guessed", async () => {
    assert.equal((await upload({ file: { bytes: PNG, name: "a.png" } }, null)).status, 401);
    for (const name of ["nope.png", "../talkgate.db", `${"A".repeat(43)}.png`, `${"A".repeat(43)}.exe`]) {
      const response = await fetch(`${stack.talkgate.url}/media/${encodeURIComponent(name)}`);
      assert.equal(response.status, 404, name);
    }
  });
});
