// Attachments and long texts (SPEC §5–6): fetched before LINE deletes them, served byte-exact, never lost.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { generatedContent, generatedSha256 } from "../emulator/content-stream.ts";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { storedFiles } from "./support/read-rows.ts";
import {
  API_KEY,
  OTHER_API_KEY,
  OTHER_SENDER_KEY,
  SENDER_KEY,
  type Stack,
  startStack,
} from "./support/stack.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The bytes of `body` in each inclusive range, read in one pass. */
async function slicesOf(body: AsyncIterable<Buffer>, ranges: Array<{ start: number; end: number }>) {
  const slices = ranges.map(() => [] as Buffer[]);
  let offset = 0;
  for await (const chunk of body) {
    for (const [i, { start, end }] of ranges.entries()) {
      const from = Math.max(start, offset);
      const to = Math.min(end + 1, offset + chunk.length);
      if (from < to) slices[i]?.push(chunk.subarray(from - offset, to - offset));
    }
    offset += chunk.length;
  }
  return slices.map((parts) => Buffer.concat(parts));
}

describe("attachments and long texts", () => {
  let stack: Stack;
  const user = ev.randomUserId();

  before(async () => {
    stack = await startStack({
      config: { media: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 50, relayWaitMs: 30_000 } },
    });
  });
  after(() => stack.close());

  /** Sends the events and waits until the partner has every one of them; returns their payloads. */
  async function relay(...events: Array<{ message?: { id: string } } & object>): Promise<PartnerPayload[]> {
    const result = await stack.emulator.sendWebhook(SENDER_KEY, events);
    assert.equal(result.status, 200, result.body);
    const ids = events.map((e) => (e as { message: { id: string } }).message.id);
    const accepted = await stack.sink.waitFor(
      (all) => ids.every((id) => all.some((p) => (p as PartnerPayload).content.id === id)),
      20_000,
    );
    return ids.map((id) => (accepted as PartnerPayload[]).find((p) => p.content.id === id) as PartnerPayload);
  }

  function api(path: string, init: RequestInit & { key?: string | null } = {}) {
    const headers = new Headers(init.headers);
    const key = init.key === undefined ? API_KEY : init.key;
    if (key !== null) headers.set("authorization", `Bearer ${key}`);
    return fetch(`${stack.talkgate.url}${path}`, { ...init, headers });
  }
  const attachment = (
    serial: string,
    init: RequestInit & { key?: string | null } = {},
    senderKey = SENDER_KEY,
  ) =>
    api(`/line/message/attachment?sender_key=${senderKey}&serial_number=${encodeURIComponent(serial)}`, init);
  const longText = (
    serial: string,
    init: RequestInit & { key?: string | null } = {},
    senderKey = SENDER_KEY,
  ) => api(`/line/message/long?sender_key=${senderKey}&serial_number=${encodeURIComponent(serial)}`, init);

  test("each media type is relayed once stored and downloads byte-exact with its headers", async () => {
    const source = ev.userSource(user);
    const cases = [
      {
        event: ev.imageEvent(source),
        body: Buffer.from("\x89PNG fake image bytes"),
        type: "image/png",
        name: /filename="?[^";]+\.png"?$/,
      },
      {
        event: ev.videoEvent(source, { duration: 1000 }),
        body: Buffer.alloc(300_000, 7),
        type: "video/mp4",
        name: /filename="?[^";]+\.mp4"?$/,
      },
      {
        event: ev.audioEvent(source, { duration: 1000 }),
        body: Buffer.from("m4a audio"),
        type: "audio/x-m4a",
        name: /filename="?[^";]+\.m4a"?$/,
      },
      {
        event: ev.fileEvent(source, { fileName: "report.pdf", fileSize: 9 }),
        body: Buffer.from("%PDF-1.7\n"),
        type: "application/pdf",
        name: /filename="?report\.pdf"?$/,
      },
    ];
    for (const c of cases)
      stack.emulator.setContent(c.event.message.id, { body: c.body, contentType: c.type });
    const payloads = await relay(...cases.map((c) => c.event));

    for (const [i, c] of cases.entries()) {
      const response = await attachment(payloads[i]?.serial_number ?? "");
      assert.equal(response.status, 200, `${c.type}: relayed only after the content was stored`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      assert.equal(sha256(bytes), sha256(c.body));
      assert.equal(response.headers.get("content-type"), c.type);
      assert.equal(response.headers.get("content-length"), String(c.body.length));
      assert.equal(response.headers.get("etag"), `"sha256-${sha256(c.body)}"`);
      assert.match(response.headers.get("content-disposition") ?? "", c.name);
    }
  });

  test("a large generated video streams through byte-exact", async () => {
    const event = ev.videoEvent(ev.userSource(user), { duration: 60_000 });
    const size = 64 * 1024 * 1024 + 123;
    stack.emulator.setContent(event.message.id, { generated: { size, seed: 7 }, contentType: "video/mp4" });
    const [payload] = await relay(event);
    const response = await attachment(payload?.serial_number ?? "");
    assert.equal(response.status, 200);
    const hash = createHash("sha256");
    let length = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      length += chunk.length;
    }
    assert.equal(length, size);
    assert.equal(hash.digest("hex"), await generatedSha256(size, 7));

    // Ranges across the sender's buffer boundaries come back exact.
    const RANGES = [
      { start: 65_530, end: 200_000 },
      { start: 131_072, end: 131_072 },
      { start: size - 100_000, end: size - 1 },
    ];
    const expected = await slicesOf(generatedContent(size, 7), RANGES);
    for (const [i, range] of RANGES.entries()) {
      const part = await attachment(payload?.serial_number ?? "", {
        headers: { range: `bytes=${range.start}-${range.end}` },
      });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get("content-range"), `bytes ${range.start}-${range.end}/${size}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), expected[i], JSON.stringify(range));
    }

    // A partner that hangs up mid-body leaves the next download whole.
    const abort = new AbortController();
    const cut = await attachment(payload?.serial_number ?? "", { signal: abort.signal });
    const reader = (cut.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    abort.abort();
    await reader.closed.catch(() => {});
    const again = await attachment(payload?.serial_number ?? "");
    assert.equal(sha256(new Uint8Array(await again.arrayBuffer())), await generatedSha256(size, 7));
  });

  test("202 while LINE prepares a video, then the content", async () => {
    const event = ev.videoEvent(ev.userSource(user), { duration: 5000 });
    stack.emulator.setContent(event.message.id, {
      body: "ready at last",
      contentType: "video/mp4",
      notReadyTimes: 2,
    });
    const [payload] = await relay(event);
    const response = await attachment(payload?.serial_number ?? "");
    assert.equal(await response.text(), "ready at last");
    assert.ok(stack.emulator.contentRequests(event.message.id) >= 3);
  });

  test("LINE failing with 5xx, 429 and a connection cut mid-body is retried; no truncated file is served", async () => {
    const flaky = ev.imageEvent(ev.userSource(user));
    const cut = ev.fileEvent(ev.userSource(user), { fileName: "big.bin", fileSize: 2_000_000 });
    stack.emulator.setContent(flaky.message.id, { body: "after the storm", contentType: "image/jpeg" });
    stack.emulator.failNext(`/v2/bot/message/${flaky.message.id}/content`, { status: 500 }, 2);
    stack.emulator.failNext(`/v2/bot/message/${flaky.message.id}/content`, { status: 429 }, 1);
    stack.emulator.setContent(cut.message.id, {
      generated: { size: 2_000_000, seed: 3 },
      cutAfterBytes: 500_000,
      cutTimes: 2,
    });
    const [a, b] = await relay(flaky, cut);
    assert.equal(await (await attachment(a?.serial_number ?? "")).text(), "after the storm");
    const whole = new Uint8Array(await (await attachment(b?.serial_number ?? "")).arrayBuffer());
    assert.equal(whole.length, 2_000_000);
    assert.equal(sha256(whole), await generatedSha256(2_000_000, 3));
    assert.equal(stack.emulator.contentRequests(cut.message.id), 3);
    assert.deepEqual(await storedFiles(stack.config, ".incoming"), [], "no partial file is left behind");
  });

  test("content LINE no longer has (404, 410) or could not prepare answers 410", async () => {
    const missing = ev.imageEvent(ev.userSource(user));
    const unsentAtLine = ev.audioEvent(ev.userSource(user), { duration: 1 });
    const failed = ev.videoEvent(ev.userSource(user), { duration: 1 });
    stack.emulator.setContent(unsentAtLine.message.id, { body: "x", gone: true });
    stack.emulator.setContent(failed.message.id, { body: "x", transcoding: "failed", notReadyTimes: 1 });
    const payloads = await relay(missing, unsentAtLine, failed);
    for (const payload of payloads) {
      const response = await attachment(payload.serial_number);
      assert.equal(response.status, 410);
      assert.equal(((await response.json()) as { code: string }).code, "-410");
    }
  });

  test("while content is not stored the API answers 202, and the message is relayed after relayWaitMs", async () => {
    const slow = await startStack({
      config: { media: { relayWaitMs: 300, initialBackoffMs: 50, maxBackoffMs: 100, pollMs: 50 } },
    });
    try {
      const event = ev.videoEvent(ev.userSource(user), { duration: 1 });
      slow.emulator.setContent(event.message.id, { body: "x", transcoding: "processing" });
      const started = Date.now();
      await slow.emulator.sendWebhook(SENDER_KEY, [event]);
      const [payload] = (await slow.sink.waitFor((a) => a.length === 1)) as PartnerPayload[];
      assert.ok(Date.now() - started >= 250, "held back for the content first");
      const response = await fetch(
        `${slow.talkgate.url}/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${payload?.serial_number}`,
        { headers: { authorization: `Bearer ${API_KEY}` } },
      );
      assert.equal(response.status, 202);
      assert.equal(((await response.json()) as { code: string }).code, "-202");
    } finally {
      await slow.close();
    }
  });

  test("downloads pending when talkgate stops resume after a restart", async () => {
    const event = ev.imageEvent(ev.userSource(user));
    stack.emulator.setContent(event.message.id, { body: "survived a restart", contentType: "image/jpeg" });
    stack.emulator.failNext(`/v2/bot/message/${event.message.id}/content`, { status: 503 }, 1_000);
    await stack.emulator.sendWebhook(SENDER_KEY, [event]);
    while (stack.emulator.contentRequests(event.message.id) === 0)
      await new Promise((r) => setTimeout(r, 20));
    await stack.stopTalkgate();
    stack.emulator.clearFaults();
    await stack.restart();
    const [payload] = await relay(event);
    assert.equal(await (await attachment(payload?.serial_number ?? "")).text(), "survived a restart");
  });

  test("Range, HEAD and If-None-Match", async () => {
    const event = ev.fileEvent(ev.userSource(user), { fileName: "abc.txt", fileSize: 26 });
    stack.emulator.setContent(event.message.id, {
      body: "abcdefghijklmnopqrstuvwxyz",
      contentType: "text/plain",
    });
    const [payload] = await relay(event);
    const serial = payload?.serial_number ?? "";

    const part = await attachment(serial, { headers: { range: "bytes=2-5" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), "bytes 2-5/26");
    assert.equal(await part.text(), "cdef");
    const suffix = await attachment(serial, { headers: { range: "bytes=-3" } });
    assert.equal(await suffix.text(), "xyz");
    const unsatisfiable = await attachment(serial, { headers: { range: "bytes=100-200" } });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers.get("content-range"), "bytes */26");
    // An error answer is JSON, not an empty body in the file's type.
    assert.match(unsatisfiable.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(((await unsatisfiable.json()) as { code: string }).code, "-416");

    const head = await attachment(serial, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "26");
    assert.equal(await head.text(), "");

    const etag = head.headers.get("etag") ?? "";
    assert.equal((await attachment(serial, { headers: { "if-none-match": etag } })).status, 304);
  });

  test("a user's file is served as its type and nothing else: nosniff, a sandboxing CSP, attachment", async () => {
    const event = ev.fileEvent(ev.userSource(user), { fileName: "page.html", fileSize: 40 });
    stack.emulator.setContent(event.message.id, {
      body: "<html><script>alert(1)</script></html>",
      contentType: "text/html",
    });
    const [payload] = await relay(event);
    const served = await attachment(payload?.serial_number ?? "");
    assert.equal(served.status, 200);
    assert.equal(served.headers.get("x-content-type-options"), "nosniff");
    assert.equal(served.headers.get("content-security-policy"), "default-src 'none'; sandbox");
    assert.match(served.headers.get("content-disposition") ?? "", /^attachment;/);
  });

  test("file names in Korean, Thai and emoji survive; directories and control characters do not", async () => {
    const names = ["고해상도7.zip", "ใบเสร็จ.pdf", "🍎 photo 👨‍👩‍👧.jpg", "../../etc/pass\nwd"];
    const events = names.map((fileName) => ev.fileEvent(ev.userSource(user), { fileName, fileSize: 1 }));
    for (const e of events) stack.emulator.setContent(e.message.id, { body: "1" });
    const payloads = await relay(...events);
    const expected = ["고해상도7.zip", "ใบเสร็จ.pdf", "🍎 photo 👨‍👩‍👧.jpg", "passwd"];
    for (const [i, payload] of payloads.entries()) {
      const disposition = (await attachment(payload.serial_number)).headers.get("content-disposition") ?? "";
      const encoded = /filename\*=UTF-8''([^;]+)/.exec(disposition)?.[1];
      const plain = /filename="?([^";]+)"?/.exec(disposition)?.[1];
      assert.equal(encoded ? decodeURIComponent(encoded) : plain, expected[i], disposition);
      assert.ok(!disposition.includes("/") && !disposition.includes("\n"));
    }
  });

  test("the long-text API serves the full text of long and short texts", async () => {
    const long = `${"장문 ".repeat(600)}끝`;
    const [cut, short, sticker] = await relay(
      ev.textEvent(ev.userSource(user), long),
      ev.textEvent(ev.userSource(user), "short"),
      ev.stickerEvent(ev.userSource(user), { packageId: "1", stickerId: "1", stickerResourceType: "STATIC" }),
    );
    assert.equal(cut?.is_message_attachment, true);
    assert.deepEqual(await (await longText(cut?.serial_number ?? "")).json(), {
      code: "0",
      serial_number: cut?.serial_number,
      text: long,
    });
    assert.equal(
      ((await (await longText(short?.serial_number ?? "")).json()) as { text: string }).text,
      "short",
    );
    const notText = await longText(sticker?.serial_number ?? "");
    assert.equal(notText.status, 404);
    assert.equal(((await notText.json()) as { code: string }).code, "-509");
  });

  test("messages without an attachment, external content and unknown serial numbers get clear codes", async () => {
    const external = ev.imageEvent(ev.userSource(user), {
      contentProvider: {
        type: "external",
        originalContentUrl: "https://cdn.example.com/a.jpg",
        previewImageUrl: "https://cdn.example.com/p.jpg",
      },
    });
    const [ext, text] = await relay(external, ev.textEvent(ev.userSource(user), "no attachment"));
    const extAnswer = (await (await attachment(ext?.serial_number ?? "")).json()) as {
      code: string;
      message: string;
    };
    assert.equal(extAnswer.code, "-509");
    assert.match(extAnswer.message, /https:\/\/cdn\.example\.com\/a\.jpg/);
    assert.equal(
      ((await (await attachment(text?.serial_number ?? "")).json()) as { code: string }).code,
      "-509",
    );
    const unknown = await attachment("Unope-0001-00000000");
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { code: string }).code, "-508");
    const bad = await api(`/line/message/attachment?sender_key=${SENDER_KEY}`);
    assert.equal(bad.status, 400);
    const badBody = (await bad.json()) as { code: string; message: string };
    assert.equal(badBody.code, "-405");
    assert.match(badBody.message, /serial_number/);
  });

  test("an unsent message loses its text and attachment: both APIs answer 410 and the file is removed", async () => {
    const image = ev.imageEvent(ev.userSource(user));
    const text = ev.textEvent(ev.userSource(user), "regret");
    stack.emulator.setContent(image.message.id, { body: "to be unsent", contentType: "image/jpeg" });
    const [img, txt] = await relay(image, text);
    assert.equal((await attachment(img?.serial_number ?? "")).status, 200);
    const files = async () => (await storedFiles(stack.config, SENDER_KEY)).length;
    const before = await files();

    await stack.emulator.sendWebhook(SENDER_KEY, [
      ev.unsendEvent(ev.userSource(user), { messageId: image.message.id }),
      ev.unsendEvent(ev.userSource(user), { messageId: text.message.id }),
    ]);
    assert.equal((await attachment(img?.serial_number ?? "")).status, 410);
    const gone = await longText(txt?.serial_number ?? "");
    assert.equal(gone.status, 410);
    assert.equal(((await gone.json()) as { code: string }).code, "-410");
    for (let i = 0; i < 50 && (await files()) === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await files(), before - 1, "the stored file was deleted");
  });

  test("an unsend that arrives before its message: the message is stored without its content", async () => {
    const text = ev.textEvent(ev.userSource(user), "never seen", { timestamp: Date.now() - 10 });
    await stack.emulator.sendWebhook(SENDER_KEY, [
      ev.unsendEvent(ev.userSource(user), { messageId: text.message.id }),
    ]);
    const [payload] = await relay(text);
    assert.equal(payload?.content.text, undefined, "the partner never receives the unsent text");
    assert.equal((await longText(payload?.serial_number ?? "")).status, 410);
  });

  test("keys: none or wrong → 401 -401; another partner's key → 404 -406, as if the channel did not exist", async () => {
    const [payload] = await relay(ev.textEvent(ev.userSource(user), "scoped"));
    const serial = payload?.serial_number ?? "";
    for (const key of [null, "wrong-key-wrong-key-wrong", ""]) {
      const response = await longText(serial, { key });
      assert.equal(response.status, 401, `key ${key}`);
      assert.equal(((await response.json()) as { code: string }).code, "-401");
    }
    const foreign = await longText(serial, { key: OTHER_API_KEY });
    const unknown = await longText(serial, { key: OTHER_API_KEY }, "9999999999");
    assert.equal(foreign.status, 404);
    assert.equal(unknown.status, 404);
    assert.equal(((await foreign.json()) as { code: string }).code, "-406");
    assert.equal(((await unknown.json()) as { code: string }).code, "-406");
    const ownChannelOfOther = await longText(serial, { key: OTHER_API_KEY }, OTHER_SENDER_KEY);
    assert.equal(ownChannelOfOther.status, 404);
    assert.equal(
      ((await ownChannelOfOther.json()) as { code: string }).code,
      "-508",
      "its own channel has no such message",
    );
  });
});
