// Text every store keeps as it is: PostgreSQL's text and jsonb refuse a NUL character and UTF-16 that is not
// well-formed Unicode (an unpaired surrogate), so talkgate takes neither, whatever the database.

/** True for text PostgreSQL and SQLite both store as it is. */
export function storableText(text: string): boolean {
  return text.isWellFormed() && !text.includes("\u0000");
}

/** `text` as it is when storable, else with what no store takes written as JSON escapes (`\u0000`). */
export function storableForm(text: string): string {
  return storableText(text) ? text : JSON.stringify(text).slice(1, -1);
}
