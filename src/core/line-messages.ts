// The LINE message objects a partner may send (SPEC §6): their TypeBox schema, and a validator that
// reads that schema, adds LINE's cross-field rules and names every offending field in plain words.
import { type TProperties, type TSchema, Type } from "@sinclair/typebox";
import { asObject, type JsonObject } from "./line-event.ts";

/** Messages LINE accepts in one reply or push request. */
export const MAX_MESSAGES = 5;

/** One thing wrong with a partner's `messages`; `field` is a path like `messages[2].template.actions[0].uri`. */
export type MessageProblem = { field: string; message: string };

const MAX_PROBLEMS = 20;
// Far deeper than any real Flex Message; keeps a hostile body from exhausting the stack.
const MAX_DEPTH = 64;

type Report = (field: string, message: string) => void;

/** What validateMessages may know of the send besides the messages. */
export interface MessageContext {
  /** The kind of chat the messages go to; without it, rules that depend on it are left to LINE. */
  chat?: "user" | "group" | "room";
  /**
   * Origins (`http://127.0.0.1:8080`) whose plain http:// URLs pass where LINE requires https: a local
   * development setup sending its own uploads to the LINE emulator. LINE itself never takes them.
   */
  httpOrigins?: readonly string[];
}

/** What the JSON Schema cannot say. Kept under a symbol so that it stays out of the OpenAPI output. */
interface NodeRules {
  /** Cross-field rules, run once the value is known to be an object. */
  check?: (value: JsonObject, field: string, report: Report, context: MessageContext) => void;
  /** For a union by `type`: why a known value is refused here. */
  hints?: Record<string, string>;
}
const RULES = Symbol("talkgate.line-messages.rules");

function withRules<T extends TSchema>(schema: T, rules: NodeRules): T {
  return { ...schema, [RULES]: rules };
}

/** Shared definitions: emitted once, under `MessageSchema.$defs`, and referenced from everywhere else. */
const DEFS: Record<string, TSchema> = {};
const refTo = (name: string) => Type.Ref(`#/$defs/${name}`);
function define(name: string, schema: TSchema): TSchema {
  DEFS[name] = schema;
  return refTo(name);
}

// ---------------------------------------------------------------------------------------------------
// Building blocks. Lengths are LINE's "max character limit", which LINE counts in UTF-16 code units.

const HTTPS_URL = "^https://";
const LINK_URI = "^(https?://|line://|tel:)";
const TRACKING_ID = "^[A-Za-z0-9.=,+*()%$&;:@{}!?<>\\[\\]-]+$";
const RGB_COLOR = "^#[0-9A-Fa-f]{6}$";
const WORD = "^[0-9A-Za-z_]+$";

/** How the validator words a failed `pattern`, and whether a match must also parse as a URL. */
const PATTERNS: Record<string, { message: string; url?: boolean }> = {
  [HTTPS_URL]: { message: "must be an https:// URL", url: true },
  [LINK_URI]: { message: "must be an http://, https://, line:// or tel: URI", url: true },
  [TRACKING_ID]: { message: "may contain only A-Z, a-z, 0-9 and the symbols -.=,+*()%$&;:@{}!?<>[]" },
  [RGB_COLOR]: { message: "must be a color like #FFFFFF" },
  [WORD]: { message: "may contain only A-Z, a-z, 0-9 and _" },
};

const str = (maxLength: number, description?: string) =>
  Type.String({ minLength: 1, maxLength, ...(description === undefined ? {} : { description }) });
const httpsUrl = (description?: string) =>
  Type.String({ maxLength: 2000, pattern: HTTPS_URL, ...(description === undefined ? {} : { description }) });
const linkUri = (maxLength = 1000) => Type.String({ maxLength, pattern: LINK_URI });
const nonEmpty = () => Type.String({ minLength: 1 });
const oneOf = (...values: string[]) => Type.Union(values.map((value) => Type.Literal(value)));
const count = (min: number) => Type.Integer({ minimum: min });

// ---------------------------------------------------------------------------------------------------
// Actions (https://developers.line.biz/en/reference/messaging-api/#action-objects). Whether `label` is
// required, and how long it may be, depends on where the action sits.

interface LabelRule {
  required: boolean;
  max: number;
}

const QUICK_REPLY_ONLY = "actions are allowed only in quick reply buttons";
const RICH_MENU_ONLY = "richmenuswitch actions work only in rich menus, not in messages";

const DATETIME_MODES = {
  date: { pattern: /^\d{4}-\d{2}-\d{2}$/, example: "2017-06-18", min: "1900-01-01", max: "2100-12-31" },
  time: { pattern: /^([01]\d|2[0-3]):[0-5]\d$/, example: "06:15", min: "00:00", max: "23:59" },
  datetime: {
    pattern: /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d$/,
    example: "2017-06-18T06:15",
    min: "1900-01-01T00:00",
    max: "2100-12-31T23:59",
  },
} as const;

