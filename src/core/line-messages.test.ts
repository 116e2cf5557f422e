// Unit tests for LINE message validation (SPEC §6): a valid example of every type, then one broken rule at a time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { JsonObject } from "./line-event.ts";
import { MAX_MESSAGES, MessageSchema, validateMessages } from "./line-messages.ts";

const HTTPS = "https://example.com";
const APPLE = "🍎"; // 2 UTF-16 code units

// ---------------------------------------------------------------------------------------------------
// Valid messages. Each builder returns a fresh object, so that a case can edit it.

const postback = () => ({
  type: "postback",
  label: "Buy",
  data: "action=buy&itemid=111",
  displayText: "Buy",
});
const messageAction = (text = "Yes") => ({ type: "message", label: text, text });
const uriAction = () => ({ type: "uri", label: "View detail", uri: `${HTTPS}/page/111` });
const datePicker = () => ({
  type: "datetimepicker",
  label: "Pick a date",
  data: "storeId=12345",
  mode: "date",
  initial: "2025-06-18",
  min: "2025-01-01",
  max: "2025-12-31",
});
const clipboard = () => ({ type: "clipboard", label: "Copy", clipboardText: "ORDER-3920" });

const quickReply = () => ({
  items: [
    {
      type: "action",
      imageUrl: `${HTTPS}/icons/buy.png`,
      action: { ...postback(), inputOption: "openKeyboard", fillInText: "Size: " },
    },
    { type: "action", action: messageAction("Sushi") },
    { type: "action", action: { ...uriAction(), altUri: { desktop: `${HTTPS}/pc` } } },
    {
      type: "action",
      action: {
        type: "datetimepicker",
        label: "Reserve",
        data: "r=1",
        mode: "datetime",
        initial: "2025-06-18T19:00",
        min: "2025-06-18t00:00",
        max: "2025-12-31T23:59",
      },
    },
    {
      type: "action",
      action: { type: "datetimepicker", label: "Time", data: "t=1", mode: "time", initial: "06:15" },
    },
    { type: "action", action: { type: "camera", label: "Camera" } },
    { type: "action", action: { type: "cameraRoll", label: "Camera roll" } },
    { type: "action", action: { type: "location", label: "Location" } },
    { type: "action", action: clipboard() },
  ],
});

const text = (): JsonObject => ({
  type: "text",
  text: "Hello $ and $",
  emojis: [
    { index: 6, productId: "5ac1bfd5040ab15980c9b435", emojiId: "001" },
    { index: 12, productId: "5ac1bfd5040ab15980c9b435", emojiId: "002" },
  ],
  quoteToken: "q3Plxr4AgKd...",
  quickReply: quickReply(),
  sender: { name: "Support", iconUrl: `${HTTPS}/agent.png` },
});
/** LINE's textV2 example, with a repeated placeholder, escaped braces and every common property. */
const textV2 = (): JsonObject => ({
  type: "textV2",
  text: "Welcome, {user1}! {laugh}\n{everyone} {{user1}} means {user1}",
  substitution: {
    user1: { type: "mention", mentionee: { type: "user", userId: "U49585cd0d5..." } },
    laugh: { type: "emoji", productId: "5a8555cfe6256cc92ea23c2a", emojiId: "002" },
    everyone: { type: "mention", mentionee: { type: "all" } },
  },
  quoteToken: "q3Plxr4AgKd...",
  quickReply: { items: [{ type: "action", action: messageAction() }] },
  sender: { name: "Support" },
});
/** A textV2 whose text substitutes `n` entries made by `entry`, keys k0, k1, … */
const substituting = (n: number, entry: (i: number) => unknown, uses = 1): JsonObject => ({
  type: "textV2",
  text: many(n, (i) => `{k${i}}`.repeat(uses)).join(" "),
  substitution: Object.fromEntries(many(n, (i) => [`k${i}`, entry(i)])),
});
const KEY_20 = "Key_09_".padEnd(20, "z");
const plainV2 = (): JsonObject => ({ type: "textV2", text: "hi" });
const mentionOf = (i: number) => ({ type: "mention", mentionee: { type: "user", userId: `U${i}` } });
const emojiOf = (i: number) => ({ type: "emoji", productId: "5ac1bfd5040ab15980c9b435", emojiId: `00${i}` });
const coupon = (): JsonObject => ({
  type: "coupon",
  couponId: "01JYNW8JMQVFBNWF1APF8Z3FS7",
  deliveryTag: "2025_winter_campaign",
});
const sticker = (): JsonObject => ({ type: "sticker", packageId: "446", stickerId: "1988" });
const image = (): JsonObject => ({
  type: "image",
  originalContentUrl: `${HTTPS}/original.jpg`,
  previewImageUrl: `${HTTPS}/preview.jpg`,
});
const video = (): JsonObject => ({
  type: "video",
  originalContentUrl: `${HTTPS}/original.mp4`,
  previewImageUrl: `${HTTPS}/preview.jpg`,
  trackingId: "track-id.1@2025{x}",
});
const audio = (): JsonObject => ({
  type: "audio",
  originalContentUrl: `${HTTPS}/original.m4a`,
  duration: 60000,
});
const location = (): JsonObject => ({
  type: "location",
  title: "my location",
  address: "1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan",
  latitude: 35.67966,
  longitude: 139.73669,
});
const imagemap = (): JsonObject => ({
  type: "imagemap",
  baseUrl: `${HTTPS}/bot/images/rm001`,
  altText: "This is an imagemap",
  baseSize: { width: 1040, height: 1040 },
  video: {
    originalContentUrl: `${HTTPS}/video.mp4`,
    previewImageUrl: `${HTTPS}/video_preview.jpg`,
    area: { x: 0, y: 0, width: 1040, height: 585 },
    externalLink: { linkUri: `${HTTPS}/see_more.html`, label: "See More" },
  },
  actions: [
    { type: "uri", linkUri: `${HTTPS}/`, area: { x: 0, y: 586, width: 520, height: 454 } },
    { type: "message", text: "Hello", area: { x: 520, y: 586, width: 520, height: 454 } },
    { type: "clipboard", label: "Copy", clipboardText: "ABC", area: { x: 0, y: 0, width: 10, height: 10 } },
  ],
});
const buttons = (): JsonObject => ({
  type: "template",
  altText: "This is a buttons template",
  template: {
    type: "buttons",
    thumbnailImageUrl: `${HTTPS}/bot/images/image.jpg`,
    imageAspectRatio: "rectangle",
    imageSize: "cover",
    imageBackgroundColor: "#FFFFFF",
    title: "Menu",
    text: "Please select",
    defaultAction: { type: "uri", uri: `${HTTPS}/page/123` },
    actions: [postback(), messageAction(), uriAction(), datePicker()],
  },
});
const confirm = (): JsonObject => ({
  type: "template",
  altText: "this is a confirm template",
  template: { type: "confirm", text: "Are you sure?", actions: [messageAction("Yes"), messageAction("No")] },
});
const column = (n: number) => ({
  thumbnailImageUrl: `${HTTPS}/bot/images/item${n}.jpg`,
  imageBackgroundColor: "#000000",
  title: `Item ${n}`,
  text: "description",
  defaultAction: { type: "uri", label: "View", uri: `${HTTPS}/item/${n}` },
  actions: [postback(), clipboard(), uriAction()],
});
const carousel = (): JsonObject => ({
  type: "template",
  altText: "this is a carousel template",
  template: {
    type: "carousel",
    columns: [column(1), column(2)],
    imageAspectRatio: "square",
    imageSize: "contain",
  },
});
const imageCarousel = (): JsonObject => ({
  type: "template",
  altText: "this is an image carousel template",
  template: {
    type: "image_carousel",
    columns: [
      { imageUrl: `${HTTPS}/item1.jpg`, action: { type: "postback", label: "Buy", data: "id=1" } },
      { imageUrl: `${HTTPS}/item2.jpg`, action: { type: "message", text: "Yes" } },
      { imageUrl: `${HTTPS}/item3.jpg`, action: { type: "uri", label: "View detail", uri: `${HTTPS}/3` } },
    ],
  },
});

