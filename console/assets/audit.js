// @ts-check
// The audit log, newest first, filtered by actor and action, paged.
import { api } from "./api.js";
import { formatTime } from "./format.js";
import { t } from "./i18n.js";
import { badge, cell, h, labelled, pagedTable, query } from "./ui.js";

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
  const filters = h(
    "form",
    { className: "filters" },
    labelled(t("audit.actor"), actor),
    labelled(t("audit.action"), action),
    h("button", { className: "secondary", attributes: { type: "submit" } }, t("audit.filter")),
  );
  const list = pagedTable({
    headings: [t("audit.time"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.outcome")],
    row: entryRow,
    fetchPage: async (cursor) => {
      const parameters = { actor: actor.value.trim(), action: action.value.trim(), limit: PAGE_SIZE, cursor };
      const page = await api("GET", `/admin/audit?${query(parameters)}`);
      return { items: page.entries, nextCursor: page.nextCursor };
    },
    context,
  });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    void list.reload();
  });
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