/** A real calendar date (no 2023-02-30) when `value` starts with one. */
function isCalendarDate(value: string): boolean {
  const [y, m, d] = value.slice(0, 10).split("-").map(Number);
  const date = new Date(Date.UTC(y ?? 0, (m ?? 0) - 1, d ?? 0));
  return date.getUTCFullYear() === y && date.getUTCMonth() === (m ?? 0) - 1 && date.getUTCDate() === d;
}

/** initial/min/max must match the mode, lie in LINE's range and be ordered min < initial < max. */
function checkDatetimePicker(action: JsonObject, field: string, report: Report): void {
  const mode =
    typeof action.mode === "string" && Object.hasOwn(DATETIME_MODES, action.mode) ? action.mode : null;
  if (mode === null) return;
  const format = DATETIME_MODES[mode as keyof typeof DATETIME_MODES];
  const valid: Record<string, string> = {};
  for (const key of ["initial", "min", "max"]) {
    const raw = action[key];
    if (typeof raw !== "string") continue;
    // LINE also accepts a lower-case "t" in datetimes; compare them in one form.
    const value = mode === "datetime" ? raw.replace("t", "T") : raw;
    if (!format.pattern.test(value) || (mode !== "time" && !isCalendarDate(value))) {
      report(`${field}.${key}`, `must look like ${format.example} for mode "${mode}"`);
    } else if (value < format.min || value > format.max) {
      report(`${field}.${key}`, `must be between ${format.min} and ${format.max}`);
    } else valid[key] = value;
  }
  const { initial, min, max } = valid;
  if (min !== undefined && max !== undefined && min >= max) report(`${field}.max`, "must be later than min");
  else if (
    initial !== undefined &&
    ((min !== undefined && initial < min) || (max !== undefined && initial > max))
  )
    report(`${field}.initial`, "must lie between min and max");
}

function actionUnion(label: LabelRule, where: string, quickReply = false): TSchema {
  const labelSchema = str(label.max, `Label; ${label.required ? "required" : "optional"} ${where}`);
  const withLabel = (type: string, properties: TProperties, description: string) =>
    Type.Object(
      {
        type: Type.Literal(type),
        label: label.required ? labelSchema : Type.Optional(labelSchema),
        ...properties,
      },
      { description },
    );
  const actions = [
    withRules(
      withLabel(
        "postback",
        {
          data: Type.String({ maxLength: 300, description: "Returned in the postback event" }),
          displayText: Type.Optional(str(300)),
          text: Type.Optional(str(300, "Deprecated; not together with displayText")),
          inputOption: Type.Optional(oneOf("closeRichMenu", "openRichMenu", "openKeyboard", "openVoice")),
          fillInText: Type.Optional(Type.String({ maxLength: 300 })),
        },
        "Postback action",
      ),
      {
        check: (action, field, report) => {
          if (action.displayText !== undefined && action.text !== undefined)
            report(`${field}.text`, "cannot be used together with displayText");
        },
      },
    ),
    withLabel("message", { text: str(300) }, "Message action: the user sends `text`"),
    withLabel(
      "uri",
      {
        uri: linkUri(),
        altUri: Type.Optional(Type.Object({ desktop: linkUri() }, { description: "URI on LINE for PC" })),
      },
      "URI action",
    ),
    withRules(
      withLabel(
        "datetimepicker",
        {
          data: Type.String({ maxLength: 300 }),
          mode: oneOf("date", "time", "datetime"),
          initial: Type.Optional(
            Type.String({ description: "2017-06-18, 06:15 or 2017-06-18T06:15 by mode" }),
          ),
          max: Type.Optional(Type.String()),
          min: Type.Optional(Type.String()),
        },
        "Datetime picker action",
      ),
      { check: checkDatetimePicker },
    ),
    withLabel("clipboard", { clipboardText: str(1000) }, "Copies clipboardText to the user's clipboard"),
  ];
  if (quickReply) {
    actions.push(
      withLabel("camera", {}, "Opens the camera"),
      withLabel("cameraRoll", {}, "Opens the camera roll"),
      withLabel("location", {}, "Opens the location screen"),
    );
  }
  const hints: Record<string, string> = { richmenuswitch: RICH_MENU_ONLY };
  if (!quickReply)
    for (const type of ["camera", "cameraRoll", "location"]) hints[type] = `${type} ${QUICK_REPLY_ONLY}`;
  return withRules(Type.Union(actions, { description: `Action ${where}` }), { hints });
}

// LINE's label rules: required (20) in templates and quick replies, optional (12) in image carousels,
// required on a Flex button and optional elsewhere in Flex (40); a defaultAction's is never shown.
const TemplateAction = define(
  "LineTemplateAction",
  actionUnion({ required: true, max: 20 }, "in a template"),
);
const DefaultAction = define(
  "LineDefaultAction",
  actionUnion({ required: false, max: 20 }, "as a template's defaultAction"),
);
const ImageCarouselAction = define(
  "LineImageCarouselAction",
  actionUnion({ required: false, max: 12 }, "in an image carousel column"),
);
const QuickReplyAction = define(
  "LineQuickReplyAction",
  actionUnion({ required: true, max: 20 }, "in a quick reply button", true),
);
const FlexButtonAction = define(
  "LineFlexButtonAction",
  actionUnion({ required: true, max: 40 }, "on a Flex button"),
);
const FlexAction = define(
  "LineFlexAction",
  actionUnion({ required: false, max: 40 }, "on a Flex bubble, box, image or text"),
);