const star = (gold: boolean) => ({
  type: "icon",
  size: "sm",
  url: `${HTTPS}/${gold ? "gold" : "gray"}_star.png`,
});
const infoRow = (label: string, value: string) => ({
  type: "box",
  layout: "baseline",
  spacing: "sm",
  contents: [
    { type: "text", text: label, color: "#aaaaaa", size: "sm", flex: 1 },
    { type: "text", text: value, wrap: true, color: "#666666", size: "sm", flex: 5 },
  ],
});
/** LINE's restaurant showcase bubble, trimmed. */
const restaurantBubble = () => ({
  type: "bubble",
  hero: {
    type: "image",
    url: `${HTTPS}/01_1_cafe.png`,
    size: "full",
    aspectRatio: "20:13",
    aspectMode: "cover",
    action: { type: "uri", uri: HTTPS },
  },
  body: {
    type: "box",
    layout: "vertical",
    contents: [
      { type: "text", text: "Brown Cafe", weight: "bold", size: "xl" },
      {
        type: "box",
        layout: "baseline",
        margin: "md",
        contents: [
          star(true),
          star(true),
          star(false),
          { type: "text", text: "4.0", size: "sm", margin: "md" },
        ],
      },
      {
        type: "box",
        layout: "vertical",
        margin: "lg",
        spacing: "sm",
        contents: [
          infoRow("Place", "Miraina Tower, 4-1-6 Shinjuku, Tokyo"),
          infoRow("Time", "10:00 - 23:00"),
        ],
      },
      { type: "separator", margin: "md" },
      {
        type: "text",
        contents: [
          { type: "span", text: "Open ", weight: "bold" },
          { type: "span", text: "today", color: "#1DB446" },
        ],
      },
    ],
  },
  footer: {
    type: "box",
    layout: "vertical",
    spacing: "sm",
    contents: [
      {
        type: "button",
        style: "link",
        height: "sm",
        action: { type: "uri", label: "CALL", uri: "tel:0312345678" },
      },
      { type: "button", style: "link", height: "sm", action: { type: "uri", label: "WEBSITE", uri: HTTPS } },
      { type: "button", action: { type: "postback", label: "Reserve a table for tonight", data: "reserve" } },
      { type: "filler" },
    ],
    flex: 0,
  },
  action: { type: "uri", uri: "line://app/1234-abcd" },
});
const flexBubble = (): JsonObject => ({ type: "flex", altText: "Brown Cafe", contents: restaurantBubble() });
const videoBubble = () => ({
  type: "bubble",
  size: "mega",
  hero: {
    type: "video",
    url: `${HTTPS}/video.mp4`,
    previewUrl: `${HTTPS}/preview.png`,
    altContent: { type: "image", size: "full", url: `${HTTPS}/alt.png` },
    aspectRatio: "20:13",
    action: { type: "uri", label: "More", uri: HTTPS },
  },
  body: { type: "box", layout: "vertical", contents: [{ type: "text", text: "Watch this" }] },
});
const flexCarousel = (): JsonObject => ({
  type: "flex",
  altText: "Our shops",
  contents: { type: "carousel", contents: [restaurantBubble(), videoBubble()] },
});

// ---------------------------------------------------------------------------------------------------
// Editing a copy at a path written like a problem's field.

const DROP = Symbol("drop");

/** A copy of `base` with `path` (e.g. `template.actions[0].uri`) set to `value`, or removed for DROP. */
function edit(base: JsonObject, path: string, value: unknown): JsonObject {
  const copy = structuredClone(base);
  const keys = path.split(/[.[\]]/).filter(Boolean);
  const last = keys.pop() as string;
  let at = copy as Record<string, unknown>;
  for (const key of keys) at = at[key] as Record<string, unknown>;
  if (value === DROP) delete at[last];
  else at[last] = value;
  return copy;
}

const repeat = (n: number, s = "a") => s.repeat(n);
const many = <T>(n: number, make: (i: number) => T) => Array.from({ length: n }, (_, i) => make(i));

// ---------------------------------------------------------------------------------------------------

