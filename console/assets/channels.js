// @ts-check
// Channels: each LINE channel, its partner, the events it forwards and its token's state. A row opens to the
// channel's LINE webhook endpoint and, for an admin on a channel made here (not in the configuration file), its
// settings, a new channel secret, a new access token credential (SPEC §11) and deletion. An admin adds channels.
import { api } from "./api.js";
import { t } from "./i18n.js";
import { tokenState } from "./overview.js";
import {
  actionForm,
  cell,
  checkbox,
  confirmStep,
  enabledBadge,
  expandable,
  fieldText,
  h,
  labelled,
  managedBadge,
  panel,
  secretField,
  select,
  statusLine,
  textField,
  wholeTable,
} from "./ui.js";
import { webhookEndpointPanel } from "./webhook-endpoint.js";

/**
 * One channel of GET /admin/channels.
 * @typedef {object} Channel
 * @property {string} senderKey
 * @property {string} partner
 * @property {string[]} forwardEventTypes
 * @property {{ type: string, state: "valid" | "failing" | "none", expiresAt: number | null, lastFailure: string | null } | null} accessToken
 * @property {boolean} disabled
 * @property {"file" | "api"} managedBy
 */
/** What a channel's panels need of the page. @typedef {{ admin: boolean, partners: string[], changed: (what: string) => Promise<void> }} PageState */

/** The event types a channel may forward: FORWARDABLE_EVENT_TYPES of src/core/partner-payload.ts (the test compares). */
const EVENT_TYPES = [
  "message",
  "postback",
  "follow",
  "unfollow",
  "unsend",
  "join",
  "leave",
  "memberJoined",
  "memberLeft",
  "videoPlayComplete",
  "messageEdited",
];
const DEFAULT_EVENT_TYPES = ["message", "postback"];
/** @type {ReadonlyArray<"static" | "stateless" | "shortLived" | "v2.1">} */
const TOKEN_TYPES = ["static", "stateless", "shortLived", "v2.1"];
/** @type {ReadonlyArray<import("./i18n.js").Key>} */
const HEADINGS = [
  "column.channel",
  "channels.partner",
  "channels.events",
  "channels.token",
  "column.state",
  "column.managedBy",
];

/** @type {import("./ui.js").Page} */
export function showChannels(root, context) {
  const admin = context.operator.role === "admin";
  const done = statusLine();
  const opened = new Set();
  /** @type {PageState} */
  const page = { admin, partners: [], changed };
  const list = wholeTable({
    headings: [...HEADINGS.map((key) => t(key)), ""],
    row: (/** @type {Channel} */ channel) =>
      expandable({
        row: channelRow(channel),
        columns: HEADINGS.length + 1,
        key: channel.senderKey,
        opened,
        detail: () => channelDetail(channel, page),
      }),
    fetchAll: async () => {
      const [{ channels }, { partners }] = await Promise.all([
        api("GET", "/admin/channels"),
        api("GET", "/admin/partners"),
      ]);
      page.partners = partners.map((/** @type {{ id: string }} */ partner) => partner.id);
      return channels;
    },
    context,
  });
  /** Says what was done and shows the channels as they are now. @param {string} what */
  async function changed(what) {
    done.textContent = what;
    await list.reload();
  }
  root.append(h("h1", {}, t("channels.title")), done);
  if (admin)
    root.append(
      newChannel(page, (senderKey) => {
        opened.add(senderKey);
        return changed(t("channels.created", { senderKey }));
      }),
    );
  root.append(list.element);
  void list.reload();
}

/** @param {Channel} channel */
function channelRow(channel) {
  const failure = channel.accessToken?.lastFailure;
  return h(
    "tr",
    { attributes: { "data-sender-key": channel.senderKey } },
    cell("channel", h("span", { className: "key" }, channel.senderKey)),
    cell("partner", channel.partner),
    cell("events", channel.forwardEventTypes.join(", ")),
    cell(
      "token",
      ...tokenState(channel.accessToken, Date.now()),
      ...(failure ? [h("div", { className: "muted" }, failure)] : []),
    ),
    cell("state", enabledBadge(channel.disabled)),
    cell("managed-by", managedBadge(channel.managedBy)),
  );
}

/**
 * "New channel", folded; its form is made afresh each time it opens (with the partners known then).
 * @param {PageState} page @param {(senderKey: string) => Promise<void>} created
 */
function newChannel(page, created) {
  const content = h("div");
  const section = h("details", { className: "panel" }, h("summary", {}, t("channels.new")), content);
  section.addEventListener("toggle", () => {
    if (!section.open) return;
    const form = actionForm({
      fields: [
        textField(t("channels.senderKey"), "senderKey", { required: "", autocomplete: "off" }),
        labelled(t("channels.partner"), partnerSelect(page.partners, "")),
        secretField(t("channels.secret"), "channelSecret"),
        credentialFields(t("channels.tokenNone")),
        eventTypeFields(DEFAULT_EVENT_TYPES),
      ],
      submitLabel: t("channels.create"),
      submit: async (fields) => {
        const senderKey = fieldText(fields, "senderKey");
        const accessToken = credentialOf(fields);
        await api("POST", "/admin/channels", {
          senderKey,
          partner: fieldText(fields, "partner"),
          channelSecret: fieldText(fields, "channelSecret"),
          forwardEventTypes: fields.getAll("forwardEventTypes").map(String),
          ...(accessToken ? { accessToken } : {}),
        });
        await created(senderKey);
      },
    });
    content.replaceChildren(form);
  });
  return section;
}

