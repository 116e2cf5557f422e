// Unit tests for attachments: which messages carry LINE content, what an unsent message keeps, served file names.
import assert from "node:assert/strict";
import { test } from "node:test";
import { attachmentFileName, attachmentKind, type MediaKind, withoutContent } from "./attachment.ts";
import type { JsonObject } from "./line-event.ts";

const SERIAL = "Uae87c693e28-0001-65A51E00";

function messageEvent(message: unknown, extra: JsonObject = {}): JsonObject {
  return {
    type: "message",
    mode: "active",
    timestamp: 1_700_000_000_000,
    webhookEventId: "01FZ74A0TDDPYRVKNK77XKC3ZR",
    source: { type: "user", userId: "Uae87c693e2897ccc4c7654acd04f9259" },
    replyToken: "757913772c4646b784d4b7ce46d12671",
    message,
    ...extra,
  };
}

const KIND_CASES: Array<{ name: string; event: JsonObject; kind: MediaKind | null }> = [
  {
    name: "image on LINE",
    event: messageEvent({ id: "1", type: "image", contentProvider: { type: "line" } }),
    kind: "image",
  },
  {
    name: "video on LINE",
    event: messageEvent({ id: "1", type: "video", duration: 6000, contentProvider: { type: "line" } }),
    kind: "video",
  },
  {
    name: "audio on LINE",
    event: messageEvent({ id: "1", type: "audio", duration: 6000, contentProvider: { type: "line" } }),
    kind: "audio",
  },
  { name: "image without contentProvider", event: messageEvent({ id: "1", type: "image" }), kind: "image" },
  { name: "video without contentProvider", event: messageEvent({ id: "1", type: "video" }), kind: "video" },
  { name: "audio without contentProvider", event: messageEvent({ id: "1", type: "audio" }), kind: "audio" },
  {
    name: "external image",
    event: messageEvent({
      id: "1",
      type: "image",
      contentProvider: { type: "external", originalContentUrl: "https://example.com/a.jpg" },
    }),
    kind: null,
  },
  {
    name: "external video",
    event: messageEvent({
      id: "1",
      type: "video",
      contentProvider: { type: "external", originalContentUrl: "https://example.com/a.mp4" },
    }),
    kind: null,
  },
  {
    name: "external audio",
    event: messageEvent({
      id: "1",
      type: "audio",
      contentProvider: { type: "external", originalContentUrl: "https://example.com/a.m4a" },
    }),
    kind: null,
  },
  {
    name: "file",
    event: messageEvent({ id: "1", type: "file", fileName: "a.pdf", fileSize: 10 }),
    kind: "file",
  },
  {
    name: "file even with an external contentProvider",
    event: messageEvent({ id: "1", type: "file", fileName: "a.pdf", contentProvider: { type: "external" } }),
    kind: "file",
  },
  { name: "text", event: messageEvent({ id: "1", type: "text", text: "hi" }), kind: null },
  {
    name: "sticker",
    event: messageEvent({ id: "1", type: "sticker", packageId: "1", stickerId: "1" }),
    kind: null,
  },
  {
    name: "location",
    event: messageEvent({ id: "1", type: "location", latitude: 1, longitude: 2 }),
    kind: null,
  },
  {
    name: "follow event",
    event: { type: "follow", source: { type: "user", userId: "U1" }, timestamp: 1 },
    kind: null,
  },
  {
    name: "unsend event",
    event: { type: "unsend", source: { type: "user", userId: "U1" }, unsend: { messageId: "1" } },
    kind: null,
  },
  {
    name: "postback carrying an image-looking message",
    event: { type: "postback", message: { id: "1", type: "image" } },
    kind: null,
  },
  { name: "message event without message", event: { type: "message" }, kind: null },
  { name: "message that is a string", event: messageEvent("image"), kind: null },
  { name: "message that is an array", event: messageEvent([{ type: "image" }]), kind: null },
  { name: "message type not a string", event: messageEvent({ id: "1", type: 7 }), kind: null },
  { name: "unknown message type", event: messageEvent({ id: "1", type: "hologram" }), kind: null },
  { name: "message type in upper case", event: messageEvent({ id: "1", type: "IMAGE" }), kind: null },
  {
    name: "contentProvider that is not an object",
    event: messageEvent({ id: "1", type: "image", contentProvider: "external" }),
    kind: "image",
  },
  { name: "empty object", event: {}, kind: null },
];