const VALID: [string, unknown[]][] = [
  ["text with emojis, quote token, sender and quick replies of every action type", [text()]],
  ["a plain text", [{ type: "text", text: "hi" }]],
  ["text of 2,500 🍎 (5,000 UTF-16 code units)", [{ type: "text", text: repeat(2500, APPLE) }]],
  ["textV2 with mentions, an emoji, escaped braces, quote token, sender and quick reply", [textV2()]],
  ["textV2 without placeholders", [{ type: "textV2", text: "hi" }]],
  ["textV2 with only literal braces", [{ type: "textV2", text: "{{x}} and }}{{ and {{{{" }]],
  ["textV2 with an entry text does not use", [edit(textV2(), "substitution.unused", emojiOf(1))]],
  [
    "textV2 substituting 20 mentions and 20 emojis",
    [
      {
        type: "textV2",
        text: `${substituting(20, mentionOf).text} ${many(20, (i) => `{e${i}}`).join("")}`,
        substitution: {
          ...(substituting(20, mentionOf).substitution as JsonObject),
          ...Object.fromEntries(many(20, (i) => [`e${i}`, emojiOf(i)])),
        },
      },
    ],
  ],
  [
    "textV2 with 100 entries and a key of 20 characters",
    [
      {
        type: "textV2",
        text: `{${KEY_20}}`,
        substitution: {
          ...Object.fromEntries(many(99, (i) => [`k${i}`, emojiOf(i)])),
          [KEY_20]: emojiOf(0),
        },
      },
    ],
  ],
  [
    "textV2 of 5,000 UTF-16 code units",
    [{ type: "textV2", text: `{a}${repeat(4997)}`, substitution: { a: emojiOf(1) } }],
  ],
  ["coupon with a deliveryTag", [coupon()]],
  ["coupon with only its couponId", [{ type: "coupon", couponId: "01JYNW8JMQVFBNWF1APF8Z3FS7" }]],
  ["sticker", [sticker()]],
  ["image", [image()]],
  ["video with a trackingId", [video()]],
  ["audio", [audio()]],
  ["location", [location()]],
  ["imagemap with video and every action type", [imagemap()]],
  ["imagemap without actions", [edit(imagemap(), "actions", [])]],
  ["buttons template", [buttons()]],
  [
    "buttons template: 160 units of text without title or thumbnail",
    [
      {
        type: "template",
        altText: "a",
        template: { type: "buttons", text: repeat(160), actions: [clipboard()] },
      },
    ],
  ],
  ["confirm template", [confirm()]],
  ["carousel template", [carousel()]],
  ["image carousel template", [imageCarousel()]],
  ["altText of 1,500 units", [edit(confirm(), "altText", repeat(1500))]],
  ["flex bubble", [flexBubble()]],
  ["flex carousel with a video hero", [flexCarousel()]],
  ["five messages", [text(), sticker(), image(), video(), audio()]],
];

for (const [name, messages] of VALID) {
  test(`valid: ${name}`, () => {
    assert.deepEqual(validateMessages(messages), []);
  });
}

interface Invalid {
  name: string;
  message: unknown;
  field: string;
  expect: RegExp;
}

/** A case that breaks one rule of one message: exactly one problem, at `messages[0].<at>` (by default the edited path). */
const broken = (
  name: string,
  base: () => JsonObject,
  path: string,
  value: unknown,
  expect: RegExp,
  at = path,
): Invalid => ({
  name,
  message: edit(base(), path, value),
  field: `messages[0].${at}`,
  expect,
});

const HTTPS_ONLY = /^must be an https:\/\/ URL$/;
const REQUIRED = /^is required$/;
const LINK_ONLY = /^must be an http:\/\/, https:\/\/, line:\/\/ or tel: URI$/;

