// @ts-check
// Numbers, times and durations as the reader expects them: in the browser's locale when it speaks the console's
// language, else in that language; times in the browser's time zone.
import { language, primaryLanguage } from "./i18n.js";

/** @type {ReadonlyArray<[Intl.RelativeTimeFormatUnit, number]>} units and their length in seconds, largest first */
const UNITS = [
  ["day", 86_400],
  ["hour", 3_600],
  ["minute", 60],
  ["second", 1],
];

function locale() {
  return navigator.languages.find((tag) => primaryLanguage(tag) === language()) ?? language();
}

/** @param {number} value @param {number} [fractionDigits] at most this many */
export function formatNumber(value, fractionDigits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: fractionDigits }).format(value);
}

/** A date and time (Unix ms). @param {number} at */
export function formatTime(at) {
  return new Date(at).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "medium" });
}

/** A span of time in its two largest units: "3 min 5 sec", "3분 5초". @param {number} ms */
export function formatDuration(ms) {
  let rest = Math.max(0, Math.round(ms / 1000));
  const found = UNITS.findIndex(([, seconds]) => rest >= seconds);
  const largest = found === -1 ? UNITS.length - 1 : found;
  const parts = UNITS.slice(largest, largest + 2).map(([unit, seconds]) => {
    const count = Math.floor(rest / seconds);
    rest -= count * seconds;
    return {
      count,
      text: new Intl.NumberFormat(locale(), { style: "unit", unit, unitDisplay: "short" }).format(count),
    };
  });
  return parts
    .filter((part, index) => index === 0 || part.count > 0)
    .map((part) => part.text)
    .join(" ");
}

/** How long before or after `now` a moment is: "12 seconds ago", "in 29 days", "12초 전". @param {number} at @param {number} now */
export function formatRelative(at, now) {
  const seconds = (at - now) / 1000;
  const [unit, length] = UNITS.find(([, length]) => Math.abs(seconds) >= length) ?? ["second", 1];
  return new Intl.RelativeTimeFormat(locale(), { numeric: "auto" }).format(
    Math.round(seconds / length),
    unit,
  );
}
