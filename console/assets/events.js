// @ts-check
// Stored events, newest first, found by channel, serial number, message, user and time (first from the address:
// #/events?senderKey=…&serialNumber=…); a row opens to the event as stored (text masked unless revealed, and the
// reveal audited) and, for an admin, the erasure of its user's data.
import { api } from "./api.js";
import { lastAnswer, stateBadge } from "./deliveries.js";
import { formatNumber, formatTime } from "./format.js";
import { t } from "./i18n.js";
import {
  cell,
  channelSelect,
  confirmStep,
  dateTimeInput,
  expandable,
  h,
  labelled,
  millisOf,
  pagedTable,
  query,
  revealControl,
  statusLine,
  timelineLink,
} from "./ui.js";

/**
 * One event of GET /admin/events.
 * @typedef {object} StoredEvent
 * @property {string} senderKey
 * @property {string} serialNumber
 * @property {string} type
 * @property {string} conversation
 * @property {string | null} userId
 * @property {number} receivedAt
 * @property {Record<string, unknown>} event
 * @property {{ state: import("./deliveries.js").Delivery["state"], attempts: number, lastStatus: number | null, lastError: string | null } | null} delivery
 */
/** @typedef {{ events: number, attachments: number, sends: number, directory: boolean }} Erased */

/** @type {ReadonlyArray<import("./i18n.js").Key>} */
const HEADINGS = [
  "column.received",
  "column.channel",
  "column.serialNumber",
  "column.event",
  "column.conversation",
  "column.state",
  "column.attempts",
  "column.lastAnswer",
];
const PAGE_SIZE = 50;
const TEXT_FILTERS = /** @type {const} */ (["serialNumber", "messageId", "userId"]);

/** @type {import("./ui.js").Page} */
export function showEvents(root, context) {
  const { params } = context;
  const senderKey = channelSelect(context, { all: true, selected: params.get("senderKey") ?? "" });
  const texts = TEXT_FILTERS.map((name) => ({
    name,
    input: h("input", { attributes: { name, maxlength: "64", value: params.get(name) ?? "" } }),
  }));
  const from = dateTimeInput("from");
  const to = dateTimeInput("to");
  const filters = h(
    "form",
    { className: "filters" },
    labelled(t("column.channel"), senderKey),
    ...texts.map(({ name, input }) => labelled(t(`events.${name}`), input)),
    labelled(t("events.from"), from),
    labelled(t("events.to"), to),
    h("button", { className: "secondary", attributes: { type: "submit" } }, t("events.search")),
  );
  const erased = statusLine();
  const opened = new Set();
  const reveal = revealControl(() => list.reload());
  const list = pagedTable({
    headings: [...HEADINGS.map((key) => t(key)), ""],
    row: (/** @type {StoredEvent} */ event) =>
      expandable({
        row: h("tr", { attributes: { "data-serial-number": event.serialNumber } }, ...eventCells(event)),
        columns: HEADINGS.length + 1,
        key: `${event.senderKey}/${event.serialNumber}`,
        opened,
        detail: () => eventDetail(event, context.operator.role === "admin" ? erase : null),
      }),
    fetchPage: async (cursor) => {
      const parameters = {
        senderKey: senderKey.value,
        ...Object.fromEntries(texts.map(({ name, input }) => [name, input.value.trim()])),
        from: millisOf(from),
        to: millisOf(to),
        reveal: reveal.revealed ? "true" : null,
        limit: PAGE_SIZE,
        cursor,
      };
      const page = await api("GET", `/admin/events?${query(parameters)}`);
      return { items: page.events, nextCursor: page.nextCursor };
    },
    context,
  });
  /** Erases the user's data in the event's channel, says what went, and shows the events as they are now. @param {StoredEvent} event */
  async function erase(event) {
    const user = event.userId ?? "";
    const path = `/admin/channels/${encodeURIComponent(event.senderKey)}/users/${encodeURIComponent(user)}/erase`;
    /** @type {Erased} */
    const counts = await api("POST", path);
    erased.textContent = t("events.erased", {
      user,
      events: formatNumber(counts.events),
      attachments: formatNumber(counts.attachments),
      sends: formatNumber(counts.sends),
      directory: t(counts.directory ? "events.directoryErased" : "events.directoryNone"),
    });
    await list.reload();
  }
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    reveal.mask();
    opened.clear();
    void list.reload();
  });
  root.append(h("h1", {}, t("events.title")), filters, reveal.element, erased, list.element);
  void list.reload();
}

/** @param {StoredEvent} event */
function eventCells(event) {
  const { delivery } = event;
  return [
    cell("received", formatTime(event.receivedAt)),
    cell("channel", event.senderKey),
    cell("serial-number", h("span", { className: "key" }, event.serialNumber)),
    cell("event", event.type),
    cell("conversation", timelineLink(event.senderKey, event.conversation)),
    cell("state", delivery ? stateBadge(delivery.state) : t("events.notForwarded")),
    cell("attempts", delivery ? formatNumber(delivery.attempts) : ""),
    cell("last-answer", delivery ? lastAnswer(delivery) : ""),
  ];
}

/**
 * The event as stored and, for an admin on a user's event, the erasure of that user's data.
 * @param {StoredEvent} event
 * @param {((event: StoredEvent) => Promise<void>) | null} erase
 */
function eventDetail(event, erase) {
  const stored = h("pre", { className: "event-json" }, JSON.stringify(event.event, null, 2));
  if (!erase || event.userId === null) return stored;
  const question = t("events.eraseQuestion", { user: event.userId, channel: event.senderKey });
  return h(
    "div",
    {},
    stored,
    confirmStep({ label: t("events.erase"), question, action: () => erase(event) }),
  );
}