for (const c of KIND_CASES) {
  test(`attachmentKind: ${c.name} → ${c.kind}`, () => {
    assert.equal(attachmentKind(c.event), c.kind);
  });
}

test("withoutContent keeps only the message's id and type and leaves the rest of the event", () => {
  const event = messageEvent({
    id: "444573844083572737",
    type: "file",
    fileName: "계약서.pdf",
    fileSize: 2048,
    quoteToken: "q3Plxr4AgKd",
  });
  const scrubbed = withoutContent(event);
  assert.deepEqual(scrubbed, { ...event, message: { id: "444573844083572737", type: "file" } });
  // The input is not modified.
  assert.equal((event.message as JsonObject).fileName, "계약서.pdf");
});

test("withoutContent drops a text message's text, emojis and mention", () => {
  const event = messageEvent({
    id: "m1",
    type: "text",
    text: "secret @A",
    emojis: [{ index: 0, productId: "p", emojiId: "e", length: 6 }],
    mention: { mentionees: [{ index: 7, length: 2, type: "user", userId: "U2" }] },
  });
  const scrubbed = withoutContent(event);
  assert.deepEqual(scrubbed.message, { id: "m1", type: "text" });
  assert.ok(!JSON.stringify(scrubbed).includes("secret"));
});

const NO_MESSAGE_CASES: JsonObject[] = [
  { type: "follow", timestamp: 1 },
  { type: "unsend", unsend: { messageId: "m1" } },
  { type: "message", message: "not an object" },
  { type: "message", message: null },
  {},
];

for (const event of NO_MESSAGE_CASES) {
  test(`withoutContent leaves an event without a message object unchanged: ${JSON.stringify(event)}`, () => {
    assert.equal(withoutContent(event), event);
  });
}

const NAME_CASES: Array<{ name: string; fileName: unknown; contentType: string | null; expected: string }> = [
  { name: "plain name", fileName: "report.pdf", contentType: "application/pdf", expected: "report.pdf" },
  { name: "Korean", fileName: "상담 기록 2024.pdf", contentType: null, expected: "상담 기록 2024.pdf" },
  { name: "Thai", fileName: "ใบเสร็จรับเงิน.jpg", contentType: null, expected: "ใบเสร็จรับเงิน.jpg" },
  { name: "emoji", fileName: "🎉 party 👨‍👩‍👧.png", contentType: null, expected: "🎉 party 👨‍👩‍👧.png" },
  { name: "parent directories", fileName: "../../etc/passwd", contentType: null, expected: "passwd" },
  { name: "absolute path", fileName: "/var/tmp/x.txt", contentType: null, expected: "x.txt" },
  { name: "backslash path", fileName: "C:\\Users\\me\\도면.dwg", contentType: null, expected: "도면.dwg" },
  { name: "mixed separators", fileName: "a/b\\c/d\\e.txt", contentType: null, expected: "e.txt" },
  { name: "backslash traversal", fileName: "..\\..\\boot.ini", contentType: null, expected: "boot.ini" },
  {
    name: "control characters",
    fileName: "a\u0000b\nc\r\td\u001fe\u007f.txt",
    contentType: null,
    expected: "abcde.txt",
  },
  {
    name: "header injection attempt",
    fileName: 'x.txt"\r\nSet-Cookie: a=b',
    contentType: null,
    expected: 'x.txt"Set-Cookie: a=b',
  },
  { name: "surrounding spaces", fileName: "  memo.txt  ", contentType: null, expected: "memo.txt" },
  { name: "inner spaces kept", fileName: "my  memo.txt", contentType: null, expected: "my  memo.txt" },
  { name: "dot", fileName: ".", contentType: "image/png", expected: `${SERIAL}.png` },
  { name: "dot dot", fileName: "..", contentType: "image/png", expected: `${SERIAL}.png` },
  { name: "path ending in ..", fileName: "a/..", contentType: "image/png", expected: `${SERIAL}.png` },
  { name: "empty", fileName: "", contentType: "image/gif", expected: `${SERIAL}.gif` },
  { name: "only spaces", fileName: "   ", contentType: "image/gif", expected: `${SERIAL}.gif` },
  { name: "only control characters", fileName: "\u0001\u0002", contentType: null, expected: `${SERIAL}.bin` },
  { name: "directory only", fileName: "dir/", contentType: "video/mp4", expected: `${SERIAL}.mp4` },
  { name: "undefined", fileName: undefined, contentType: "image/jpeg", expected: `${SERIAL}.jpg` },
  { name: "null", fileName: null, contentType: "image/jpeg", expected: `${SERIAL}.jpg` },
  { name: "number", fileName: 42, contentType: "image/jpeg", expected: `${SERIAL}.jpg` },
  { name: "object", fileName: { name: "a.txt" }, contentType: "image/jpeg", expected: `${SERIAL}.jpg` },
  { name: "array", fileName: ["a.txt"], contentType: "image/jpeg", expected: `${SERIAL}.jpg` },
];

