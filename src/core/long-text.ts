// Long-text cutting (SPEC §5): a preview that never splits a surrogate pair or an emoji sequence.
import type { JsonObject } from "./line-event.ts";

/** When a text counts as long and how much of it the partner payload carries (UTF-16 code units). */
export interface LongTextPolicy {
  threshold: number;
  previewLength: number;
}

export const DEFAULT_LONG_TEXT: LongTextPolicy = { threshold: 1000, previewLength: 300 };

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The longest prefix of `text` of at most `maxUnits` UTF-16 units that ends on a grapheme boundary. */
export function cutAtGrapheme(text: string, maxUnits: number): string {
  if (text.length <= maxUnits) return text;
  let end = 0;
  for (const { segment } of graphemes.segment(text)) {
    if (end + segment.length > maxUnits) break;
    end += segment.length;
  }
  return text.slice(0, end);
}

interface Span {
  index?: unknown;
  length?: unknown;
}

function endsWithin(span: Span, limit: number): boolean {
  return (
    typeof span.index === "number" && typeof span.length === "number" && span.index + span.length <= limit
  );
}

/**
 * The payload form of a text message: unchanged when short; when long, `text` cut to the preview and
 * the `emojis` / `mention.mentionees` entries past the cut dropped. Returns whether it was cut.
 */
export function previewTextMessage(
  message: JsonObject,
  policy: LongTextPolicy,
): { content: JsonObject; cut: boolean } {
  const text = message.text;
  if (typeof text !== "string" || text.length <= policy.threshold) return { content: message, cut: false };

  const preview = cutAtGrapheme(text, policy.previewLength);
  const content: JsonObject = { ...message, text: preview };
  if (Array.isArray(message.emojis)) {
    const emojis = (message.emojis as Span[]).filter((e) => endsWithin(e, preview.length));
    if (emojis.length > 0) content.emojis = emojis;
    else delete content.emojis;
  }
  const mention = message.mention as { mentionees?: Span[] } | undefined;
  if (mention && Array.isArray(mention.mentionees)) {
    const mentionees = mention.mentionees.filter((m) => endsWithin(m, preview.length));
    if (mentionees.length > 0) content.mention = { ...mention, mentionees };
    else delete content.mention;
  }
  return { content, cut: true };
}