// ---------------------------------------------------------------------------------------------------
// Common properties of every message.

const QuickReplySchema = define(
  "LineQuickReply",
  Type.Object(
    {
      items: Type.Array(
        Type.Object({
          type: Type.Literal("action"),
          imageUrl: Type.Optional(httpsUrl("Icon at the start of the button (PNG)")),
          action: QuickReplyAction,
        }),
        { minItems: 1, maxItems: 13 },
      ),
    },
    { description: "Quick reply buttons shown with this message" },
  ),
);

const SenderSchema = define(
  "LineSender",
  Type.Object(
    { name: Type.Optional(str(20)), iconUrl: Type.Optional(httpsUrl()) },
    { description: "Display name and icon to show instead of the account's" },
  ),
);

function message(type: string, properties: TProperties, description: string, rules?: NodeRules): TSchema {
  const schema = Type.Object(
    {
      type: Type.Literal(type),
      ...properties,
      quickReply: Type.Optional(QuickReplySchema),
      sender: Type.Optional(SenderSchema),
    },
    { description },
  );
  return rules === undefined ? schema : withRules(schema, rules);
}

// ---------------------------------------------------------------------------------------------------
// text, sticker, image, video, audio, location.

/** Each LINE emoji replaces the `$` at its index (Messaging API reference, text message). */
function checkEmojiPlaceholders(msg: JsonObject, field: string, report: Report): void {
  if (typeof msg.text !== "string" || !Array.isArray(msg.emojis)) return;
  const text = msg.text;
  msg.emojis.forEach((emoji: unknown, i) => {
    const index = asObject(emoji)?.index;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0) return;
    if (index >= text.length)
      report(
        `${field}.emojis[${i}].index`,
        `is past the end of text (${fmt(text.length)} UTF-16 code units)`,
      );
    else if (text[index] !== "$")
      report(
        `${field}.emojis[${i}].index`,
        `must point at a "$" placeholder in text (found ${quote(text[index])})`,
      );
  });
}

// altText limits below are 1,500: LINE raised them from 400, which older SDK comments still show.
const TextMessage = message(
  "text",
  {
    text: str(5000, "At most 5,000 UTF-16 code units (an emoji like 🍎 counts 2)"),
    emojis: Type.Optional(
      Type.Array(Type.Object({ index: count(0), productId: nonEmpty(), emojiId: nonEmpty() }), {
        maxItems: 20,
        description: "LINE emojis, each replacing the `$` at `index` in text",
      }),
    ),
    quoteToken: Type.Optional(nonEmpty()),
  },
  "Text message",
  { check: checkEmojiPlaceholders },
);

// ---------------------------------------------------------------------------------------------------
// textV2 (https://developers.line.biz/en/reference/messaging-api/#text-message-v2): each `{key}` in text
// is replaced by substitution[key], a mention or a LINE emoji; `{{` and `}}` are literal braces.

// LINE: a key is half-width alphanumerics and "_", at most 20 characters; at most 100 entries; at most
// 20 mentions and 20 emojis substituted in one message. Mentions work only in reply and push (all that
// talkgate sends) to a group or room. LINE does not say whether its 5,000 units count the text before or
// after substitution: the text as sent is checked, so a long one may still be refused by LINE.
const MAX_KEY = 20;
const MAX_SUBSTITUTED = { mention: 20, emoji: 20 };

const isKey = (key: string) => key.length <= MAX_KEY && regexp(WORD).test(key);

/** The `{key}` placeholders of a textV2 text, in order, and the first brace that pairs with nothing. */
function placeholdersOf(text: string): { placeholders: { key: string; index: number }[]; unpaired?: string } {
  const placeholders: { key: string; index: number }[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if ((c === "{" || c === "}") && text[i + 1] === c) i += 2;
    else if (c === "}")
      return {
        placeholders,
        unpaired: `has a "}" at index ${i} with no "{" before it (write "}}" for a literal "}")`,
      };
    else if (c === "{") {
      const close = text.indexOf("}", i + 1);
      if (close < 0)
        return {
          placeholders,
          unpaired: `has a "{" at index ${i} with no "}" after it (write "{{" for a literal "{")`,
        };
      placeholders.push({ key: text.slice(i + 1, close), index: i });
      i = close + 1;
    } else i++;
  }
  return { placeholders };
}

/**
 * LINE's rules between text and substitution: braces pair up, every placeholder has its entry, at most 20
 * mentions and 20 emojis are substituted (each use counts), and mentions go to group or room chats only.
 * LINE says nothing against entries that text does not use: they are checked for shape only.
 */
