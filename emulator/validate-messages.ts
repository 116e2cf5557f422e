// Checks outbound message objects (reply and push) the way the LINE Platform does: types, required fields,
// URL schemes and lengths. A test double's check, not a copy of talkgate's validator (src/ never comes here).

/** One entry of LINE's `details[]`: what is wrong, and where (`messages[0].packageId`). */
export interface ErrorDetail {
  message: string;
  property: string;
}

/** Every message type LINE accepts in a reply or push request. */
export const MESSAGE_TYPES = [
  "text",
  "textV2",
  "sticker",
  "image",
  "video",
  "audio",
  "location",
  "imagemap",
  "template",
  "flex",
  "coupon",
] as const;

// "quote tokens (sentMessages[].quoteToken) are included in the response only when the following message
// objects that can be specified as quote targets are sent" (developers.line.biz, Get quote tokens).
const QUOTABLE = new Set(["text", "textV2", "sticker", "image", "video", "template", "flex"]);

/** Whether LINE answers a quoteToken for this sent message object. */
export function canBeQuoted(message: unknown): boolean {
  return isRecord(message) && typeof message.type === "string" && QUOTABLE.has(message.type);
}

const ACTION_TYPES = [
  "postback",
  "message",
  "uri",
  "datetimepicker",
  "camera",
  "cameraRoll",
  "location",
  "richmenuswitch",
  "clipboard",
];
const SUBSTITUTION_KEY = /^[0-9A-Za-z_]{1,20}$/;
const TRACKING_ID = /^[A-Za-z0-9.=,+*()%$&;:@{}!?<>[\]-]+$/;
const MAX_DEPTH = 64;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The emulator's `httpMediaOrigins` option as a set of URL origins; throws on an entry that is not an
 * http(s) URL. A development allowance: LINE itself never fetches media over plain http.
 */
export function mediaOrigins(origins: readonly string[] = []): Set<string> {
  return new Set(
    origins.map((origin) => {
      const url = URL.canParse(origin) ? new URL(origin) : undefined;
      if (url?.protocol !== "http:" && url?.protocol !== "https:") {
        throw new Error(`line emulator: httpMediaOrigins entry ${JSON.stringify(origin)} is not an http URL`);
      }
      return url.origin;
    }),
  );
}

