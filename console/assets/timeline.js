// @ts-check
// A conversation's timeline (#/timeline?senderKey=…&conversation=user:U…): the customer's events, each with its
// delivery to the partner, and the partner's sends, newest first; texts masked unless revealed (audited).
import { api } from "./api.js";
import { lastAnswer, stateBadge } from "./deliveries.js";
import { formatNumber, formatTime } from "./format.js";
import { t } from "./i18n.js";
import { badge, channelSelect, h, labelled, query, revealControl } from "./ui.js";

/**
 * An event of the conversation, as GET /admin/events shows it.
 * @typedef {object} EventItem
 * @property {"event"} kind
 * @property {number} at
 * @property {string} serialNumber
 * @property {string} type
 * @property {boolean} unsent
 * @property {Record<string, any>} event
 * @property {{ state: import("./deliveries.js").Delivery["state"], attempts: number, lastStatus: number | null, lastError: string | null } | null} delivery
 */
/**
 * A send of the partner to the conversation.
 * @typedef {object} SendItem
 * @property {"send"} kind
 * @property {number} at
 * @property {string} serialNumber
 * @property {string} partner
 * @property {"sending" | "sent" | "failed" | "unknown"} state
 * @property {"reply" | "push" | null} method
 * @property {number} attempts
 * @property {string | null} errorCode
 * @property {string | null} lineRequestId
 * @property {Array<Record<string, any>>} messages
 */

/** Items asked for: the newest 200 (the API takes up to 500). */
const LIMIT = 200;
const SEND_TONES = { sending: "warn", sent: "ok", failed: "bad", unknown: "warn" };

/** @type {import("./ui.js").Page} */
export function showTimeline(root, context) {
  const senderKey = context.params.get("senderKey") ?? "";
  const conversation = context.params.get("conversation") ?? "";
  root.append(h("h1", {}, t("timeline.title")), chooser(context, senderKey, conversation));
  if (!senderKey || !conversation) {
    root.append(h("p", { className: "muted" }, t("timeline.choose")));
    return;
  }
  const list = h("ol", { className: "timeline" });
  const cut = h("p", { className: "muted" }, t("timeline.cut", { limit: LIMIT }));
  const reveal = revealControl(load);
  async function load() {
    const parameters = { senderKey, conversation, reveal: reveal.revealed ? "true" : null, limit: LIMIT };
    try {
      /** @type {{ items: Array<EventItem | SendItem>, complete: boolean }} */
      const answer = await api("GET", `/admin/timeline?${query(parameters)}`);
      list.replaceChildren(
        ...answer.items.map((item) => (item.kind === "event" ? eventItem(item) : sendItem(item))),
      );
      if (answer.items.length === 0) list.append(h("li", { className: "muted" }, t("list.empty")));
      cut.hidden = answer.complete;
      context.hideProblem();
    } catch (error) {
      context.showProblem(error);
    }
  }
  cut.hidden = true;
  root.append(h("p", { className: "muted" }, t("timeline.order")), reveal.element, cut, list);
  void load();
}

/**
 * The channel and conversation to show; choosing others changes the address (and so the page).
 * @param {import("./ui.js").PageContext} context @param {string} senderKey @param {string} conversation
 */
function chooser(context, senderKey, conversation) {
  const channel = channelSelect(context, { selected: senderKey });
  const who = h("input", {
    attributes: {
      name: "conversation",
      value: conversation,
      required: "",
      placeholder: "user:U…",
      size: "44",
    },
  });
  const form = h(
    "form",
    { className: "filters" },
    labelled(t("column.channel"), channel),
    labelled(t("column.conversation"), who),
    h("button", { className: "secondary", attributes: { type: "submit" } }, t("timeline.show")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/timeline?${query({ senderKey: channel.value, conversation: who.value.trim() })}`;
  });
  return form;
}

/** @param {EventItem} item */
function eventItem(item) {
  const message = item.event.message;
  const delivery = item.delivery;
  return h(
    "li",
    {
      className: "item event",
      attributes: { "data-kind": "event", "data-serial-number": item.serialNumber },
    },
    itemHeading(item.at, badge(t("timeline.customer"), "muted"), item.type, item.serialNumber),
    ...(message ? [h("p", { className: "says" }, messageText(message))] : []),
    h(
      "p",
      { className: "muted" },
      ...(delivery ? [stateBadge(delivery.state), deliveryOutcome(delivery)] : [t("timeline.notForwarded")]),
      ...(item.unsent ? [" ", badge(t("timeline.unsent"), "muted")] : []),
    ),
    json(item.event),
  );
}

/** How many attempts a delivery took, and what the partner last answered. @param {NonNullable<EventItem["delivery"]>} delivery */
function deliveryOutcome(delivery) {
  const answer = lastAnswer(delivery);
  const attempts = t("timeline.attempts", { attempts: formatNumber(delivery.attempts) });
  return answer ? ` · ${attempts} · ${t("timeline.lastAnswer", { answer })}` : ` · ${attempts}`;
}

/** @param {SendItem} item */
function sendItem(item) {
  const outcome = [
    item.method,
    t("timeline.attempts", { attempts: formatNumber(item.attempts) }),
    item.errorCode,
  ];
  return h(
    "li",
    { className: "item send", attributes: { "data-kind": "send", "data-serial-number": item.serialNumber } },
    itemHeading(
      item.at,
      badge(t("timeline.partner", { partner: item.partner }), "muted"),
      "",
      item.serialNumber,
    ),
    ...item.messages.map((message) => h("p", { className: "says" }, messageText(message))),
    h(
      "p",
      { className: "muted" },
      badge(t(`sendState.${item.state}`), SEND_TONES[item.state]),
      ...outcome.filter((part) => part).map((part) => ` · ${part}`),
    ),
    ...(item.lineRequestId
      ? [h("p", { className: "muted key" }, `x-line-request-id ${item.lineRequestId}`)]
      : []),
    json(item.messages),
  );
}

/** @param {number} at @param {HTMLElement} who @param {string} type @param {string} serialNumber */
function itemHeading(at, who, type, serialNumber) {
  return h(
    "div",
    { className: "item-heading" },
    h("time", {}, formatTime(at)),
    " ",
    who,
    ` ${type} `,
    h("span", { className: "key muted" }, serialNumber),
  );
}

/** What a LINE message says: its text (masked or not), its alt text, or its type. @param {Record<string, any>} message */
function messageText(message) {
  if (typeof message.text === "string") return message.text;
  if (typeof message.altText === "string") return message.altText;
  return `[${message.type}]`;
}

/** The item as JSON, folded. @param {unknown} value */
function json(value) {
  return h("details", {}, h("summary", {}, "JSON"), h("pre", {}, JSON.stringify(value, null, 2)));
}