function checkSubstitution(msg: JsonObject, field: string, report: Report, context: MessageContext): void {
  if (typeof msg.text !== "string") return;
  const { placeholders, unpaired } = placeholdersOf(msg.text);
  if (unpaired !== undefined) report(`${field}.text`, unpaired);
  const substitution = msg.substitution === undefined ? {} : asObject(msg.substitution);
  if (substitution === null) return; // the walk reported it
  const seen = new Set<string>();
  const substituted = { mention: 0, emoji: 0 };
  for (const { key, index } of placeholders) {
    const type = Object.hasOwn(substitution, key) ? asObject(substitution[key])?.type : undefined;
    if (type === "mention" || type === "emoji") substituted[type]++;
    if (seen.has(key)) continue;
    seen.add(key);
    const entry = member(`${field}.substitution`, key);
    if (!isKey(key))
      report(
        `${field}.text`,
        `${quote(`{${key}}`)} at index ${index} is not a placeholder: a key is 1 to ${MAX_KEY} of A-Z, a-z, 0-9 and _ (write "{{" and "}}" for literal braces)`,
      );
    else if (!Object.hasOwn(substitution, key))
      report(entry, `is required: text has the placeholder {${key}}`);
    else if (type === "mention" && context.chat === "user")
      report(entry, "a mention works only in a group or room chat, not in a 1:1 chat");
  }
  for (const type of ["mention", "emoji"] as const) {
    if (substituted[type] > MAX_SUBSTITUTED[type])
      report(
        `${field}.text`,
        `substitutes ${substituted[type]} ${type}s; LINE allows at most ${MAX_SUBSTITUTED[type]} in one message`,
      );
  }
}

const Substitution = Type.Union(
  [
    Type.Object(
      {
        type: Type.Literal("mention"),
        mentionee: Type.Union([
          Type.Object(
            { type: Type.Literal("user"), userId: nonEmpty() },
            { description: "A user who is a member of the group or room; not a bot" },
          ),
          Type.Object({ type: Type.Literal("all") }, { description: "Everyone in the group or room" }),
        ]),
      },
      { description: "Mention: only in a group or room chat the account is a member of" },
    ),
    Type.Object(
      { type: Type.Literal("emoji"), productId: nonEmpty(), emojiId: nonEmpty() },
      { description: "LINE emoji" },
    ),
  ],
  { description: "What replaces the placeholder" },
);

const TextV2Message = message(
  "textV2",
  {
    text: str(
      5000,
      "At most 5,000 UTF-16 code units; {key} is replaced by substitution[key]; {{ and }} are braces",
    ),
    substitution: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: Substitution,
          propertyNames: Type.String({ minLength: 1, maxLength: MAX_KEY, pattern: WORD }),
          maxProperties: 100,
          description:
            "Key (A-Z, a-z, 0-9, _; at most 20) to a mention or LINE emoji; at most 20 of each substituted",
        },
      ),
    ),
    quoteToken: Type.Optional(nonEmpty()),
  },
  "Text message (v2): mentions and LINE emojis by {key} placeholders",
  { check: checkSubstitution },
);

const StickerMessage = message(
  "sticker",
  { packageId: nonEmpty(), stickerId: nonEmpty(), quoteToken: Type.Optional(nonEmpty()) },
  "Sticker message",
);

const ImageMessage = message(
  "image",
  { originalContentUrl: httpsUrl("JPEG or PNG, at most 10 MB"), previewImageUrl: httpsUrl("At most 1 MB") },
  "Image message",
);

const VideoMessage = message(
  "video",
  {
    originalContentUrl: httpsUrl("MP4, at most 200 MB"),
    previewImageUrl: httpsUrl("JPEG or PNG, at most 1 MB"),
    trackingId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: TRACKING_ID,
        description: "Echoed in videoPlayComplete",
      }),
    ),
  },
  "Video message",
);

const AudioMessage = message(
  "audio",
  { originalContentUrl: httpsUrl("M4A or MP3, at most 200 MB"), duration: count(1) },
  "Audio message; duration in milliseconds",
);

const LocationMessage = message(
  "location",
  {
    title: str(100),
    address: str(100),
    latitude: Type.Number({ minimum: -90, maximum: 90 }),
    longitude: Type.Number({ minimum: -180, maximum: 180 }),
  },
  "Location message",
);

// Coupon (https://developers.line.biz/en/reference/messaging-api/#coupon-message). Whether couponId
// names a live coupon of the channel only LINE can tell.
const CouponMessage = message(
  "coupon",
  {
    couponId: Type.String({ minLength: 1, description: "From LINE's create-coupon or coupon-list answer" }),
    deliveryTag: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 30,
        pattern: WORD,
        description: "Delivery path shown in LINE's coupon insight (Unknown when absent)",
      }),
    ),
  },
  "Coupon message: a coupon created at LINE",
);

// ---------------------------------------------------------------------------------------------------
// Imagemap.

// LINE documents no minimum size for a tappable area, so a zero-sized one is left for LINE to judge.
const Area = Type.Object({ x: count(0), y: count(0), width: count(0), height: count(0) });
const imagemapLabel = Type.Optional(str(100, "Read out by accessibility features"));

