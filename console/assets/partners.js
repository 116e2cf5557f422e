// @ts-check
// Partners: each consultation system, where its payloads go, its options and its API keys. A row opens to its keys
// and signing secrets (ids only: a secret is never shown) and, for an admin on a partner made here (not in the
// configuration file), its settings, new keys (shown once), revocation, signing secret rotation and deletion.
import { api } from "./api.js";
import { formatTime } from "./format.js";
import { t } from "./i18n.js";
import {
  actionForm,
  badge,
  cell,
  checkbox,
  confirmStep,
  dataTable,
  enabledBadge,
  expandable,
  fieldText,
  h,
  managedBadge,
  oneTimeSecret,
  panel,
  secretField,
  statusLine,
  textField,
  wholeTable,
} from "./ui.js";

/**
 * One partner of GET /admin/partners.
 * @typedef {object} Partner
 * @property {string} id
 * @property {string} receiveUrl
 * @property {boolean} allowPrivateNetwork
 * @property {boolean} allowWebhookEndpointChange
 * @property {boolean} lineEventFields
 * @property {boolean} disabled
 * @property {"file" | "api"} managedBy
 * @property {Array<{ id: string, addedAt: number }>} signingSecrets
 * @property {ApiKey[]} apiKeys
 */
/** @typedef {{ id: string, name: string, managedBy: "file" | "api", createdAt: number | null, lastUsedAt: number | null }} ApiKey */
/**
 * What a partner's panels need of the page.
 * @typedef {object} PageState
 * @property {(what: string) => Promise<void>} changed says what was done and shows the partners as they are now
 * @property {(title: string, secret: string) => void} showSecret shows a new key once, above the list
 */

/** @type {ReadonlyArray<"allowPrivateNetwork" | "allowWebhookEndpointChange" | "lineEventFields">} */
const FLAGS = ["allowPrivateNetwork", "allowWebhookEndpointChange", "lineEventFields"];
/** @type {ReadonlyArray<import("./i18n.js").Key>} */
const HEADINGS = [
  "partners.partner",
  "partners.receiveUrl",
  "partners.flags",
  "column.state",
  "column.managedBy",
  "partners.keys",
];
const NOTHING = "—";

/** @type {import("./ui.js").Page} */
export function showPartners(root, context) {
  const admin = context.operator.role === "admin";
  const done = statusLine();
  const shown = h("div");
  const opened = new Set();
  /** @type {PageState} */
  const page = {
    changed: async (what) => {
      done.textContent = what;
      await list.reload();
    },
    showSecret: (title, secret) => shown.replaceChildren(oneTimeSecret(title, secret)),
  };
  const list = wholeTable({
    headings: [...HEADINGS.map((key) => t(key)), ""],
    row: (/** @type {Partner} */ partner) =>
      expandable({
        row: partnerRow(partner),
        columns: HEADINGS.length + 1,
        key: partner.id,
        opened,
        detail: () => partnerDetail(partner, admin && partner.managedBy === "api" ? page : null),
      }),
    fetchAll: async () => (await api("GET", "/admin/partners")).partners,
    context,
  });
  root.append(h("h1", {}, t("partners.title")), done, shown);
  if (admin)
    root.append(
      newPartner((id) => {
        opened.add(id);
        return page.changed(t("partners.created", { id }));
      }),
    );
  root.append(list.element);
  void list.reload();
}

/** @param {Partner} partner */
function partnerRow(partner) {
  const flags = FLAGS.filter((flag) => partner[flag]).map((flag) => badge(t(`partners.${flag}`), "muted"));
  return h(
    "tr",
    { attributes: { "data-partner": partner.id } },
    cell("partner", h("span", { className: "key" }, partner.id)),
    cell("receive-url", h("span", { className: "key" }, partner.receiveUrl)),
    cell("flags", ...(flags.length > 0 ? flags : [NOTHING])),
    cell("state", enabledBadge(partner.disabled)),
    cell("managed-by", managedBadge(partner.managedBy)),
    cell("keys", String(partner.apiKeys.length)),
  );
}

/** "New partner", folded. @param {(id: string) => Promise<void>} created */
function newPartner(created) {
  const form = actionForm({
    fields: [
      textField(t("partners.id"), "id", { required: "", autocomplete: "off" }),
      textField(t("partners.receiveUrl"), "receiveUrl", {
        type: "url",
        required: "",
        placeholder: "https://…",
      }),
      secretField(t("partners.signingSecret"), "signingSecret", false),
      ...flagFields(null),
    ],
    submitLabel: t("partners.create"),
    submit: async (fields) => {
      const id = fieldText(fields, "id");
      const signingSecret = fieldText(fields, "signingSecret");
      await api("POST", "/admin/partners", {
        id,
        receiveUrl: fieldText(fields, "receiveUrl"),
        ...(signingSecret ? { signingSecret } : {}),
        ...flagsOf(fields),
      });
      await created(id);
    },
  });
  return h("details", { className: "panel" }, h("summary", {}, t("partners.new")), form);
}

/** A tick box for each of a partner's options. @param {Partner | null} partner */
function flagFields(partner) {
  return FLAGS.map((flag) => checkbox(t(`partners.${flag}`), flag, partner?.[flag] ?? false));
}