function at(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

// Reads one property of an object and reports LINE-style when it is missing or malformed.
class Checker {
  readonly details: ErrorDetail[] = [];
  readonly #httpOrigins: ReadonlySet<string>;

  constructor(httpOrigins: ReadonlySet<string>) {
    this.#httpOrigins = httpOrigins;
  }

  report(property: string, message: string): void {
    this.details.push({ message, property });
  }

  // LINE treats null like an absent property.
  #present(obj: Json, key: string, path: string, required: boolean): unknown {
    const value = obj[key];
    if (value === undefined || value === null) {
      if (required) this.report(at(path, key), "must be specified");
      return undefined;
    }
    return value;
  }

  /** A non-empty string of at most `max` UTF-16 units, returned when valid. */
  string(obj: Json, key: string, path: string, max: number, required = true): string | undefined {
    const value = this.#present(obj, key, path, required);
    if (value === undefined) return undefined;
    if (typeof value !== "string") this.report(at(path, key), "must be a string");
    else if (value === "") this.report(at(path, key), "May not be empty");
    // LINE counts characters in UTF-16 code units, which is what String.length is.
    else if (value.length > max) this.report(at(path, key), `Length must be between 0 and ${max}`);
    else return value;
    return undefined;
  }

  /** A finite JSON number. */
  number(obj: Json, key: string, path: string, required = true): number | undefined {
    const value = this.#present(obj, key, path, required);
    if (value === undefined) return undefined;
    if (typeof value === "number" && Number.isFinite(value)) return value;
    this.report(at(path, key), "must be a number");
    return undefined;
  }

  /** A JSON object (not an array). */
  object(obj: Json, key: string, path: string, required = true): Json | undefined {
    const value = this.#present(obj, key, path, required);
    if (value === undefined) return undefined;
    if (isRecord(value)) return value;
    this.report(at(path, key), "must be an object");
    return undefined;
  }

  /** An array of `min` to `max` items; the items are the caller's to check. */
  array(
    obj: Json,
    key: string,
    path: string,
    min: number,
    max: number,
    required = true,
  ): unknown[] | undefined {
    const value = this.#present(obj, key, path, required);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) this.report(at(path, key), "must be an array");
    else if (value.length < min || value.length > max) {
      this.report(at(path, key), `Size must be between ${min} and ${max}`);
    } else return value;
    return undefined;
  }

  /** A required string among `values`, worded as LINE words an unknown `type`. */
  oneOf<T extends string>(obj: Json, key: string, path: string, values: readonly T[]): T | undefined {
    const value = this.#present(obj, key, path, true);
    if (value === undefined) return undefined;
    if (typeof value === "string" && (values as readonly string[]).includes(value)) return value as T;
    this.report(at(path, key), `Must be one of the following values: [${values.join(", ")}]`);
    return undefined;
  }

  /** An HTTPS URL (image, video, audio, thumbnail…): LINE fetches it, and only over TLS. */
  httpsUrl(obj: Json, key: string, path: string, required = true, max = 2000): void {
    const value = this.string(obj, key, path, max, required);
    if (value === undefined) return;
    const url = URL.canParse(value) ? new URL(value) : undefined;
    if (url?.protocol === "https:") return;
    if (url?.protocol === "http:" && this.#httpOrigins.has(url.origin)) return;
    this.report(at(path, key), "must be a valid HTTPS URL");
  }

  /** A link the user's LINE app opens: http, https, line or tel. */
  linkUri(obj: Json, key: string, path: string, max = 1000): void {
    const value = this.string(obj, key, path, max);
    if (value === undefined) return;
    const scheme = URL.canParse(value) ? new URL(value).protocol : "";
    if (!["http:", "https:", "line:", "tel:"].includes(scheme)) {
      this.report(at(path, key), "must be a URI with scheme http, https, line or tel");
    }
  }

  /** An element of an array that must be an object; reports and skips anything else. */
  each(items: unknown[] | undefined, path: string, check: (item: Json, itemPath: string) => void): void {
    items?.forEach((item, i) => {
      if (isRecord(item)) check(item, `${path}[${i}]`);
      else this.report(`${path}[${i}]`, "must be an object");
    });
  }
}

// https://developers.line.biz/en/reference/messaging-api/#action-objects; labels depend on where the
// action sits, so they are not checked.
function checkAction(c: Checker, action: Json, path: string): void {
  const type = c.oneOf(action, "type", path, ACTION_TYPES);
  if (type === "uri") c.linkUri(action, "uri", path);
  else if (type === "message") c.string(action, "text", path, 300);
  else if (type === "postback") c.string(action, "data", path, 300);
  else if (type === "datetimepicker") {
    c.string(action, "data", path, 300);
    c.oneOf(action, "mode", path, ["date", "time", "datetime"]);
  } else if (type === "clipboard") c.string(action, "clipboardText", path, 1000);
  else if (type === "richmenuswitch")
    c.report(`${path}.type`, "richmenuswitch is allowed only in rich menus");
}

function checkActions(c: Checker, obj: Json, key: string, path: string, min: number, max: number): void {
  c.each(c.array(obj, key, path, min, max), `${path}.${key}`, (action, p) => checkAction(c, action, p));
}

function checkOptionalAction(c: Checker, obj: Json, key: string, path: string): void {
  const action = c.object(obj, key, path, false);
  if (action !== undefined) checkAction(c, action, `${path}.${key}`);
}

function checkText(c: Checker, m: Json, p: string): void {
  c.string(m, "text", p, 5000);
  c.each(c.array(m, "emojis", p, 0, 20, false), `${p}.emojis`, (emoji, ep) => {
    c.number(emoji, "index", ep);
    c.string(emoji, "productId", ep, 100);
    c.string(emoji, "emojiId", ep, 100);
  });
  c.string(m, "quoteToken", p, 1000, false);
}

// Text v2: every {key} in the text needs a substitution; {{ and }} stand for literal braces.
function checkTextV2(c: Checker, m: Json, p: string): void {
  const text = c.string(m, "text", p, 5000);
  c.string(m, "quoteToken", p, 1000, false);
  const substitution = c.object(m, "substitution", p, false) ?? {};
  const keys = Object.keys(substitution);
  if (keys.length > 100) c.report(`${p}.substitution`, "Size must be between 0 and 100");
  for (const key of keys) {
    const sp = `${p}.substitution.${key}`;
    if (!SUBSTITUTION_KEY.test(key)) c.report(sp, "key must be 1 to 20 characters of 0-9, A-Z, a-z and _");
    const value = substitution[key];
    if (!isRecord(value)) {
      c.report(sp, "must be an object");
      continue;
    }
    const type = c.oneOf(value, "type", sp, ["mention", "emoji"]);
    if (type === "emoji") {
      c.string(value, "productId", sp, 100);
      c.string(value, "emojiId", sp, 100);
    } else if (type === "mention") {
      const mentionee = c.object(value, "mentionee", sp);
      const mp = `${sp}.mentionee`;
      if (mentionee !== undefined && c.oneOf(mentionee, "type", mp, ["user", "all"]) === "user") {
        c.string(mentionee, "userId", mp, 100);
      }
    }
  }
  if (text === undefined) return;
  const unescaped = text.replaceAll("{{", "").replaceAll("}}", "");
  for (const [, key] of unescaped.matchAll(/\{([^{}]*)\}/g)) {
    if (key !== undefined && !Object.hasOwn(substitution, key)) {
      c.report(`${p}.text`, `{${key}} has no entry in substitution`);
    }
  }
  if (/[{}]/.test(unescaped.replaceAll(/\{[^{}]*\}/g, ""))) {
    c.report(`${p}.text`, "{ and } must be used in pairs (write {{ and }} for literal braces)");
  }
}

function checkImagemap(c: Checker, m: Json, p: string): void {
  c.httpsUrl(m, "baseUrl", p);
  c.string(m, "altText", p, 1500);
  const size = c.object(m, "baseSize", p);
  if (size !== undefined) {
    c.number(size, "width", `${p}.baseSize`);
    c.number(size, "height", `${p}.baseSize`);
  }
  const area = (obj: Json, path: string) => {
    const box = c.object(obj, "area", path);
    for (const key of ["x", "y", "width", "height"])
      if (box !== undefined) c.number(box, key, `${path}.area`);
  };
  const video = c.object(m, "video", p, false);
  if (video !== undefined) {
    const vp = `${p}.video`;
    c.httpsUrl(video, "originalContentUrl", vp);
    c.httpsUrl(video, "previewImageUrl", vp);
    area(video, vp);
    const link = c.object(video, "externalLink", vp, false);
    if (link !== undefined) {
      c.linkUri(link, "linkUri", `${vp}.externalLink`);
      c.string(link, "label", `${vp}.externalLink`, 30);
    }
  }
  c.each(c.array(m, "actions", p, 1, 50), `${p}.actions`, (action, ap) => {
    const type = c.oneOf(action, "type", ap, ["uri", "message", "clipboard"]);
    if (type === "uri") c.linkUri(action, "linkUri", ap);
    else if (type === "message") c.string(action, "text", ap, 400);
    else if (type === "clipboard") c.string(action, "clipboardText", ap, 1000);
    area(action, ap);
  });
}

// Buttons and carousel columns: the text may be shorter when an image or a title is shown too.
function checkTemplateColumn(c: Checker, col: Json, p: string, plainMax: number, maxActions: number): void {
  c.httpsUrl(col, "thumbnailImageUrl", p, false);
  c.string(col, "title", p, 40, false);
  const illustrated = col.thumbnailImageUrl !== undefined || col.title !== undefined;
  c.string(col, "text", p, illustrated ? 60 : plainMax);
  checkOptionalAction(c, col, "defaultAction", p);
  checkActions(c, col, "actions", p, 1, maxActions);
}

function checkTemplate(c: Checker, m: Json, p: string): void {
  c.string(m, "altText", p, 1500);
  const template = c.object(m, "template", p);
  if (template === undefined) return;
  const tp = `${p}.template`;
  const type = c.oneOf(template, "type", tp, ["buttons", "confirm", "carousel", "image_carousel"]);
  if (type === "buttons") checkTemplateColumn(c, template, tp, 160, 4);
  else if (type === "confirm") {
    c.string(template, "text", tp, 240);
    checkActions(c, template, "actions", tp, 2, 2);
  } else if (type === "carousel") {
    c.each(c.array(template, "columns", tp, 1, 10), `${tp}.columns`, (col, cp) =>
      checkTemplateColumn(c, col, cp, 120, 3),
    );
  } else if (type === "image_carousel") {
    c.each(c.array(template, "columns", tp, 1, 10), `${tp}.columns`, (col, cp) => {
      c.httpsUrl(col, "imageUrl", cp);
      const action = c.object(col, "action", cp);
      if (action !== undefined) checkAction(c, action, `${cp}.action`);
    });
  }
}

// Flex: the container shape, then every image, icon and video component's URLs, wherever it sits.
function checkFlex(c: Checker, m: Json, p: string): void {
  c.string(m, "altText", p, 1500);
  const contents = c.object(m, "contents", p);
  if (contents === undefined) return;
  const cp = `${p}.contents`;
  const type = c.oneOf(contents, "type", cp, ["bubble", "carousel"]);
  if (type === "carousel") {
    c.each(c.array(contents, "contents", cp, 1, 12), `${cp}.contents`, (bubble, bp) => {
      if (bubble.type !== "bubble") c.report(`${bp}.type`, "Must be one of the following values: [bubble]");
    });
  }
  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) walk(item, `${path}[${i}]`, depth + 1);
      return;
    }
    if (!isRecord(node)) return;
    if (node.type === "image" || node.type === "icon") c.httpsUrl(node, "url", path);
    else if (node.type === "video") {
      c.httpsUrl(node, "url", path);
      c.httpsUrl(node, "previewUrl", path);
      c.object(node, "altContent", path);
    }
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === "object" && value !== null) walk(value, `${path}.${key}`, depth + 1);
    }
  };
  walk(contents, cp, 0);
}

