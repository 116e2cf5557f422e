// @ts-check
// A channel's webhook endpoint at LINE: shown to every operator; an admin sets it (https, LINE's rule) and has LINE
// send a test webhook to it, or to another URL, and sees LINE's answer.
import { api } from "./api.js";
import { formatTime } from "./format.js";
import { t } from "./i18n.js";
import { actionForm, badge, fieldText, h, panel, problemText, textField } from "./ui.js";

/** @typedef {{ success: boolean, timestamp: string, statusCode: number, reason: string, detail: string }} TestResult */

/** @param {string} senderKey @param {boolean} admin */
export function webhookEndpointPanel(senderKey, admin) {
  const path = `/admin/channels/${encodeURIComponent(senderKey)}/webhook-endpoint`;
  const current = h("p", { attributes: { "data-field": "endpoint" } }, "…");
  async function read() {
    try {
      /** @type {{ endpoint: string, active: boolean }} */
      const { endpoint, active } = await api("GET", path);
      current.replaceChildren(
        endpoint ? h("span", { className: "key" }, endpoint) : t("webhook.none"),
        " ",
        active ? badge(t("webhook.active"), "ok") : badge(t("webhook.inactive"), "muted"),
      );
    } catch (error) {
      current.replaceChildren(h("span", { className: "muted" }, problemText(error)));
    }
  }
  void read();
  const section = panel(t("webhook.title"), current);
  if (!admin) return section;

  const result = h("p", { attributes: { role: "status", "data-field": "test-result" } });
  section.append(
    actionForm({
      fields: [
        textField(t("webhook.endpoint"), "endpoint", { type: "url", required: "", placeholder: "https://…" }),
      ],
      submitLabel: t("webhook.set"),
      submit: async (fields) => {
        await api("PUT", path, { endpoint: fieldText(fields, "endpoint") });
        await read();
      },
    }),
    actionForm({
      fields: [textField(t("webhook.testEndpoint"), "endpoint", { type: "url", placeholder: "https://…" })],
      submitLabel: t("webhook.test"),
      submit: async (fields) => {
        const endpoint = fieldText(fields, "endpoint");
        /** @type {TestResult} */
        const answer = await api("POST", `${path}/test`, endpoint ? { endpoint } : {});
        result.replaceChildren(...testOutcome(answer));
      },
    }),
    result,
  );
  return section;
}

/** LINE's answer to a test: whether it worked, the status and reason the endpoint gave, and when. @param {TestResult} answer */
function testOutcome({ success, timestamp, statusCode, reason, detail }) {
  return [
    success ? badge(t("webhook.succeeded"), "ok") : badge(t("webhook.failed"), "bad"),
    ` ${t("webhook.answered", { statusCode, reason })}`,
    ...(detail ? [h("span", { className: "muted" }, ` ${detail}`)] : []),
    h("span", { className: "muted" }, ` · ${formatTime(Date.parse(timestamp))}`),
  ];
}