const INVALID: Invalid[] = [
  // Any message
  {
    name: "unknown type",
    message: { type: "file" },
    field: "messages[0].type",
    expect:
      /^must be one of "text", "textV2", "sticker", "image", "video", "audio", "location", "coupon", "imagemap", "template", "flex" \(got "file"\)$/,
  },
  {
    name: "no type",
    message: { text: "hi" },
    field: "messages[0].type",
    expect: /^is required: one of "text",/,
  },
  { name: "a string, not an object", message: "hello", field: "messages[0]", expect: /^must be an object$/ },
  { name: "null", message: null, field: "messages[0]", expect: /^must be an object$/ },
  { name: "an array", message: [text()], field: "messages[0]", expect: /^must be an object$/ },
  // text
  broken("text missing", text, "text", DROP, REQUIRED),
  broken("text empty", () => ({ type: "text" }), "text", "", /^must not be empty$/),
  broken("text not a string", text, "text", 42, /^must be a string$/),
  broken(
    "text of 2,500 🍎 and an a",
    () => ({ type: "text" }),
    "text",
    `${repeat(2500, APPLE)}a`,
    /^longer than 5,000 UTF-16 code units \(5,001\)$/,
  ),
  broken(
    "emoji index not at a $",
    text,
    "emojis[0].index",
    7,
    /^must point at a "\$" placeholder in text \(found " "\)$/,
  ),
  broken(
    "emoji index past the end",
    text,
    "emojis[1].index",
    13,
    /^is past the end of text \(13 UTF-16 code units\)$/,
  ),
  broken("emoji index negative", text, "emojis[1].index", -1, /^must be at least 0 \(got -1\)$/),
  broken("emoji without productId", text, "emojis[0].productId", DROP, REQUIRED),
  {
    name: "21 emojis",
    message: {
      type: "text",
      text: repeat(21, "$"),
      emojis: many(21, (index) => ({ index, productId: "p", emojiId: "e" })),
    },
    field: "messages[0].emojis",
    expect: /^must have at most 20 items \(has 21\)$/,
  },
  broken("quoteToken not a string", text, "quoteToken", 5, /^must be a string$/),
  // textV2
  broken("textV2 without text", textV2, "text", DROP, REQUIRED),
  broken("textV2 text empty", () => ({ type: "textV2" }), "text", "", /^must not be empty$/),
  broken(
    "textV2 text of 5,001 units",
    () => ({ type: "textV2" }),
    "text",
    `${repeat(2500, APPLE)}a`,
    /^longer than 5,000 UTF-16 code units \(5,001\)$/,
  ),
  broken(
    "textV2 with a { never closed",
    textV2,
    "text",
    "Hi {user1} and {user1",
    /^has a "\{" at index 15 with no "\}" after it \(write "\{\{" for a literal "\{"\)$/,
  ),
  broken(
    "textV2 with a lone }",
    textV2,
    "text",
    "Hi user1} {user1}",
    /^has a "\}" at index 8 with no "\{" before it \(write "\}\}" for a literal "\}"\)$/,
  ),
  broken(
    "textV2 with {{ closed by a single }",
    textV2,
    "text",
    "{{user1}",
    /^has a "\}" at index 7 with no "\{"/,
  ),
  broken(
    "textV2 placeholder with a space",
    textV2,
    "text",
    "Hi {user 1}",
    /^"\{user 1\}" at index 3 is not a placeholder: a key is 1 to 20 of A-Z, a-z, 0-9 and _ \(write "\{\{" and "\}\}" for literal braces\)$/,
  ),
  broken("textV2 empty placeholder", textV2, "text", "Hi {}", /^"\{\}" at index 3 is not a placeholder/),
  broken(
    "textV2 placeholder of 21 characters",
    textV2,
    "text",
    `{${repeat(21)}}`,
    /^".*" at index 0 is not a placeholder/,
  ),
  broken(
    "textV2 placeholder without its entry",
    textV2,
    "text",
    "Hi {user1} and {user2}",
    /^is required: text has the placeholder \{user2\}$/,
    "substitution.user2",
  ),
  broken(
    "textV2 placeholder without substitution",
    () => ({ type: "textV2", text: "Hi {user1}", substitution: {} }),
    "substitution",
    DROP,
    /^is required: text has the placeholder \{user1\}$/,
    "substitution.user1",
  ),
  broken("textV2 substitution an array", textV2, "substitution", [], /^must be an object$/),
  broken(
    "textV2 key with a hyphen",
    plainV2,
    "substitution",
    { "user-1": mentionOf(1) },
    /^key may contain only A-Z, a-z, 0-9 and _$/,
    'substitution["user-1"]',
  ),
  broken(
    "textV2 key of 21 characters",
    plainV2,
    "substitution",
    { [repeat(21)]: mentionOf(1) },
    /^key longer than 20 UTF-16 code units \(21\)$/,
    `substitution.${repeat(21)}`,
  ),
  broken(
    "textV2 empty key",
    plainV2,
    "substitution",
    { "": mentionOf(1) },
    /^key must not be empty$/,
    'substitution[""]',
  ),
  {
    name: "textV2 with 101 entries",
    message: edit(substituting(101, emojiOf), "text", "none"),
    field: "messages[0].substitution",
    expect: /^must have at most 100 entries \(has 101\)$/,
  },
  broken(
    "substitution of type sticker",
    textV2,
    "substitution.laugh.type",
    "sticker",
    /^must be one of "mention", "emoji" \(got "sticker"\)$/,
  ),
  broken(
    "substitution without type",
    textV2,
    "substitution.laugh.type",
    DROP,
    /^is required: one of "mention", "emoji"$/,
  ),
  broken("substitution a string", textV2, "substitution.laugh", "smile", /^must be an object$/),
  broken("mention without mentionee", textV2, "substitution.user1.mentionee", DROP, REQUIRED),
  broken(
    "mentionee of type group",
    textV2,
    "substitution.user1.mentionee.type",
    "group",
    /^must be one of "user", "all" \(got "group"\)$/,
  ),
  broken("user mentionee without userId", textV2, "substitution.user1.mentionee.userId", DROP, REQUIRED),
  broken(
    "user mentionee with an empty userId",
    textV2,
    "substitution.user1.mentionee.userId",
    "",
    /^must not be empty$/,
  ),
  broken("emoji without productId", textV2, "substitution.laugh.productId", DROP, REQUIRED),
  broken("emoji with a numeric emojiId", textV2, "substitution.laugh.emojiId", 2, /^must be a string$/),
  {
    name: "textV2 substituting 21 mentions",
    message: substituting(21, mentionOf),
    field: "messages[0].text",
    expect: /^substitutes 21 mentions; LINE allows at most 20 in one message$/,
  },
  {
    name: "textV2 substituting one mention 21 times (each use counts)",
    message: substituting(1, mentionOf, 21),
    field: "messages[0].text",
    expect: /^substitutes 21 mentions; LINE allows at most 20 in one message$/,
  },
  {
    name: "textV2 substituting 21 emojis",
    message: substituting(21, emojiOf),
    field: "messages[0].text",
    expect: /^substitutes 21 emojis; LINE allows at most 20 in one message$/,
  },
  broken("textV2 quoteToken not a string", textV2, "quoteToken", 5, /^must be a string$/),
  broken(
    "textV2 sender name of 21",
    textV2,
    "sender.name",
    repeat(21),
    /^longer than 20 UTF-16 code units \(21\)$/,
  ),
  // coupon
  broken("coupon without couponId", coupon, "couponId", DROP, REQUIRED),
  broken("coupon with an empty couponId", coupon, "couponId", "", /^must not be empty$/),
  broken("coupon with a numeric couponId", coupon, "couponId", 1, /^must be a string$/),
  broken("deliveryTag of 31", coupon, "deliveryTag", repeat(31), /^longer than 30 UTF-16 code units \(31\)$/),
  broken(
    "deliveryTag with a hyphen",
    coupon,
    "deliveryTag",
    "winter-2025",
    /^may contain only A-Z, a-z, 0-9 and _$/,
  ),
  broken("deliveryTag empty", coupon, "deliveryTag", "", /^must not be empty$/),
  broken("coupon quick reply without items", coupon, "quickReply", {}, REQUIRED, "quickReply.items"),
  // sticker
  broken("sticker without stickerId", sticker, "stickerId", DROP, REQUIRED),
  broken("sticker packageId a number", sticker, "packageId", 446, /^must be a string$/),
  // image
  broken("image over http", image, "originalContentUrl", "http://example.com/a.jpg", HTTPS_ONLY),
  broken(
    "image URL of 2,001 units",
    image,
    "previewImageUrl",
    `${HTTPS}/${repeat(1981)}`,
    /^longer than 2,000 UTF-16 code units \(2,001\)$/,
  ),
  broken(
    "image URL that does not parse",
    image,
    "previewImageUrl",
    "https://exa mple.com/a.jpg",
    /^is not a valid URL$/,
  ),
  // video
  broken("video without preview", video, "previewImageUrl", DROP, REQUIRED),
  broken(
    "video trackingId with a space",
    video,
    "trackingId",
    "track id",
    /^may contain only A-Z, a-z, 0-9 and the symbols/,
  ),
  broken("video trackingId with an underscore", video, "trackingId", "track_id", /^may contain only/),
  broken(
    "video trackingId of 101",
    video,
    "trackingId",
    repeat(101),
    /^longer than 100 UTF-16 code units \(101\)$/,
  ),
  // audio
  broken("audio of duration 0", audio, "duration", 0, /^must be at least 1 \(got 0\)$/),
  broken("audio duration not whole", audio, "duration", 1.5, /^must be an integer$/),
  broken("audio duration a string", audio, "duration", "60000", /^must be an integer$/),
  broken("audio over http", audio, "originalContentUrl", "http://example.com/a.m4a", HTTPS_ONLY),
  // location
  broken("latitude 91", location, "latitude", 91, /^must be at most 90 \(got 91\)$/),
  broken("longitude -180.5", location, "longitude", -180.5, /^must be at least -180 \(got -180.5\)$/),
  broken("latitude a string", location, "latitude", "35.6", /^must be a number$/),
  broken("title of 101", location, "title", repeat(101), /^longer than 100 UTF-16 code units \(101\)$/),
  broken("address missing", location, "address", DROP, REQUIRED),
  // imagemap
  broken("imagemap baseUrl over http", imagemap, "baseUrl", "http://example.com/rm", HTTPS_ONLY),
  broken(
    "imagemap altText of 1,501",
    imagemap,
    "altText",
    repeat(1501),
    /^longer than 1,500 UTF-16 code units \(1,501\)$/,
  ),
  broken("imagemap width 1000", imagemap, "baseSize.width", 1000, /^must be 1040 \(got 1000\)$/),
  broken("imagemap height 0", imagemap, "baseSize.height", 0, /^must be at least 1 \(got 0\)$/),
  broken("imagemap area x -1", imagemap, "actions[0].area.x", -1, /^must be at least 0 \(got -1\)$/),
  broken("imagemap area without height", imagemap, "actions[1].area.height", DROP, REQUIRED),
  broken("imagemap uri ftp", imagemap, "actions[0].linkUri", "ftp://example.com", LINK_ONLY),
  broken(
    "imagemap message of 401",
    imagemap,
    "actions[1].text",
    repeat(401),
    /^longer than 400 UTF-16 code units \(401\)$/,
  ),
  broken("imagemap clipboard without text", imagemap, "actions[2].clipboardText", DROP, REQUIRED),
  broken(
    "imagemap postback action",
    imagemap,
    "actions[0].type",
    "postback",
    /^must be one of "uri", "message", "clipboard" \(got "postback"\)$/,
  ),
  broken(
    "imagemap 51 actions",
    imagemap,
    "actions",
    many(51, () => ({ type: "message", text: "x", area: { x: 0, y: 0, width: 1, height: 1 } })),
    /^must have at most 50 items \(has 51\)$/,
  ),
  broken("imagemap video without area", imagemap, "video.area", DROP, REQUIRED),
  broken(
    "imagemap video over http",
    imagemap,
    "video.originalContentUrl",
    "http://example.com/v.mp4",
    HTTPS_ONLY,
  ),
  broken(
    "imagemap external link label of 31",
    imagemap,
    "video.externalLink.label",
    repeat(31),
    /^longer than 30 UTF-16 code units \(31\)$/,
  ),
  // templates
  broken(
    "template altText of 1,501",
    buttons,
    "altText",
    repeat(1501),
    /^longer than 1,500 UTF-16 code units \(1,501\)$/,
  ),
  broken("template altText missing", buttons, "altText", DROP, REQUIRED),
  broken(
    "template type list",
    buttons,
    "template.type",
    "list",
    /^must be one of "buttons", "confirm", "carousel", "image_carousel" \(got "list"\)$/,
  ),
  broken(
    "buttons text of 61 with title and thumbnail",
    buttons,
    "template.text",
    repeat(61),
    /^longer than 60 UTF-16 code units \(61\), the limit with a title or thumbnail$/,
  ),
  broken(
    "buttons text of 161",
    buttons,
    "template.text",
    repeat(161),
    /^longer than 160 UTF-16 code units \(161\)$/,
  ),
  broken(
    "buttons title of 41",
    buttons,
    "template.title",
    repeat(41),
    /^longer than 40 UTF-16 code units \(41\)$/,
  ),
  broken(
    "buttons thumbnail over http",
    buttons,
    "template.thumbnailImageUrl",
    "http://example.com/t.jpg",
    HTTPS_ONLY,
  ),
  broken(
    "buttons background not a color",
    buttons,
    "template.imageBackgroundColor",
    "white",
    /^must be a color like #FFFFFF$/,
  ),
  broken(
    "buttons aspect ratio wide",
    buttons,
    "template.imageAspectRatio",
    "wide",
    /^must be one of "rectangle", "square" \(got "wide"\)$/,
  ),
  broken("buttons without actions", buttons, "template.actions", [], /^must have at least 1 item \(has 0\)$/),
  broken(
    "buttons with 5 actions",
    buttons,
    "template.actions",
    many(5, () => postback()),
    /^must have at most 4 items \(has 5\)$/,
  ),
  broken("template action without label", buttons, "template.actions[0].label", DROP, REQUIRED),
  broken(
    "template action label of 21",
    buttons,
    "template.actions[1].label",
    repeat(21),
    /^longer than 20 UTF-16 code units \(21\)$/,
  ),
  broken(
    "camera action in a template",
    buttons,
    "template.defaultAction.type",
    "camera",
    /^camera actions are allowed only in quick reply buttons$/,
  ),
  broken(
    "confirm with 3 actions",
    confirm,
    "template.actions",
    many(3, () => messageAction()),
    /^must have exactly 2 items \(has 3\)$/,
  ),
  broken(
    "confirm text of 241",
    confirm,
    "template.text",
    repeat(241),
    /^longer than 240 UTF-16 code units \(241\)$/,
  ),
  broken(
    "carousel of 11 columns",
    carousel,
    "template.columns",
    many(11, (i) => column(i)),
    /^must have at most 10 items \(has 11\)$/,
  ),
  broken(
    "carousel without columns",
    carousel,
    "template.columns",
    [],
    /^must have at least 1 item \(has 0\)$/,
  ),
  broken(
    "carousel column text of 121",
    carousel,
    "template.columns[1].text",
    repeat(121),
    /^longer than 120 UTF-16 code units \(121\)$/,
  ),
  broken(
    "carousel column text of 61 with a title",
    carousel,
    "template.columns[0].text",
    repeat(61),
    /the limit with a title or thumbnail$/,
  ),
  broken(
    "carousel columns with different action counts",
    carousel,
    "template.columns[1].actions",
    [postback(), uriAction()],
    /^has 2 actions but columns\[0\] has 3; all columns need the same number$/,
  ),
  broken(
    "carousel column with 4 actions",
    carousel,
    "template.columns",
    [{ ...column(1), actions: many(4, () => postback()) }],
    /^must have at most 3 items \(has 4\)$/,
    "template.columns[0].actions",
  ),
  broken(
    "image carousel over http",
    imageCarousel,
    "template.columns[0].imageUrl",
    "http://example.com/1.jpg",
    HTTPS_ONLY,
  ),
  broken(
    "image carousel label of 13",
    imageCarousel,
    "template.columns[0].action.label",
    repeat(13),
    /^longer than 12 UTF-16 code units \(13\)$/,
  ),
  broken("image carousel column without action", imageCarousel, "template.columns[1].action", DROP, REQUIRED),
  // actions (in a buttons template)
  broken(
    "action of unknown type",
    buttons,
    "template.actions[0].type",
    "call",
    /^must be one of "postback", "message", "uri", "datetimepicker", "clipboard" \(got "call"\)$/,
  ),
  broken(
    "richmenuswitch action",
    buttons,
    "template.actions[0].type",
    "richmenuswitch",
    /^richmenuswitch actions work only in rich menus, not in messages$/,
  ),
  broken(
    "postback data of 301",
    buttons,
    "template.actions[0].data",
    repeat(301),
    /^longer than 300 UTF-16 code units \(301\)$/,
  ),
  broken("postback without data", buttons, "template.actions[0].data", DROP, REQUIRED),
  broken(
    "postback with text and displayText",
    buttons,
    "template.actions[0].text",
    "buy",
    /^cannot be used together with displayText$/,
  ),
  broken(
    "postback inputOption openCamera",
    buttons,
    "template.actions[0].inputOption",
    "openCamera",
    /^must be one of "closeRichMenu", "openRichMenu", "openKeyboard", "openVoice" \(got "openCamera"\)$/,
  ),
  broken("message action without text", buttons, "template.actions[1].text", DROP, REQUIRED),
  broken(
    "message action text of 301",
    buttons,
    "template.actions[1].text",
    repeat(301),
    /^longer than 300 UTF-16 code units \(301\)$/,
  ),
  broken("uri action ftp", buttons, "template.actions[2].uri", "ftp://example.com/f", LINK_ONLY),
  broken("uri action javascript", buttons, "template.actions[2].uri", "javascript:alert(1)", LINK_ONLY),
  broken(
    "uri action of 1,001",
    buttons,
    "template.actions[2].uri",
    `${HTTPS}/${repeat(981)}`,
    /^longer than 1,000 UTF-16 code units \(1,001\)$/,
  ),
  broken(
    "uri action altUri ftp",
    buttons,
    "template.actions[2].altUri",
    { desktop: "ftp://example.com" },
    LINK_ONLY,
    "template.actions[2].altUri.desktop",
  ),
  broken(
    "datetimepicker mode week",
    buttons,
    "template.actions[3].mode",
    "week",
    /^must be one of "date", "time", "datetime" \(got "week"\)$/,
  ),
  broken(
    "datetimepicker initial with slashes",
    buttons,
    "template.actions[3].initial",
    "2025/06/18",
    /^must look like 2017-06-18 for mode "date"$/,
  ),
  broken(
    "datetimepicker initial February 30",
    buttons,
    "template.actions[3].initial",
    "2025-02-30",
    /^must look like 2017-06-18 for mode "date"$/,
  ),
  broken(
    "datetimepicker min before 1900",
    buttons,
    "template.actions[3].min",
    "1899-12-31",
    /^must be between 1900-01-01 and 2100-12-31$/,
  ),
  broken(
    "datetimepicker max before min",
    buttons,
    "template.actions[3].max",
    "2024-12-31",
    /^must be later than min$/,
  ),
  broken(
    "datetimepicker initial after max",
    buttons,
    "template.actions[3].initial",
    "2026-01-01",
    /^must lie between min and max$/,
  ),
  broken(
    "clipboard text of 1,001",
    carousel,
    "template.columns[0].actions[1].clipboardText",
    repeat(1001),
    /^longer than 1,000 UTF-16 code units \(1,001\)$/,
  ),
  // quick reply and sender (on a text)
  broken(
    "14 quick reply items",
    text,
    "quickReply.items",
    many(14, () => ({ type: "action", action: messageAction() })),
    /^must have at most 13 items \(has 14\)$/,
  ),
  broken("no quick reply items", text, "quickReply.items", [], /^must have at least 1 item \(has 0\)$/),
  broken("quick reply item without type", text, "quickReply.items[1].type", DROP, REQUIRED),
  broken(
    "quick reply item of type button",
    text,
    "quickReply.items[1].type",
    "button",
    /^must be "action" \(got "button"\)$/,
  ),
  broken(
    "quick reply icon over http",
    text,
    "quickReply.items[0].imageUrl",
    "http://example.com/i.png",
    HTTPS_ONLY,
  ),
  broken("quick reply action without label", text, "quickReply.items[5].action.label", DROP, REQUIRED),
  broken(
    "quick reply label of 21",
    text,
    "quickReply.items[7].action.label",
    repeat(21),
    /^longer than 20 UTF-16 code units \(21\)$/,
  ),
  broken(
    "quick reply datetime with a date",
    text,
    "quickReply.items[3].action.initial",
    "2025-06-18",
    /^must look like 2017-06-18T06:15 for mode "datetime"$/,
  ),
  broken(
    "quick reply time 24:00",
    text,
    "quickReply.items[4].action.initial",
    "24:00",
    /^must look like 06:15 for mode "time"$/,
  ),
  broken("sender name of 21", text, "sender.name", repeat(21), /^longer than 20 UTF-16 code units \(21\)$/),
  broken("sender icon over http", text, "sender.iconUrl", "http://example.com/a.png", HTTPS_ONLY),
  {
    name: "quick reply item without action, on a sticker",
    message: edit(sticker(), "quickReply", { items: [{ type: "action" }] }),
    field: "messages[0].quickReply.items[0].action",
    expect: REQUIRED,
  },
  // flex
  broken("flex altText empty", flexBubble, "altText", "", /^must not be empty$/),
  broken("flex without contents", flexBubble, "contents", DROP, REQUIRED),
  broken(
    "flex container of type bubbles",
    flexBubble,
    "contents.type",
    "bubbles",
    /^must be one of "bubble", "carousel" \(got "bubbles"\)$/,
  ),
  broken(
    "box layout grid",
    flexBubble,
    "contents.body.layout",
    "grid",
    /^must be one of "horizontal", "vertical", "baseline" \(got "grid"\)$/,
  ),
  broken("box without contents", flexBubble, "contents.footer.contents", DROP, REQUIRED),
  broken("box contents not an array", flexBubble, "contents.footer.contents", {}, /^must be an array$/),
  broken(
    "component of unknown type",
    flexBubble,
    "contents.body.contents[3].type",
    "line",
    /^must be one of "box", "button", "image", "icon", "text", "separator", "filler" \(got "line"\)$/,
  ),
  broken(
    "text without text or spans",
    flexBubble,
    "contents.body.contents[0].text",
    DROP,
    /^is required unless contents \(spans\) is set$/,
  ),
  broken("span without text", flexBubble, "contents.body.contents[4].contents[1].text", DROP, REQUIRED),
  broken(
    "span directly in a box",
    flexBubble,
    "contents.body.contents[3]",
    { type: "span", text: "x" },
    /^a span is allowed only in a text's contents$/,
    "contents.body.contents[3].type",
  ),
  broken(
    "video in a body",
    flexBubble,
    "contents.body.contents[3]",
    videoBubble().hero,
    /^a video is allowed only as a bubble's hero$/,
    "contents.body.contents[3].type",
  ),
  broken(
    "hero of type text",
    flexBubble,
    "contents.hero.type",
    "text",
    /^must be one of "box", "image", "video" \(got "text"\)$/,
  ),
  broken("hero image over http", flexBubble, "contents.hero.url", "http://example.com/a.png", HTTPS_ONLY),
  broken(
    "icon over http",
    flexBubble,
    "contents.body.contents[1].contents[0].url",
    "http://example.com/s.png",
    HTTPS_ONLY,
  ),
  {
    name: "icon in a vertical box",
    message: edit(flexBubble(), "contents.body.contents[3]", {
      type: "box",
      layout: "vertical",
      contents: [star(true)],
    }),
    field: "messages[0].contents.body.contents[3].contents[0]",
    expect: /^an icon is allowed only in a box with layout baseline$/,
  },
  broken("button without action", flexBubble, "contents.footer.contents[0].action", DROP, REQUIRED),
  broken(
    "button action without label",
    flexBubble,
    "contents.footer.contents[1].action.label",
    DROP,
    REQUIRED,
  ),
  broken(
    "button label of 41",
    flexBubble,
    "contents.footer.contents[2].action.label",
    repeat(41),
    /^longer than 40 UTF-16 code units \(41\)$/,
  ),
  broken(
    "bubble action of type location",
    flexBubble,
    "contents.action.type",
    "location",
    /^location actions are allowed only in quick reply buttons$/,
  ),
  broken(
    "video hero without altContent",
    flexCarousel,
    "contents.contents[1].hero.altContent",
    DROP,
    REQUIRED,
  ),
  broken(
    "carousel of 13 bubbles",
    flexCarousel,
    "contents.contents",
    many(13, () => restaurantBubble()),
    /^must have at most 12 items \(has 13\)$/,
  ),
  broken("empty carousel", flexCarousel, "contents.contents", [], /^must have at least 1 item \(has 0\)$/),
  broken(
    "carousel holding a box",
    flexCarousel,
    "contents.contents[0].type",
    "box",
    /^must be "bubble" \(got "box"\)$/,
  ),
];

