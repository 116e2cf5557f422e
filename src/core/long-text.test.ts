// Unit tests for long-text cutting (SPEC §5): grapheme-safe previews and emoji/mention entries past the cut.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cutAtGrapheme, DEFAULT_LONG_TEXT, previewTextMessage } from "./long-text.ts";

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Asserts `cut` is a prefix of `text` made of whole graphemes, at most `max` units, no lone surrogate at the end. */
function assertWholeGraphemePrefix(text: string, cut: string, max: number): void {
  assert.ok(cut.length <= max, `length ${cut.length} > ${max}`);
  assert.ok(text.startsWith(cut), "not a prefix of the original");
  const last = cut.charCodeAt(cut.length - 1);
  assert.ok(!(last >= 0xd800 && last <= 0xdbff), "ends in a lone high surrogate");
  const boundaries = new Set([0]);
  for (const { index, segment } of segmenter.segment(text)) boundaries.add(index + segment.length);
  assert.ok(boundaries.has(cut.length), `cut at ${cut.length} splits a grapheme`);
}

const FAMILY = "👨‍👩‍👧‍👦"; // 11 UTF-16 units: 4 emoji joined by 3 ZWJ
const FLAG_JP = "🇯🇵"; // 4 units: two regional indicators
const THUMB_MEDIUM = "👍🏽"; // 4 units: emoji + skin-tone modifier
const THAI_KAM = "กำ"; // 2 units, one grapheme (SARA AM is a spacing mark)
const HAN_JAMO = "\u1112\u1161\u11AB"; // 한 as conjoining jamo: 3 units, one grapheme
const E_ACUTE = "e\u0301"; // e + combining acute: 2 units
const GRINNING = "😀"; // 2 units: a surrogate pair

test("the clusters used below have the sizes the cases assume", () => {
  for (const [cluster, units] of [
    [FAMILY, 11],
    [FLAG_JP, 4],
    [THUMB_MEDIUM, 4],
    [THAI_KAM, 2],
    [HAN_JAMO, 3],
    [E_ACUTE, 2],
    [GRINNING, 2],
  ] as const) {
    assert.equal(cluster.length, units);
    assert.equal([...segmenter.segment(cluster)].length, 1, `${cluster} is one grapheme`);
  }
});

// Each cluster straddles unit 300: it starts before 300 and ends after it, so it must be left out whole.
const STRADDLE_CASES: Array<{ name: string; cluster: string; before: number }> = [
  { name: "surrogate pair 😀 over unit 300", cluster: GRINNING, before: 299 },
  { name: "ZWJ family sequence", cluster: FAMILY, before: 295 },
  { name: "ZWJ family starting at 299", cluster: FAMILY, before: 299 },
  { name: "flag 🇯🇵", cluster: FLAG_JP, before: 298 },
  { name: "flag 🇯🇵 split between its indicators", cluster: FLAG_JP, before: 297 },
  { name: "skin tone 👍🏽", cluster: THUMB_MEDIUM, before: 297 },
  { name: "skin tone modifier just past the cut", cluster: THUMB_MEDIUM, before: 298 },
  { name: "Thai กำ", cluster: THAI_KAM, before: 299 },
  { name: "Korean conjoining jamo", cluster: HAN_JAMO, before: 298 },
  { name: "Korean conjoining jamo, vowel and final past the cut", cluster: HAN_JAMO, before: 299 },
  { name: "combining acute accent", cluster: E_ACUTE, before: 299 },
];

for (const c of STRADDLE_CASES) {
  test(`cutAtGrapheme leaves out a grapheme straddling the cut: ${c.name}`, () => {
    const text = `${"a".repeat(c.before)}${c.cluster}${"b".repeat(1200)}`;
    const cut = cutAtGrapheme(text, 300);
    assert.equal(cut, "a".repeat(c.before));
    assertWholeGraphemePrefix(text, cut, 300);
  });
}

const FIT_CASES: Array<{ name: string; cluster: string }> = [
  { name: "😀 ending exactly at 300", cluster: GRINNING },
  { name: "family ending exactly at 300", cluster: FAMILY },
  { name: "flag ending exactly at 300", cluster: FLAG_JP },
  { name: "jamo ending exactly at 300", cluster: HAN_JAMO },
];

for (const c of FIT_CASES) {
  test(`cutAtGrapheme keeps a grapheme that fits: ${c.name}`, () => {
    const text = `${"a".repeat(300 - c.cluster.length)}${c.cluster}${"b".repeat(800)}`;
    assert.equal(cutAtGrapheme(text, 300), text.slice(0, 300));
  });
}

const REPEAT_CASES: Array<{ name: string; unit: string; expectedLength: number }> = [
  { name: "5,000 units of ASCII", unit: "x", expectedLength: 300 },
  { name: "5,000 units of 😀", unit: GRINNING, expectedLength: 300 },
  { name: "families only", unit: FAMILY, expectedLength: 297 },
  { name: "flags only", unit: FLAG_JP, expectedLength: 300 },
  { name: "Thai กำ only", unit: THAI_KAM, expectedLength: 300 },
  { name: "jamo syllables only", unit: HAN_JAMO, expectedLength: 300 },
  { name: "한국어 precomposed", unit: "한국어", expectedLength: 300 },
];

for (const c of REPEAT_CASES) {
  test(`cutAtGrapheme on a long run: ${c.name}`, () => {
    const text = c.unit.repeat(Math.ceil(5000 / c.unit.length)).slice(0, 5000 - (5000 % c.unit.length));
    const cut = cutAtGrapheme(text, 300);
    assert.equal(cut.length, c.expectedLength);
    assertWholeGraphemePrefix(text, cut, 300);
  });
}

