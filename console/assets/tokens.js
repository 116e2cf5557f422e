// @ts-check
// Operator tokens, the admin API's credentials for scripts and the CLI: listed for every operator; an admin makes one
// (shown once) for any operator, and revokes one.
import { api } from "./api.js";
import { formatTime } from "./format.js";
import { t } from "./i18n.js";
import {
  actionForm,
  badge,
  cell,
  confirmStep,
  fieldText,
  h,
  oneTimeSecret,
  panel,
  statusLine,
  textField,
  wholeTable,
} from "./ui.js";

/**
 * One token of GET /admin/tokens.
 * @typedef {object} OperatorToken
 * @property {string} id
 * @property {string} operator
 * @property {string} name
 * @property {number} createdAt
 * @property {string} createdBy
 * @property {number | null} revokedAt
 * @property {number | null} lastUsedAt
 */

/** @type {ReadonlyArray<import("./i18n.js").Key>} */
const HEADINGS = [
  "column.name",
  "tokens.operator",
  "column.id",
  "column.createdAt",
  "column.lastUsed",
  "column.state",
];

/** @type {import("./ui.js").Page} */
export function showTokens(root, context) {
  const admin = context.operator.role === "admin";
  const done = statusLine();
  const shown = h("div");
  /** Says what was done and shows the tokens as they are now. @param {string} what */
  const changed = async (what) => {
    done.textContent = what;
    await list.reload();
  };
  const list = wholeTable({
    headings: [...HEADINGS.map((key) => t(key)), ...(admin ? [""] : [])],
    row: (/** @type {OperatorToken} */ token) => tokenRow(token, admin ? changed : null),
    fetchAll: async () => (await api("GET", "/admin/tokens")).tokens,
    context,
  });
  root.append(h("h1", {}, t("tokens.title")), h("p", { className: "muted" }, t("tokens.about")), done, shown);
  if (admin) {
    const form = actionForm({
      fields: [
        textField(t("tokens.operator"), "operator", {
          required: "",
          value: context.operator.name,
          autocomplete: "off",
        }),
        textField(t("column.name"), "name", { required: "", maxlength: "100", autocomplete: "off" }),
      ],
      submitLabel: t("tokens.create"),
      submit: async (fields) => {
        const body = { operator: fieldText(fields, "operator"), name: fieldText(fields, "name") };
        /** @type {{ token: string }} */
        const made = await api("POST", "/admin/tokens", body);
        shown.replaceChildren(oneTimeSecret(t("tokens.shown", body), made.token));
        await changed(t("tokens.created", body));
      },
    });
    root.append(panel(t("tokens.new"), form));
  }
  root.append(list.element);
  void list.reload();
}

/**
 * @param {OperatorToken} token
 * @param {((what: string) => Promise<void>) | null} changed given to an admin: a live token can be revoked
 */
function tokenRow(token, changed) {
  const revoke =
    changed && token.revokedAt === null
      ? confirmStep({
          label: t("tokens.revoke"),
          question: t("tokens.revokeQuestion", { name: token.name, operator: token.operator }),
          action: async () => {
            await api("DELETE", `/admin/tokens/${token.id}`);
            await changed(t("tokens.revoked", { name: token.name }));
          },
        })
      : "";
  return h(
    "tr",
    { attributes: { "data-token-id": token.id } },
    cell("name", token.name),
    cell("operator", token.operator),
    cell("id", h("span", { className: "key" }, token.id)),
    cell("created", formatTime(token.createdAt), " ", h("span", { className: "muted" }, token.createdBy)),
    cell("last-used", token.lastUsedAt === null ? t("overview.never") : formatTime(token.lastUsedAt)),
    cell(
      "state",
      token.revokedAt === null
        ? badge(t("tokens.live"), "ok")
        : badge(t("tokens.revokedAt", { when: formatTime(token.revokedAt) }), "muted"),
    ),
    ...(changed ? [cell("revoke", revoke)] : []),
  );
}
