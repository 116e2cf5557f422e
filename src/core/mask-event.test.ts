// Unit tests for what operators see of a stored event by default: its message text masked, all else kept.
import assert from "node:assert/strict";
import { test } from "node:test";
import { maskEvent, maskMessage } from "./mask-event.ts";

test("a text message's text is masked with its length; other events are left as they are", () => {
  const event = { type: "message", message: { type: "text", id: "1", text: "전화번호 010-1234-5678" } };
  assert.deepEqual(maskEvent(event), {
    type: "message",
    message: { type: "text", id: "1", text: "[masked: 18 characters]" },
  });
  assert.equal(event.message.text, "전화번호 010-1234-5678", "the stored event is not changed");
  for (const other of [{ type: "follow" }, { type: "message", message: { type: "image", id: "2" } }])
    assert.deepEqual(maskEvent(other), other);
});

test("a sent message's texts are masked wherever they are (flex and template contents too); the rest is kept", () => {
  assert.deepEqual(
    maskMessage([
      { type: "text", text: "전화 주세요" },
      {
        type: "flex",
        altText: "주문 확인",
        contents: {
          type: "bubble",
          body: { type: "box", contents: [{ type: "text", text: "ok", size: "sm" }] },
        },
      },
      { type: "image", originalContentUrl: "https://example.com/a.jpg" },
    ]),
    [
      { type: "text", text: "[masked: 6 characters]" },
      {
        type: "flex",
        altText: "[masked: 5 characters]",
        contents: {
          type: "bubble",
          body: { type: "box", contents: [{ type: "text", text: "[masked: 2 characters]", size: "sm" }] },
        },
      },
      { type: "image", originalContentUrl: "https://example.com/a.jpg" },
    ],
  );
});