const ImagemapMessage = message(
  "imagemap",
  {
    baseUrl: httpsUrl("The image is fetched from baseUrl/{width} (240, 300, 460, 700, 1040)"),
    altText: str(1500),
    baseSize: Type.Object({ width: Type.Literal(1040), height: count(1) }),
    actions: Type.Array(
      Type.Union([
        Type.Object({ type: Type.Literal("uri"), label: imagemapLabel, linkUri: linkUri(), area: Area }),
        Type.Object({ type: Type.Literal("message"), label: imagemapLabel, text: str(400), area: Area }),
        Type.Object({
          type: Type.Literal("clipboard"),
          label: imagemapLabel,
          clipboardText: str(1000),
          area: Area,
        }),
      ]),
      { maxItems: 50 },
    ),
    video: Type.Optional(
      Type.Object({
        originalContentUrl: httpsUrl("MP4"),
        previewImageUrl: httpsUrl(),
        area: Area,
        externalLink: Type.Optional(Type.Object({ linkUri: linkUri(), label: str(30) })),
      }),
    ),
  },
  "Imagemap message",
);

// ---------------------------------------------------------------------------------------------------
// Templates. A title or thumbnail leaves room for only 60 units of text.

const SHORT_TEXT = 60;

function checkShortText(full: number) {
  return (value: JsonObject, field: string, report: Report): void => {
    const { text } = value;
    const crowded = value.title !== undefined || value.thumbnailImageUrl !== undefined;
    if (crowded && typeof text === "string" && text.length > SHORT_TEXT && text.length <= full)
      report(
        `${field}.text`,
        `longer than ${SHORT_TEXT} UTF-16 code units (${fmt(text.length)}), the limit with a title or thumbnail`,
      );
  };
}

const imageOptions = {
  imageAspectRatio: Type.Optional(oneOf("rectangle", "square")),
  imageSize: Type.Optional(oneOf("cover", "contain")),
};

const ButtonsTemplate = withRules(
  Type.Object(
    {
      type: Type.Literal("buttons"),
      thumbnailImageUrl: Type.Optional(httpsUrl("JPEG or PNG")),
      ...imageOptions,
      imageBackgroundColor: Type.Optional(Type.String({ pattern: RGB_COLOR })),
      title: Type.Optional(str(40)),
      text: str(160, "At most 160; at most 60 with a title or thumbnail"),
      defaultAction: Type.Optional(DefaultAction),
      actions: Type.Array(TemplateAction, { minItems: 1, maxItems: 4 }),
    },
    { description: "Buttons template" },
  ),
  { check: checkShortText(160) },
);

const ConfirmTemplate = Type.Object(
  {
    type: Type.Literal("confirm"),
    text: str(240),
    actions: Type.Array(TemplateAction, { minItems: 2, maxItems: 2 }),
  },
  { description: "Confirm template: a question and two buttons" },
);

const CarouselColumn = withRules(
  Type.Object({
    thumbnailImageUrl: Type.Optional(httpsUrl("JPEG or PNG")),
    imageBackgroundColor: Type.Optional(Type.String({ pattern: RGB_COLOR })),
    title: Type.Optional(str(40)),
    text: str(120, "At most 120; at most 60 with a title or thumbnail"),
    defaultAction: Type.Optional(DefaultAction),
    actions: Type.Array(TemplateAction, { minItems: 1, maxItems: 3 }),
  }),
  { check: checkShortText(120) },
);

/** LINE: every column of a carousel has the same number of actions. */
function checkSameActionCount(carousel: JsonObject, field: string, report: Report): void {
  if (!Array.isArray(carousel.columns)) return;
  const counts = carousel.columns.map((column: unknown) => {
    const actions = asObject(column)?.actions;
    return Array.isArray(actions) ? actions.length : null;
  });
  const first = counts[0];
  if (first === null || first === undefined) return;
  counts.forEach((n, i) => {
    if (n !== null && n !== first)
      report(
        `${field}.columns[${i}].actions`,
        `has ${n} actions but columns[0] has ${first}; all columns need the same number`,
      );
  });
}

const CarouselTemplate = withRules(
  Type.Object(
    {
      type: Type.Literal("carousel"),
      columns: Type.Array(CarouselColumn, { minItems: 1, maxItems: 10 }),
      ...imageOptions,
    },
    { description: "Carousel template; every column has the same number of actions" },
  ),
  { check: checkSameActionCount },
);

const ImageCarouselTemplate = Type.Object(
  {
    type: Type.Literal("image_carousel"),
    columns: Type.Array(Type.Object({ imageUrl: httpsUrl("JPEG or PNG"), action: ImageCarouselAction }), {
      minItems: 1,
      maxItems: 10,
    }),
  },
  { description: "Image carousel template" },
);

const TemplateMessage = message(
  "template",
  {
    altText: str(1500),
    template: Type.Union([ButtonsTemplate, ConfirmTemplate, CarouselTemplate, ImageCarouselTemplate]),
  },
  "Template message",
);

// ---------------------------------------------------------------------------------------------------
// Flex. Components nest through one named definition; only the structure LINE cannot render without
// is checked here (styling properties pass through to LINE unchanged).

