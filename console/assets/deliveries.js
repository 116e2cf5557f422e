// @ts-check
// Deliveries of every channel, filtered by channel and state, paged, each linking to its event and its conversation's
// timeline; an admin ticks some and replays them (one request per channel, as the API takes them).
import { api } from "./api.js";
import { formatNumber, formatTime } from "./format.js";
import { t } from "./i18n.js";
import {
  badge,
  cell,
  channelSelect,
  eventLink,
  h,
  labelled,
  pagedTable,
  query,
  select,
  timelineLink,
} from "./ui.js";

/**
 * One delivery of GET /admin/deliveries.
 * @typedef {object} Delivery
 * @property {string} senderKey
 * @property {string} serialNumber
 * @property {string} conversation
 * @property {string} eventType
 * @property {"pending" | "retrying" | "delivered" | "dead"} state
 * @property {number} attempts
 * @property {number | null} lastStatus
 * @property {string | null} lastError
 * @property {number} receivedAt
 */

/** @type {ReadonlyArray<Delivery["state"]>} */
const STATES = ["pending", "retrying", "delivered", "dead"];
const STATE_TONES = { pending: "warn", retrying: "warn", delivered: "ok", dead: "bad" };
/** @type {ReadonlyArray<import("./i18n.js").Key>} */
const HEADINGS = [
  "column.received",
  "column.channel",
  "column.serialNumber",
  "column.conversation",
  "column.event",
  "column.state",
  "column.attempts",
  "column.lastAnswer",
];
const PAGE_SIZE = 50;

/** @type {import("./ui.js").Page} */
export function showDeliveries(root, context) {
  const filters = deliveryFilters(context);
  const replay = context.operator.role === "admin" ? replayControls(context, reload) : null;
  const list = pagedTable({
    headings: [...(replay ? [""] : []), ...HEADINGS.map((key) => t(key))],
    row: (/** @type {Delivery} */ delivery) =>
      h(
        "tr",
        { attributes: { "data-serial-number": delivery.serialNumber } },
        ...(replay ? [replay.tickBox(delivery)] : []),
        ...deliveryCells(delivery),
      ),
    fetchPage: async (cursor) => {
      const { senderKey, state } = filters;
      const parameters = { senderKey: senderKey.value, state: state.value, limit: PAGE_SIZE, cursor };
      const page = await api("GET", `/admin/deliveries?${query(parameters)}`);
      return { items: page.deliveries, nextCursor: page.nextCursor };
    },
    context,
  });
  /** Empties the list (and the selection) and loads its first page. @returns {Promise<void>} */
  function reload() {
    replay?.clear();
    return list.reload();
  }
  filters.element.addEventListener("change", () => void reload());
  root.append(h("h1", {}, t("deliveries.title")), filters.element);
  if (replay) root.append(replay.element);
  root.append(list.element);
  void reload();
}

/**
 * The channel and state filters; the channels are added once GET /admin/channels answers.
 * @param {import("./ui.js").PageContext} context
 */
function deliveryFilters(context) {
  const senderKey = channelSelect(context, { all: true });
  const state = select("state", [
    ["", t("list.all")],
    ...STATES.map((s) => /** @type {[string, string]} */ ([s, t(`state.${s}`)])),
  ]);
  const element = h(
    "form",
    { className: "filters" },
    labelled(t("column.channel"), senderKey),
    labelled(t("column.state"), state),
  );
  element.addEventListener("submit", (event) => event.preventDefault());
  return { element, senderKey, state };
}

/**
 * An admin's replay controls: a tick box for each row, and "Replay selected" replaying the ticked deliveries.
 * @param {import("./ui.js").PageContext} context
 * @param {() => Promise<void>} afterReplay
 */
function replayControls(context, afterReplay) {
  /** Ticked deliveries by channel and serial number. @type {Map<string, Delivery>} */
  const selected = new Map();
  const button = h("button", { attributes: { type: "button" } }, t("deliveries.replay"));
  const outcome = h("p", { className: "muted", attributes: { role: "status" } });
  const showSelection = () => {
    button.disabled = selected.size === 0;
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const replayed = await replayDeliveries([...selected.values()]);
      outcome.textContent = t("deliveries.replayed", { replayed, selected: selected.size });
      await afterReplay();
    } catch (error) {
      context.showProblem(error);
      showSelection();
    }
  });

  return {
    element: h("div", { className: "actions" }, button, outcome),
    /** @param {Delivery} delivery */
    tickBox(delivery) {
      const key = `${delivery.senderKey}/${delivery.serialNumber}`;
      const label = t("deliveries.select", { serialNumber: delivery.serialNumber });
      const box = h("input", { attributes: { type: "checkbox", "aria-label": label } });
      box.addEventListener("change", () => {
        if (box.checked) selected.set(key, delivery);
        else selected.delete(key);
        showSelection();
      });
      return cell("select", box);
    },
    clear() {
      selected.clear();
      showSelection();
    },
  };
}

/** @param {Delivery} delivery */
function deliveryCells(delivery) {
  return [
    cell("received", formatTime(delivery.receivedAt)),
    cell("channel", delivery.senderKey),
    cell("serial-number", eventLink(delivery.senderKey, delivery.serialNumber)),
    cell("conversation", timelineLink(delivery.senderKey, delivery.conversation)),
    cell("event", delivery.eventType),
    cell("state", stateBadge(delivery.state)),
    cell("attempts", formatNumber(delivery.attempts)),
    cell("last-answer", lastAnswer(delivery)),
  ];
}

/** A delivery's state as a colored word. @param {Delivery["state"]} state */
export function stateBadge(state) {
  return badge(t(`state.${state}`), STATE_TONES[state]);
}

/** What the partner last answered: its HTTP status and the error, if any. @param {Pick<Delivery, "lastStatus" | "lastError">} delivery */
export function lastAnswer({ lastStatus, lastError }) {
  return [lastStatus, lastError].filter((part) => part !== null).join(" ");
}

/** Replays the deliveries, one request per channel; answers how many were queued again. @param {Delivery[]} deliveries */
async function replayDeliveries(deliveries) {
  let replayed = 0;
  for (const [senderKey, ofChannel] of Map.groupBy(deliveries, (delivery) => delivery.senderKey)) {
    const serialNumbers = ofChannel.map((delivery) => delivery.serialNumber);
    const answer = await api("POST", "/admin/deliveries/replay", { senderKey, serialNumbers });
    replayed += answer.replayed;
  }
  return replayed;
}