function checkCommon(c: Checker, m: Json, p: string): void {
  const quickReply = c.object(m, "quickReply", p, false);
  if (quickReply !== undefined) {
    const qp = `${p}.quickReply`;
    c.each(c.array(quickReply, "items", qp, 1, 13), `${qp}.items`, (item, ip) => {
      c.oneOf(item, "type", ip, ["action"]);
      c.httpsUrl(item, "imageUrl", ip, false);
      const action = c.object(item, "action", ip);
      if (action !== undefined) checkAction(c, action, `${ip}.action`);
    });
  }
  const sender = c.object(m, "sender", p, false);
  if (sender !== undefined) {
    c.string(sender, "name", `${p}.sender`, 20, false);
    c.httpsUrl(sender, "iconUrl", `${p}.sender`, false);
  }
}

// One check per message type: https://developers.line.biz/en/reference/messaging-api/#message-objects
const BY_TYPE: Record<(typeof MESSAGE_TYPES)[number], (c: Checker, m: Json, p: string) => void> = {
  text: checkText,
  textV2: checkTextV2,
  sticker(c, m, p) {
    c.string(m, "packageId", p, 100);
    c.string(m, "stickerId", p, 100);
    c.string(m, "quoteToken", p, 1000, false);
  },
  image(c, m, p) {
    c.httpsUrl(m, "originalContentUrl", p);
    c.httpsUrl(m, "previewImageUrl", p);
  },
  video(c, m, p) {
    c.httpsUrl(m, "originalContentUrl", p);
    c.httpsUrl(m, "previewImageUrl", p);
    const trackingId = c.string(m, "trackingId", p, 100, false);
    if (trackingId !== undefined && !TRACKING_ID.test(trackingId)) {
      c.report(`${p}.trackingId`, "may contain only A-Z, a-z, 0-9 and -.=,+*()%$&;:@{}!?<>[]");
    }
  },
  audio(c, m, p) {
    c.httpsUrl(m, "originalContentUrl", p);
    c.number(m, "duration", p);
  },
  location(c, m, p) {
    c.string(m, "title", p, 100);
    c.string(m, "address", p, 100);
    c.number(m, "latitude", p);
    c.number(m, "longitude", p);
  },
  imagemap: checkImagemap,
  template: checkTemplate,
  flex: checkFlex,
  coupon(c, m, p) {
    c.string(m, "couponId", p, 100);
    const tag = c.string(m, "deliveryTag", p, 30, false);
    if (tag !== undefined && !/^[A-Za-z0-9_]+$/.test(tag)) {
      c.report(`${p}.deliveryTag`, "may contain only A-Z, a-z, 0-9 and _");
    }
  },
};

/**
 * What LINE would find wrong with the `messages` of a reply or push request: an empty list when it
 * would accept them. `property` paths follow LINE's (`messages[0].packageId`). http:// URLs pass where
 * HTTPS is required only when their origin is in `httpMediaOrigins` (see {@link mediaOrigins}).
 */
export function validateMessages(
  messages: unknown,
  httpMediaOrigins: ReadonlySet<string> = new Set(),
): ErrorDetail[] {
  const c = new Checker(httpMediaOrigins);
  c.array({ messages }, "messages", "", 1, 5)?.forEach((message, i) => {
    const p = `messages[${i}]`;
    if (!isRecord(message)) {
      c.report(p, "must be an object");
      return;
    }
    const type = c.oneOf(message, "type", p, MESSAGE_TYPES);
    if (type === undefined) return;
    BY_TYPE[type](c, message, p);
    checkCommon(c, message, p);
  });
  return c.details;
}