const FlexComponentRef = refTo("LineFlexComponent");

/** LINE: an icon can only be used in a baseline box. */
function checkBoxChildren(box: JsonObject, field: string, report: Report): void {
  if (box.layout === "baseline" || !Array.isArray(box.contents)) return;
  box.contents.forEach((child: unknown, i) => {
    if (asObject(child)?.type === "icon")
      report(`${field}.contents[${i}]`, "an icon is allowed only in a box with layout baseline");
  });
}

const FlexBox = define(
  "LineFlexBox",
  withRules(
    Type.Object(
      {
        type: Type.Literal("box"),
        layout: oneOf("horizontal", "vertical", "baseline"),
        contents: Type.Array(FlexComponentRef),
        action: Type.Optional(FlexAction),
      },
      { description: "Box: lays out its contents; icons only in a baseline box" },
    ),
    { check: checkBoxChildren },
  ),
);

const FlexImage = define(
  "LineFlexImage",
  Type.Object({
    type: Type.Literal("image"),
    url: httpsUrl("JPEG or PNG, at most 1024×1024"),
    action: Type.Optional(FlexAction),
  }),
);

const FlexVideo = Type.Object(
  {
    type: Type.Literal("video"),
    url: httpsUrl("MP4"),
    previewUrl: httpsUrl(),
    altContent: Type.Union([FlexBox, FlexImage], { description: "Shown where video is not supported" }),
    action: Type.Optional(FlexAction),
  },
  { description: "Video: only as a bubble's hero" },
);

const FlexSpan = Type.Object({ type: Type.Literal("span"), text: Type.String() });

const FlexText = withRules(
  Type.Object(
    {
      type: Type.Literal("text"),
      text: Type.Optional(Type.String()),
      contents: Type.Optional(Type.Array(FlexSpan)),
      action: Type.Optional(FlexAction),
    },
    { description: "Text: `text`, or `contents` made of spans" },
  ),
  {
    check: (value, field, report) => {
      if (value.text === undefined && value.contents === undefined)
        report(`${field}.text`, "is required unless contents (spans) is set");
    },
  },
);

define(
  "LineFlexComponent",
  withRules(
    Type.Union(
      [
        FlexBox,
        Type.Object({ type: Type.Literal("button"), action: FlexButtonAction }),
        FlexImage,
        Type.Object({ type: Type.Literal("icon"), url: httpsUrl("PNG") }),
        FlexText,
        Type.Object({ type: Type.Literal("separator") }),
        Type.Object({ type: Type.Literal("filler") }),
      ],
      { description: "A Flex component inside a box" },
    ),
    {
      hints: {
        span: "a span is allowed only in a text's contents",
        video: "a video is allowed only as a bubble's hero",
      },
    },
  ),
);

// LINE does not say whether its KB is 1,000 or 1,024 bytes: the larger reading never refuses what
// LINE would take.
const KB = 1024;

/** LINE limits the JSON of a bubble to 30 KB and of a carousel to 50 KB; talkgate sends it compact. */
function checkJsonSize(limitKb: number, what: string) {
  return (value: JsonObject, field: string, report: Report): void => {
    let bytes: number;
    try {
      bytes = utf8.encode(JSON.stringify(value)).length;
    } catch {
      return; // only absurd nesting makes this throw, and the walk reports that
    }
    if (bytes > limitKb * KB)
      report(field, `larger than ${limitKb} KB, LINE's limit for ${what} (${fmt(bytes)} bytes of JSON)`);
  };
}
const utf8 = new TextEncoder();

const FlexBubble = define(
  "LineFlexBubble",
  withRules(
    Type.Object(
      {
        type: Type.Literal("bubble"),
        header: Type.Optional(FlexBox),
        hero: Type.Optional(Type.Union([FlexBox, FlexImage, FlexVideo])),
        body: Type.Optional(FlexBox),
        footer: Type.Optional(FlexBox),
        action: Type.Optional(FlexAction),
      },
      { description: "Bubble: at most 30 KB of JSON" },
    ),
    { check: checkJsonSize(30, "a bubble") },
  ),
);

const FlexCarousel = withRules(
  Type.Object(
    { type: Type.Literal("carousel"), contents: Type.Array(FlexBubble, { minItems: 1, maxItems: 12 }) },
    { description: "Carousel of bubbles: at most 50 KB of JSON" },
  ),
  { check: checkJsonSize(50, "a carousel") },
);

const FlexMessage = message(
  "flex",
  { altText: str(1500), contents: Type.Union([FlexBubble, FlexCarousel]) },
  "Flex Message",
);

// ---------------------------------------------------------------------------------------------------

/**
 * One LINE message object as talkgate accepts it for sending: a union by `type`. Only what talkgate
 * checks is described; other LINE properties pass through. Lengths count UTF-16 code units, as LINE
 * does (a JSON Schema validator counts code points, so it is more lenient than `validateMessages`).
 * Flex components are defined once, in `$defs`, and referenced from there.
 */