for (const { name, message, field, expect } of INVALID) {
  test(`invalid: ${name}`, () => {
    const problems = validateMessages([message]);
    assert.deepEqual(
      problems.map((p) => p.field),
      [field],
      JSON.stringify(problems),
    );
    assert.match(problems[0]?.message ?? "", expect);
  });
}

test("the messages array: not an array, empty, too long", () => {
  for (const notArray of [undefined, null, {}, "text", text()]) {
    assert.deepEqual(validateMessages(notArray), [
      { field: "messages", message: "must be an array of 1 to 5 message objects" },
    ]);
  }
  assert.deepEqual(validateMessages([]), [{ field: "messages", message: "must contain at least 1 message" }]);
  assert.equal(MAX_MESSAGES, 5);
  assert.deepEqual(validateMessages(many(6, () => text())), [
    { field: "messages", message: "at most 5 messages per request (got 6)" },
  ]);
});

test("every problem is reported, across messages and within one", () => {
  const problems = validateMessages([
    text(),
    edit(edit(image(), "originalContentUrl", "http://example.com/a.jpg"), "previewImageUrl", DROP),
    { type: "carousel" },
    edit(buttons(), "template.actions[2].uri", "ftp://x"),
  ]);
  assert.deepEqual(
    problems.map((p) => p.field),
    [
      "messages[1].previewImageUrl",
      "messages[1].originalContentUrl",
      "messages[2].type",
      "messages[3].template.actions[2].uri",
    ],
  );
});