/** @param {FormData} fields */
function flagsOf(fields) {
  return Object.fromEntries(FLAGS.map((flag) => [flag, fields.has(flag)]));
}

/**
 * What a partner's row opens to: its keys and signing secrets and, when `page` is given (an admin, a partner made
 * here), the forms that change them; a partner of the configuration file says it is read-only here.
 * @param {Partner} partner @param {PageState | null} page
 */
function partnerDetail(partner, page) {
  const path = `/admin/partners/${encodeURIComponent(partner.id)}`;
  const panels = h(
    "div",
    { className: "panels" },
    ...(page ? [settingsPanel(partner, path, page)] : []),
    keysPanel(partner, path, page),
    signingSecretsPanel(partner, path, page),
  );
  if (partner.managedBy === "api") return panels;
  return h("div", {}, h("p", { className: "muted" }, t("entry.readOnly")), panels);
}

/** Where payloads go, the options, disabling, and deletion. @param {Partner} partner @param {string} path @param {PageState} page */
function settingsPanel(partner, path, page) {
  return panel(
    t("partners.settings"),
    actionForm({
      fields: [
        textField(t("partners.receiveUrl"), "receiveUrl", {
          type: "url",
          required: "",
          value: partner.receiveUrl,
        }),
        ...flagFields(partner),
        checkbox(t("partners.disable"), "disabled", partner.disabled),
      ],
      submitLabel: t("form.save"),
      submit: async (fields) => {
        const change = {
          receiveUrl: fieldText(fields, "receiveUrl"),
          ...flagsOf(fields),
          disabled: fields.has("disabled"),
        };
        await api("PATCH", path, change);
        await page.changed(t("partners.saved", { id: partner.id }));
      },
    }),
    confirmStep({
      label: t("partners.delete"),
      question: t("partners.deleteQuestion", { id: partner.id }),
      action: async () => {
        await api("DELETE", path);
        await page.changed(t("partners.deleted", { id: partner.id }));
      },
    }),
  );
}

/** The partner's live API keys; with `page`, revocation and new keys. @param {Partner} partner @param {string} path @param {PageState | null} page */
function keysPanel(partner, path, page) {
  const { table, body } = dataTable([
    t("column.name"),
    t("column.id"),
    t("column.createdAt"),
    t("column.lastUsed"),
    ...(page ? [""] : []),
  ]);
  body.append(
    ...partner.apiKeys.map((key) =>
      h(
        "tr",
        { attributes: { "data-key-id": key.id } },
        cell("name", key.name),
        cell("id", h("span", { className: "key" }, key.id)),
        cell("created", key.createdAt === null ? NOTHING : formatTime(key.createdAt)),
        cell("last-used", key.lastUsedAt === null ? t("overview.never") : formatTime(key.lastUsedAt)),
        ...(page
          ? [
              cell(
                "revoke",
                confirmStep({
                  label: t("partners.revoke"),
                  question: t("partners.revokeQuestion", { name: key.name, id: key.id }),
                  action: async () => {
                    await api("DELETE", `${path}/keys/${key.id}`);
                    await page.changed(t("partners.revoked", { name: key.name }));
                  },
                }),
              ),
            ]
          : []),
      ),
    ),
  );
  const section = panel(t("partners.keys"), table);
  if (page)
    section.append(
      actionForm({
        fields: [
          textField(t("column.name"), "name", { required: "", maxlength: "100", autocomplete: "off" }),
        ],
        submitLabel: t("partners.createKey"),
        submit: async (fields) => {
          const name = fieldText(fields, "name");
          /** @type {{ id: string, key: string }} */
          const made = await api("POST", `${path}/keys`, { name });
          page.showSecret(t("partners.keyShown", { name, id: partner.id }), made.key);
          await page.changed(t("partners.keyCreated", { name }));
        },
      }),
    );
  return section;
}

/** The partner's signing secrets (ids only); with `page`, retiring one and adding one. @param {Partner} partner @param {string} path @param {PageState | null} page */
function signingSecretsPanel(partner, path, page) {
  const secrets = h(
    "ul",
    { className: "plain" },
    ...partner.signingSecrets.map((secret) =>
      h(
        "li",
        { attributes: { "data-secret-id": secret.id } },
        h("span", { className: "key" }, secret.id),
        ` ${t("partners.added", { when: formatTime(secret.addedAt) })}`,
        ...(page
          ? [
              confirmStep({
                label: t("partners.retire"),
                question: t("partners.retireQuestion", { id: secret.id }),
                action: async () => {
                  await api("DELETE", `${path}/signing-secrets/${secret.id}`);
                  await page.changed(t("partners.retired", { id: secret.id }));
                },
              }),
            ]
          : []),
      ),
    ),
  );
  if (partner.signingSecrets.length === 0)
    secrets.append(h("li", { className: "muted" }, t("partners.unsigned")));
  const section = panel(t("partners.signingSecrets"), secrets);
  if (page)
    section.append(
      actionForm({
        fields: [secretField(t("partners.newSigningSecret"), "secret")],
        submitLabel: t("partners.addSecret"),
        submit: async (fields) => {
          await api("POST", `${path}/signing-secrets`, { secret: fieldText(fields, "secret") });
          await page.changed(t("partners.secretAdded", { id: partner.id }));
        },
      }),
    );
  return section;
}