for (const c of NAME_CASES) {
  test(`attachmentFileName: ${c.name}`, () => {
    assert.equal(attachmentFileName(c.fileName, SERIAL, c.contentType), c.expected);
  });
}

const EXTENSION_CASES: Array<{ contentType: string | null; extension: string }> = [
  { contentType: "image/jpeg", extension: "jpg" },
  { contentType: "image/png", extension: "png" },
  { contentType: "image/gif", extension: "gif" },
  { contentType: "image/webp", extension: "webp" },
  { contentType: "video/mp4", extension: "mp4" },
  { contentType: "video/quicktime", extension: "mov" },
  { contentType: "audio/mp4", extension: "m4a" },
  { contentType: "audio/x-m4a", extension: "m4a" },
  { contentType: "audio/aac", extension: "aac" },
  { contentType: "audio/mpeg", extension: "mp3" },
  { contentType: "image/jpeg; charset=x", extension: "jpg" },
  { contentType: "image/jpeg;charset=x", extension: "jpg" },
  { contentType: "  Image/JPEG ; q=1", extension: "jpg" },
  { contentType: "VIDEO/MP4", extension: "mp4" },
  { contentType: "application/pdf", extension: "bin" },
  { contentType: "application/octet-stream", extension: "bin" },
  { contentType: "image", extension: "bin" },
  { contentType: "jpeg", extension: "bin" },
  { contentType: "", extension: "bin" },
  { contentType: ";", extension: "bin" },
  { contentType: null, extension: "bin" },
];

for (const c of EXTENSION_CASES) {
  test(`attachmentFileName without a name for ${JSON.stringify(c.contentType)} → .${c.extension}`, () => {
    assert.equal(attachmentFileName(undefined, SERIAL, c.contentType), `${SERIAL}.${c.extension}`);
  });
}

test("attachmentFileName does not let a content type of Object.prototype's names pick an extension", () => {
  for (const contentType of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    assert.equal(attachmentFileName(undefined, SERIAL, contentType), `${SERIAL}.bin`, contentType);
  }
});

test("attachmentFileName caps a long name at 255 characters", () => {
  assert.equal(attachmentFileName("a".repeat(255), SERIAL, null), "a".repeat(255));
  const capped = attachmentFileName("b".repeat(300), SERIAL, null);
  assert.equal(capped, "b".repeat(255));
  // The cap applies to the base name, not to the directories in front of it.
  assert.equal(attachmentFileName(`${"d".repeat(300)}/short.txt`, SERIAL, null), "short.txt");
});

test("attachmentFileName never cuts an emoji in half at the 255 cap (the name stays well-formed UTF-16)", () => {
  // 254 units, then a 2-unit emoji: cutting at 255 would keep a lone high surrogate, which
  // encodeURIComponent (and so Content-Disposition's filename*) rejects with "URI malformed".
  const name = `${"a".repeat(254)}😀.jpg`;
  const served = attachmentFileName(name, SERIAL, "image/jpeg");
  assert.ok(served.length <= 255, `${served.length}`);
  assert.ok(served.isWellFormed(), "lone surrogate at the end of the served name");
  assert.doesNotThrow(() => encodeURIComponent(served));
});

test("attachmentFileName removes C1 control characters too (U+0080–U+009F)", () => {
  assert.equal(attachmentFileName("a\u0085b\u009bc.txt", SERIAL, null), "abc.txt");
});
