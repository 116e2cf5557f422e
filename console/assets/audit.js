// @ts-check
// The audit log, newest first, filtered by actor, action, target, outcome and time, paged; the same filters export
// every matching entry as NDJSON.
import { api } from "./api.js";
import { formatTime } from "./format.js";
import { t } from "./i18n.js";
import { badge, cell, dateTimeInput, h, labelled, millisOf, pagedTable, query } from "./ui.js";

/**
 * One entry of GET /admin/audit.
 * @typedef {object} AuditEntry
 * @property {number} id
 * @property {number} at
 * @property {string} actorKind operator or partner
 * @property {string} actor
 * @property {string} action
 * @property {string | null} target
 * @property {string} outcome "ok" or an error code
 */

const PAGE_SIZE = 50;

/** @type {import("./ui.js").Page} */
export function showAudit(root, context) {
  const actor = h("input", { attributes: { name: "actor", maxlength: "100" } });
  const action = h("input", {
    attributes: { name: "action", maxlength: "100", placeholder: "operator.sign-in" },
  });
  const target = h("input", { attributes: { name: "target", maxlength: "200" } });
  const outcome = h("input", { attributes: { name: "outcome", maxlength: "20", placeholder: "ok" } });
  const from = dateTimeInput("from");
  const to = dateTimeInput("to");
  const exported = h(
    "a",
    { className: "button secondary", attributes: { download: "talkgate-audit.ndjson" } },
    t("audit.export"),
  );
  const filters = h(
    "form",
    { className: "filters" },
    labelled(t("audit.actor"), actor),
    labelled(t("audit.action"), action),
    labelled(t("audit.target"), target),
    labelled(t("audit.outcome"), outcome),
    labelled(t("audit.from"), from),
    labelled(t("audit.to"), to),
    h("button", { className: "secondary", attributes: { type: "submit" } }, t("audit.filter")),
    exported,
  );
  /** The filters as the admin API takes them. */
  const filter = () => ({
    actor: actor.value.trim(),
    action: action.value.trim(),
    target: target.value.trim(),
    outcome: outcome.value.trim(),
    from: millisOf(from),
    to: millisOf(to),
  });
  const showExport = () => exported.setAttribute("href", `/admin/audit/export?${query(filter())}`);
  const list = pagedTable({
    headings: [t("audit.time"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.outcome")],
    row: entryRow,
    fetchPage: async (cursor) => {
      const page = await api("GET", `/admin/audit?${query({ ...filter(), limit: PAGE_SIZE, cursor })}`);
      return { items: page.entries, nextCursor: page.nextCursor };
    },
    context,
  });
  filters.addEventListener("input", showExport);
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    void list.reload();
  });
  showExport();
  root.append(h("h1", {}, t("audit.title")), filters, list.element);
  void list.reload();
}

/** @param {AuditEntry} entry */
function entryRow(entry) {
  return h(
    "tr",
    {},
    cell("time", formatTime(entry.at)),
    cell("actor", entry.actor, " ", h("span", { className: "muted" }, entry.actorKind)),
    cell("action", h("span", { className: "key" }, entry.action)),
    cell("target", entry.target ?? "—"),
    cell("outcome", badge(entry.outcome, entry.outcome === "ok" ? "ok" : "bad")),
  );
}