export const MessageSchema = Type.Union(
  [
    TextMessage,
    TextV2Message,
    StickerMessage,
    ImageMessage,
    VideoMessage,
    AudioMessage,
    LocationMessage,
    CouponMessage,
    ImagemapMessage,
    TemplateMessage,
    FlexMessage,
  ],
  {
    $id: "LineMessage",
    $defs: DEFS,
    description: "A LINE message object (Messaging API reference, message objects)",
  },
);

/**
 * Checks the `messages` of a send request: 1 to 5 LINE message objects, each against
 * `MessageSchema` and LINE's cross-field rules. Returns [] when they can be sent; otherwise every
 * problem found (at most 20, then a note that there are more). Messages past the fifth, and array
 * items and map entries past their limit, are counted but not read. With `context.chat`, a textV2
 * mention to a 1:1 chat is refused; what needs LINE's own data is left to LINE: that the account and
 * the mentioned users are members of the group or room, that a user ID is not a bot's, that a
 * couponId or LINE emoji exists.
 */
export function validateMessages(messages: unknown, context: MessageContext = {}): MessageProblem[] {
  if (!Array.isArray(messages))
    return [{ field: "messages", message: `must be an array of 1 to ${MAX_MESSAGES} message objects` }];
  const problems: MessageProblem[] = [];
  const walk = new SchemaWalk(problems, context);
  if (messages.length === 0) walk.report("messages", "must contain at least 1 message");
  if (messages.length > MAX_MESSAGES)
    walk.report("messages", `at most ${MAX_MESSAGES} messages per request (got ${messages.length})`);
  messages.slice(0, MAX_MESSAGES).forEach((item, i) => {
    walk.visit(MessageSchema, item, `messages[${i}]`, 1);
  });
  if (problems.length > MAX_PROBLEMS) {
    problems.length = MAX_PROBLEMS;
    problems.push({ field: "messages", message: `more problems not listed (stopped after ${MAX_PROBLEMS})` });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// A reader of the JSON Schema keywords used above, with messages in plain words and string lengths in
// UTF-16 code units.

interface SchemaNode {
  type?: string;
  const?: unknown;
  anyOf?: SchemaNode[];
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  /** A map's values, its keys and how many entries it may have. */
  additionalProperties?: SchemaNode | boolean;
  propertyNames?: SchemaNode;
  maxProperties?: number;
  items?: SchemaNode;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  [RULES]?: NodeRules;
}

const regexps = new Map<string, RegExp>();
function regexp(pattern: string): RegExp {
  const known = regexps.get(pattern);
  if (known !== undefined) return known;
  const re = new RegExp(pattern, "u");
  regexps.set(pattern, re);
  return re;
}

function resolve(schema: TSchema | SchemaNode): SchemaNode {
  const ref = schema.$ref;
  return (ref === undefined ? schema : (DEFS[ref.slice("#/$defs/".length)] ?? {})) as SchemaNode;
}

class SchemaWalk {
  readonly #problems: MessageProblem[];
  readonly #context: MessageContext;
  readonly report: Report;

  constructor(problems: MessageProblem[], context: MessageContext) {
    this.#problems = problems;
    this.#context = context;
    // One past the cap, so that validateMessages knows there were more.
    this.report = (field, message) => {
      if (problems.length <= MAX_PROBLEMS) problems.push({ field, message });
    };
  }

  visit(schema: TSchema | SchemaNode, value: unknown, field: string, depth: number): void {
    if (this.#problems.length > MAX_PROBLEMS) return;
    const node = resolve(schema);
    if (depth > MAX_DEPTH) this.report(field, `nested more than ${MAX_DEPTH} levels deep`);
    else if (node.anyOf !== undefined) this.#union(node, node.anyOf, value, field, depth);
    else if (node.type === "object") this.#object(node, value, field, depth);
    else if (node.type === "array") this.#array(node, value, field, depth);
    else if (node.type === "string") this.#string(node, value, field);
    else if (node.type === "number" || node.type === "integer") this.#number(node, value, field);
    else if (node.type === "boolean" && typeof value !== "boolean")
      this.report(field, "must be true or false");
  }

  #union(node: SchemaNode, variants: SchemaNode[], value: unknown, field: string, depth: number): void {
    if (variants.every((v) => v.const !== undefined)) {
      const allowed = variants.map((v) => v.const);
      if (!allowed.includes(value)) this.report(field, `must be one of ${list(allowed)}${got(value)}`);
      return;
    }
    // Every other union here is a union of objects told apart by `type`.
    const object = asObject(value);
    if (object === null) {
      this.report(field, "must be an object");
      return;
    }
    const type = object.type;
    const objects = variants.map(resolve);
    const variant = objects.find((v) => v.properties?.type?.const === type);
    const allowed = objects.map((v) => v.properties?.type?.const);
    const hints = node[RULES]?.hints ?? {};
    if (variant !== undefined) this.visit(variant, object, field, depth);
    else if (type === undefined) this.report(`${field}.type`, `is required: one of ${list(allowed)}`);
    else if (typeof type === "string" && Object.hasOwn(hints, type))
      this.report(`${field}.type`, hints[type] ?? "");
    else this.report(`${field}.type`, `must be one of ${list(allowed)}${got(type)}`);
  }

  #object(node: SchemaNode, value: unknown, field: string, depth: number): void {
    const object = asObject(value);
    if (object === null) {
      this.report(field, "must be an object");
      return;
    }
    for (const key of node.required ?? []) {
      if (object[key] === undefined) this.report(`${field}.${key}`, "is required");
    }
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      if (Object.hasOwn(object, key) && object[key] !== undefined)
        this.visit(child, object[key], `${field}.${key}`, depth + 1);
    }
    if (node.additionalProperties !== undefined || node.propertyNames !== undefined)
      this.#entries(node, object, field, depth);
    if (this.#problems.length <= MAX_PROBLEMS)
      node[RULES]?.check?.(object, field, this.report, this.#context);
  }

  /** The entries of a map: their number, each key against propertyNames, each value against additionalProperties. */
  #entries(node: SchemaNode, object: JsonObject, field: string, depth: number): void {
    const keys = Object.keys(object).filter((key) => !Object.hasOwn(node.properties ?? {}, key));
    const { maxProperties, propertyNames, additionalProperties } = node;
    if (maxProperties !== undefined && keys.length > maxProperties)
      this.report(field, `must have at most ${fmt(maxProperties)} entries (has ${fmt(keys.length)})`);
    const read = maxProperties === undefined ? keys : keys.slice(0, maxProperties);
    for (const key of read) {
      const at = member(field, key);
      if (propertyNames !== undefined) this.#string(resolve(propertyNames), key, at, "key ");
      if (typeof additionalProperties === "object" && object[key] !== undefined)
        this.visit(additionalProperties, object[key], at, depth + 1);
    }
  }

  #array(node: SchemaNode, value: unknown, field: string, depth: number): void {
    if (!Array.isArray(value)) {
      this.report(field, "must be an array");
      return;
    }
    const { minItems = 0, maxItems } = node;
    const has = ` (has ${fmt(value.length)})`;
    if (minItems === maxItems && value.length !== minItems)
      this.report(field, `must have exactly ${items(minItems)}${has}`);
    else if (value.length < minItems) this.report(field, `must have at least ${items(minItems)}${has}`);
    else if (maxItems !== undefined && value.length > maxItems)
      this.report(field, `must have at most ${items(maxItems)}${has}`);
    if (node.items === undefined) return;
    // Items past the limit are not worth reading: the count alone makes the request fail.
    const read = maxItems === undefined ? value : value.slice(0, maxItems);
    for (const [i, item] of read.entries()) this.visit(node.items, item, `${field}[${i}]`, depth + 1);
  }

  /** `what` names the string in the messages when it is not the field's value (a map's key). */
  #string(node: SchemaNode, value: unknown, field: string, what = ""): void {
    const { minLength = 0, maxLength, pattern } = node;
    const report = (message: string) => this.report(field, `${what}${message}`);
    if (typeof value !== "string") report("must be a string");
    else if (node.const !== undefined && value !== node.const)
      report(`must be ${quote(node.const)}${got(value)}`);
    else if (value.length < minLength)
      report(minLength === 1 ? "must not be empty" : `shorter than ${fmt(minLength)} UTF-16 code units`);
    else {
      if (maxLength !== undefined && value.length > maxLength)
        report(`longer than ${fmt(maxLength)} UTF-16 code units (${fmt(value.length)})`);
      if (pattern === undefined) return;
      const known = PATTERNS[pattern];
      if (pattern === HTTPS_URL && this.#localHttp(value)) return;
      if (!regexp(pattern).test(value)) report(known?.message ?? `must match ${pattern}`);
      else if (known?.url && !URL.canParse(value)) report("is not a valid URL");
    }
  }

  #localHttp(url: string): boolean {
    return (this.#context.httpOrigins ?? []).some((origin) => url.startsWith(`${origin}/`));
  }

  #number(node: SchemaNode, value: unknown, field: string): void {
    const integer = node.type === "integer";
    if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
      this.report(field, integer ? "must be an integer" : "must be a number");
      return;
    }
    if (node.const !== undefined && value !== node.const)
      this.report(field, `must be ${node.const}${got(value)}`);
    if (node.minimum !== undefined && value < node.minimum)
      this.report(field, `must be at least ${node.minimum}${got(value)}`);
    if (node.maximum !== undefined && value > node.maximum)
      this.report(field, `must be at most ${node.maximum}${got(value)}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Wording.

/** The path of a map's entry: `substitution.user1`, or `substitution["a b"]` when the key is not a word. */
function member(field: string, key: string): string {
  return /^\w+$/.test(key) ? `${field}.${key}` : `${field}[${JSON.stringify(key)}]`;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function items(n: number): string {
  return n === 1 ? "1 item" : `${fmt(n)} items`;
}

function quote(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 40 ? `${json.slice(0, 37)}…` : json;
}

function got(value: unknown): string {
  return ` (got ${quote(value)})`;
}

function list(values: unknown[]): string {
  return values.map(quote).join(", ");
}