/**
 * What a channel's row opens to: its webhook endpoint at LINE and, for an admin on a channel made here, its change
 * forms; a channel of the configuration file says it is read-only here.
 * @param {Channel} channel @param {PageState} page
 */
function channelDetail(channel, page) {
  const endpoint = webhookEndpointPanel(channel.senderKey, page.admin);
  if (channel.managedBy === "file")
    return h(
      "div",
      {},
      h("p", { className: "muted" }, t("entry.readOnly")),
      h("div", { className: "panels" }, endpoint),
    );
  if (!page.admin) return h("div", { className: "panels" }, endpoint);
  const { senderKey } = channel;
  const path = `/admin/channels/${encodeURIComponent(senderKey)}`;
  /** @param {object} change @param {import("./i18n.js").Key} said */
  const update = async (change, said) => {
    await api("PATCH", path, change);
    await page.changed(t(said, { senderKey }));
  };
  return h(
    "div",
    { className: "panels" },
    panel(
      t("channels.settings"),
      actionForm({
        fields: [
          labelled(t("channels.partner"), partnerSelect(page.partners, channel.partner)),
          eventTypeFields(channel.forwardEventTypes),
          checkbox(t("channels.disable"), "disabled", channel.disabled),
        ],
        submitLabel: t("form.save"),
        submit: (fields) =>
          update(
            {
              partner: fieldText(fields, "partner"),
              forwardEventTypes: fields.getAll("forwardEventTypes").map(String),
              disabled: fields.has("disabled"),
            },
            "channels.saved",
          ),
      }),
      confirmStep({
        label: t("channels.delete"),
        question: t("channels.deleteQuestion", { senderKey }),
        action: async () => {
          await api("DELETE", path);
          await page.changed(t("channels.deleted", { senderKey }));
        },
      }),
    ),
    panel(
      t("channels.rotateSecret"),
      actionForm({
        fields: [secretField(t("channels.newSecret"), "channelSecret")],
        submitLabel: t("form.replace"),
        submit: (fields) =>
          update({ channelSecret: fieldText(fields, "channelSecret") }, "channels.secretReplaced"),
      }),
    ),
    panel(
      t("channels.credential"),
      actionForm({
        fields: [credentialFields(t("channels.tokenRemove"))],
        submitLabel: t("form.replace"),
        submit: (fields) => update({ accessToken: credentialOf(fields) }, "channels.credentialReplaced"),
      }),
    ),
    endpoint,
  );
}

/** A `<select name="partner">` of the partners, `selected` chosen. @param {string[]} partners @param {string} selected */
function partnerSelect(partners, selected) {
  const choice = select(
    "partner",
    partners.map((id) => [id, id]),
  );
  for (const option of choice.options) option.defaultSelected = option.value === selected;
  return choice;
}

/** A tick box for each event type a channel may forward. @param {string[]} checked */
function eventTypeFields(checked) {
  return h(
    "fieldset",
    { className: "ticks" },
    h("legend", {}, t("channels.events")),
    ...EVENT_TYPES.map((type) => checkbox(type, "forwardEventTypes", checked.includes(type), type)),
  );
}

/**
 * The fields of a channel's LINE credential: its type, and the fields that type takes (the stylesheet shows only
 * those of the chosen type).
 * @param {string} noneLabel what choosing no type means here
 */
function credentialFields(noneLabel) {
  /** @param {string} type @param {HTMLElement} field */
  const onlyFor = (type, field) => {
    field.dataset.for = type;
    return field;
  };
  const types = TOKEN_TYPES.map((type) => /** @type {[string, string]} */ ([type, t(`tokenType.${type}`)]));
  return h(
    "fieldset",
    { className: "credential" },
    h("legend", {}, t("channels.credential")),
    labelled(t("channels.tokenType"), select("tokenType", [["", noneLabel], ...types])),
    onlyFor("static", secretField(t("channels.staticToken"), "token", false)),
    onlyFor("v2.1", textField(t("channels.kid"), "kid", { autocomplete: "off" })),
    onlyFor("v2.1", secretField(t("channels.privateKey"), "privateKey", false)),
    onlyFor(
      "v2.1",
      textField(t("channels.ttlSeconds"), "ttlSeconds", {
        type: "number",
        min: "60",
        placeholder: "2592000",
      }),
    ),
  );
}

/** The credential {@link credentialFields} describe (the admin API's accessToken), or null for none. @param {FormData} fields */
function credentialOf(fields) {
  const type = fieldText(fields, "tokenType");
  if (type === "") return null;
  if (type === "static") return { type, token: fieldText(fields, "token") };
  if (type !== "v2.1") return { type };
  const ttlSeconds = fieldText(fields, "ttlSeconds");
  return {
    type,
    kid: fieldText(fields, "kid"),
    privateKey: fieldText(fields, "privateKey"),
    ...(ttlSeconds ? { ttlSeconds: Number(ttlSeconds) } : {}),
  };
}