test("cutAtGrapheme returns a short text unchanged and an all-in-one grapheme as empty", () => {
  assert.equal(cutAtGrapheme("short", 300), "short");
  assert.equal(cutAtGrapheme("a".repeat(300), 300), "a".repeat(300));
  assert.equal(cutAtGrapheme(`e${"\u0301".repeat(400)}`, 300), "");
});

const LENGTH_CASES: Array<{ name: string; length: number; cut: boolean }> = [
  { name: "exactly 1000 units", length: 1000, cut: false },
  { name: "1001 units", length: 1001, cut: true },
  { name: "5000 units", length: 5000, cut: true },
  { name: "empty", length: 0, cut: false },
];

for (const c of LENGTH_CASES) {
  test(`previewTextMessage: ${c.name}`, () => {
    const message = { id: "1", type: "text", text: "z".repeat(c.length) };
    const result = previewTextMessage(message, DEFAULT_LONG_TEXT);
    assert.equal(result.cut, c.cut);
    if (c.cut) assert.equal(result.content.text, "z".repeat(300));
    else assert.equal(result.content, message);
  });
}

test("previewTextMessage: 1000 units made of emoji count as 1000 (UTF-16), not 500", () => {
  const text = GRINNING.repeat(500);
  assert.equal(previewTextMessage({ type: "text", text }, DEFAULT_LONG_TEXT).cut, false);
  assert.equal(previewTextMessage({ type: "text", text: `${text}a` }, DEFAULT_LONG_TEXT).cut, true);
});

test("previewTextMessage cuts a surrogate pair straddling unit 300 without leaving half of it", () => {
  const text = `${"a".repeat(299)}${GRINNING}${"b".repeat(2000)}`;
  const { content, cut } = previewTextMessage({ id: "9", type: "text", text }, DEFAULT_LONG_TEXT);
  assert.equal(cut, true);
  assert.equal(content.text, "a".repeat(299));
});

test("previewTextMessage drops emojis and mentionees past the cut, keeps the others and every other field", () => {
  const message = {
    id: "468789577898262530",
    type: "text",
    quoteToken: "q3Plxr4AgKd",
    markAsReadToken: "30yhdy232",
    quotedMessageId: "468789532432007169",
    text: "a".repeat(1500),
    emojis: [
      { index: 0, length: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "001" },
      { index: 294, length: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "002" },
      { index: 297, length: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "003" },
      { index: 800, length: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "004" },
    ],
    mention: {
      mentionees: [
        { index: 10, length: 5, type: "user", userId: "U0123456789abcdef0123456789abcdef" },
        { index: 294, length: 6, type: "all" },
        { index: 299, length: 2, type: "user", userId: "U1" },
        { index: 1000, length: 4, type: "user", isSelf: true },
      ],
    },
  };
  const original = structuredClone(message);
  const { content, cut } = previewTextMessage(message, DEFAULT_LONG_TEXT);
  assert.equal(cut, true);
  assert.deepEqual(content, {
    id: "468789577898262530",
    type: "text",
    quoteToken: "q3Plxr4AgKd",
    markAsReadToken: "30yhdy232",
    quotedMessageId: "468789532432007169",
    text: "a".repeat(300),
    emojis: [message.emojis[0], message.emojis[1]],
    mention: { mentionees: [message.mention.mentionees[0], message.mention.mentionees[1]] },
  });
  assert.deepEqual(message, original, "the stored message is not changed");
});

test("previewTextMessage removes the emojis and mention keys when no entry is left", () => {
  const message = {
    id: "1",
    type: "text",
    text: "a".repeat(1001),
    emojis: [{ index: 500, length: 6, productId: "p", emojiId: "001" }],
    mention: { mentionees: [{ index: 299, length: 5, type: "all" }] },
  };
  const { content } = previewTextMessage(message, DEFAULT_LONG_TEXT);
  assert.ok(!("emojis" in content), "emojis key removed");
  assert.ok(!("mention" in content), "mention key removed");
  assert.deepEqual(Object.keys(content).sort(), ["id", "text", "type"]);
});

test("previewTextMessage measures entries against the grapheme-safe preview, not the nominal 300", () => {
  // The preview ends at 295 (the family is left out), so an emoji ending at 297 is past it.
  const text = `${"a".repeat(295)}${FAMILY}${"b".repeat(900)}`;
  const { content } = previewTextMessage(
    {
      type: "text",
      text,
      emojis: [
        { index: 290, length: 5 },
        { index: 291, length: 6 },
      ],
    },
    DEFAULT_LONG_TEXT,
  );
  assert.equal(content.text, "a".repeat(295));
  assert.deepEqual(content.emojis, [{ index: 290, length: 5 }]);
});

test("previewTextMessage leaves a short text with emojis and mention as it is", () => {
  const message = {
    id: "1",
    type: "text",
    text: "hi @all",
    mention: { mentionees: [{ index: 3, length: 4, type: "all" }] },
  };
  const result = previewTextMessage(message, DEFAULT_LONG_TEXT);
  assert.deepEqual(result, { content: message, cut: false });
});

test("previewTextMessage honours a configured policy", () => {
  const { content, cut } = previewTextMessage(
    { type: "text", text: "abcdefghij" },
    { threshold: 5, previewLength: 3 },
  );
  assert.equal(cut, true);
  assert.equal(content.text, "abc");
});

test("previewTextMessage ignores messages whose text is not a string", () => {
  const message = { id: "1", type: "text", text: 12345 };
  assert.deepEqual(previewTextMessage(message, DEFAULT_LONG_TEXT), { content: message, cut: false });
});