test("textV2 mentions go to group and room chats only; emojis anywhere", () => {
  for (const chat of ["group", "room", undefined] as const) {
    assert.deepEqual(validateMessages([textV2()], chat === undefined ? {} : { chat }), [], String(chat));
  }
  assert.deepEqual(validateMessages([coupon(), textV2()], { chat: "user" }), [
    {
      field: "messages[1].substitution.user1",
      message: "a mention works only in a group or room chat, not in a 1:1 chat",
    },
    {
      field: "messages[1].substitution.everyone",
      message: "a mention works only in a group or room chat, not in a 1:1 chat",
    },
  ]);
  // Only what text substitutes counts: an unused mention entry is no mention.
  const emojiOnly = { type: "textV2", text: "{laugh}", substitution: textV2().substitution };
  assert.deepEqual(validateMessages([emojiOnly], { chat: "user" }), []);
});

test("problems stop at 20, then one note says there are more", () => {
  const items = many(13, () => ({
    type: "action",
    imageUrl: "http://x",
    action: { type: "message", text: "x" },
  }));
  const problems = validateMessages([
    edit(text(), "quickReply.items", items),
    edit(text(), "quickReply.items", items),
  ]);
  assert.equal(problems.length, 21);
  assert.deepEqual(problems[20], {
    field: "messages",
    message: "more problems not listed (stopped after 20)",
  });
  assert.deepEqual(problems.slice(0, 2), [
    { field: "messages[0].quickReply.items[0].imageUrl", message: "must be an https:// URL" },
    { field: "messages[0].quickReply.items[0].action.label", message: "is required" },
  ]);
});

