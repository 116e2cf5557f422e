// @ts-check
// The overview: one row per channel (traffic of the last minute, backlog, delivery lag, dead letters, partner and
// token state, last webhook) from GET /admin/overview, refreshed every few seconds in place.
import { api } from "./api.js";
import { formatDuration, formatNumber, formatRelative, formatTime } from "./format.js";
import { t } from "./i18n.js";
import { badge, cell, dataTable, h } from "./ui.js";

/**
 * One channel of GET /admin/overview.
 * @typedef {object} ChannelFigures
 * @property {string} senderKey
 * @property {string} partner
 * @property {boolean} disabled
 * @property {"delivering" | "paused" | "probing" | "disabled"} partnerState
 * @property {number} received webhook events received in the window
 * @property {number} delivered deliveries delivered in the window
 * @property {number | null} lastReceivedAt
 * @property {number} pending
 * @property {number} retrying
 * @property {number} dead
 * @property {number | null} oldestWaitingAt
 * @property {{ type: string, state: "valid" | "failing" | "none", expiresAt: number | null } | null} token
 */
/** @typedef {{ at: number, windowMs: number, channels: ChannelFigures[] }} Overview */

const REFRESH_MS = 5_000;
const NOTHING = "—";

const PARTNER_TONES = { delivering: "ok", paused: "bad", probing: "warn", disabled: "muted" };
const TOKEN_TONES = { valid: "ok", failing: "warn", none: "bad" };

/** @type {import("./ui.js").Page} */
export function showOverview(root, context) {
  const updated = h("p", { className: "muted" });
  const { table, body } = dataTable([
    t("overview.channel"),
    t("overview.webhooks"),
    t("overview.relays"),
    t("overview.backlog"),
    t("overview.lag"),
    t("overview.dead"),
    t("overview.partner"),
    t("overview.token"),
    t("overview.lastWebhook"),
  ]);
  root.append(h("h1", {}, t("overview.title")), updated, table);

  async function refresh() {
    try {
      /** @type {Overview} */
      const overview = await api("GET", "/admin/overview");
      body.replaceChildren(...overview.channels.map((channel) => channelRow(channel, overview)));
      updated.textContent = t("overview.updated", { time: formatTime(overview.at) });
      context.hideProblem();
    } catch (error) {
      context.showProblem(error);
    }
  }
  void refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}

/** @param {ChannelFigures} channel @param {Overview} overview */
function channelRow(channel, { at, windowMs }) {
  const perMinute = (/** @type {number} */ count) => formatNumber((count * 60_000) / windowMs, 1);
  return h(
    "tr",
    { attributes: { "data-sender-key": channel.senderKey } },
    cell(
      "channel",
      h("span", { className: "key" }, channel.senderKey),
      ...(channel.disabled ? [" ", badge(t("overview.disabled"), "muted")] : []),
    ),
    cell("received", perMinute(channel.received)),
    cell("delivered", perMinute(channel.delivered)),
    cell("backlog", formatNumber(channel.pending + channel.retrying)),
    cell("lag", channel.oldestWaitingAt === null ? NOTHING : formatDuration(at - channel.oldestWaitingAt)),
    cell("dead", channel.dead > 0 ? badge(formatNumber(channel.dead), "bad") : "0"),
    cell(
      "partner",
      `${channel.partner} `,
      badge(t(`partnerState.${channel.partnerState}`), PARTNER_TONES[channel.partnerState]),
    ),
    cell("token", ...tokenState(channel.token, at)),
    cell(
      "last-webhook",
      channel.lastReceivedAt === null ? t("overview.never") : formatRelative(channel.lastReceivedAt, at),
    ),
  );
}

/** A channel's token: its state, type and expiry. @param {ChannelFigures["token"]} token @param {number} now */
export function tokenState(token, now) {
  if (token === null) return [NOTHING];
  const state = badge(t(`tokenState.${token.state}`), TOKEN_TONES[token.state]);
  const expiry =
    token.expiresAt === null
      ? ""
      : `, ${t("overview.expires", { when: formatRelative(token.expiresAt, now) })}`;
  return [state, ` ${token.type}${expiry}`];
}
