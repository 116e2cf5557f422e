// Unit tests for text every store keeps: NUL and unpaired surrogates are not, and their storable form escapes them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { storableForm, storableText } from "./storable-text.ts";

test("storable text, and the storable form of text that is not", () => {
  const cases: Array<[string, boolean, string]> = [
    ["1656168303/U4af4", true, "1656168303/U4af4"],
    ["한국어 😀", true, "한국어 😀"],
    ["a\u0000b", false, "a\\u0000b"],
    ["x\ud800", false, "x\\ud800"],
    ['quote " and \\', true, 'quote " and \\'],
  ];
  for (const [text, storable, form] of cases) {
    assert.equal(storableText(text), storable, JSON.stringify(text));
    assert.equal(storableForm(text), form, JSON.stringify(text));
    assert.equal(storableText(storableForm(text)), true);
  }
});