test("flex JSON size: 30 KB a bubble, 50 KB a carousel, counted in UTF-8 bytes", () => {
  // 가 is 1 UTF-16 unit but 3 UTF-8 bytes: 11,000 of them are 33,000 bytes.
  const big = (units: number) =>
    edit(restaurantBubble(), "body.contents[0].text", repeat(units, "가")) as JsonObject;
  assert.deepEqual(validateMessages([{ type: "flex", altText: "a", contents: big(9000) }]), []);

  const [bubble] = validateMessages([{ type: "flex", altText: "a", contents: big(11000) }]);
  assert.equal(bubble?.field, "messages[0].contents");
  assert.match(
    bubble?.message ?? "",
    /^larger than 30 KB, LINE's limit for a bubble \(3\d,\d{3} bytes of JSON\)$/,
  );

  const inCarousel = validateMessages([
    {
      type: "flex",
      altText: "a",
      contents: { type: "carousel", contents: [restaurantBubble(), big(11000)] },
    },
  ]);
  assert.deepEqual(
    inCarousel.map((p) => p.field),
    ["messages[0].contents.contents[1]"],
  );

  const [carouselProblem, ...rest] = validateMessages([
    { type: "flex", altText: "a", contents: { type: "carousel", contents: [big(9000), big(9000)] } },
  ]);
  assert.equal(carouselProblem?.field, "messages[0].contents");
  assert.match(carouselProblem?.message ?? "", /^larger than 50 KB, LINE's limit for a carousel/);
  assert.deepEqual(rest, []);
});

test("absurdly nested boxes are refused without exhausting the stack", () => {
  let box: JsonObject = { type: "text", text: "deep" };
  for (let i = 0; i < 10_000; i++) box = { type: "box", layout: "vertical", contents: [box] };
  const problems = validateMessages([
    { type: "flex", altText: "a", contents: { type: "bubble", body: box } },
  ]);
  assert.equal(problems.length, 1);
  assert.match(problems[0]?.message ?? "", /^nested more than 64 levels deep$/);
});

test("MessageSchema is a union by type of the types the validator accepts, with every $ref defined", () => {
  const types = MessageSchema.anyOf.map(
    (variant) => (variant.properties as { type: { const: string } }).type.const,
  );
  assert.deepEqual(types, [
    "text",
    "textV2",
    "sticker",
    "image",
    "video",
    "audio",
    "location",
    "coupon",
    "imagemap",
    "template",
    "flex",
  ]);
  const json = JSON.stringify(MessageSchema);
  const refs = new Set([...json.matchAll(/"\$ref":"#\/\$defs\/(\w+)"/g)].map((m) => m[1]));
  assert.ok(refs.size > 5);
  for (const ref of refs) assert.ok(Object.hasOwn(MessageSchema.$defs, ref as string), `${ref} is defined`);
});

test("a JSON Schema validator given MessageSchema agrees on textV2 and coupon", () => {
  const validate = new Ajv2020({ strict: false }).compile(JSON.parse(JSON.stringify(MessageSchema)));
  for (const message of [textV2(), coupon(), substituting(100, emojiOf)]) {
    assert.ok(validate(message), JSON.stringify(validate.errors));
  }
  for (const message of [
    edit(textV2(), "substitution", { "user-1": mentionOf(1) }),
    edit(textV2(), "substitution.user1.mentionee.userId", DROP),
    substituting(101, emojiOf),
    edit(coupon(), "deliveryTag", "winter-2025"),
  ]) {
    assert.equal(validate(message), false, JSON.stringify(message));
  }
});

test("http:// media URLs pass only from the listed development origins, never by default", () => {
  const image = (url: string) => [{ type: "image", originalContentUrl: url, previewImageUrl: url }];
  const local = "http://127.0.0.1:8080/media/abc.jpg";
  assert.deepEqual(
    validateMessages(image(local)).map((p) => p.field),
    ["messages[0].originalContentUrl", "messages[0].previewImageUrl"],
  );
  assert.deepEqual(validateMessages(image(local), { httpOrigins: ["http://127.0.0.1:8080"] }), []);
  for (const other of [
    "http://127.0.0.1:8081/media/abc.jpg",
    "http://127.0.0.1:80800/x.jpg",
    "http://evil/x.jpg",
  ]) {
    assert.equal(validateMessages(image(other), { httpOrigins: ["http://127.0.0.1:8080"] }).length, 2, other);
  }
});
