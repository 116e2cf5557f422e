// @ts-check
// The pieces every page is built from: elements (text only ever set as text), badges, tables filled page by page
// with rows that open, forms that send themselves, confirm steps, secrets shown once, and what a page is given.
import { ApiError, api } from "./api.js";
import { t } from "./i18n.js";

/**
 * What a page is given: who is signed in, the parameters of its address (#/timeline?senderKey=…), and the page's
 * problem area.
 * @typedef {object} PageContext
 * @property {import("./session.js").Operator} operator
 * @property {URLSearchParams} params
 * @property {(error: unknown) => void} showProblem
 * @property {() => void} hideProblem
 */

/**
 * Shows a page in `root`; answers what stops it (its timers), if anything.
 * @typedef {(root: HTMLElement, context: PageContext) => (() => void) | void} Page
 */

/**
 * An element with a class, attributes and children (strings become text nodes, never markup).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{ className?: string, attributes?: Record<string, string> }} [options]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, { className, attributes = {} } = {}, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/** A status word, colored by its tone. @param {string} text @param {string} tone ok, warn, bad or muted */
export function badge(text, tone) {
  return h("span", { className: `badge ${tone}` }, text);
}

/** A table cell; `column` names it (for styles and tests). @param {string} column @param {...(Node | string)} content */
export function cell(column, ...content) {
  return h("td", { attributes: { "data-column": column } }, ...content);
}

/** A `<select>` of [value, label] options. @param {string} name @param {Array<[string, string]>} options */
export function select(name, options) {
  return h(
    "select",
    { attributes: { name } },
    ...options.map(([value, label]) => h("option", { attributes: { value } }, label)),
  );
}

/** A label around its control. @param {string} text @param {HTMLElement} control */
export function labelled(text, control) {
  return h("label", {}, h("span", {}, text), control);
}

/**
 * A table with the given headings, and its body to fill.
 * @param {Array<Node | string>} headings
 */
export function dataTable(headings) {
  const body = h("tbody");
  const table = h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...headings.map((heading) => h("th", {}, heading)))),
    body,
  );
  return { table, body };
}

/**
 * A table filled a page at a time from a cursor-paged list of the admin API, with "load more" while there is more.
 * @template T
 * @param {object} options
 * @param {Array<Node | string>} options.headings
 * @param {(item: T) => HTMLTableRowElement | HTMLTableRowElement[]} options.row
 * @param {(cursor: string | null) => Promise<{ items: T[], nextCursor: string | null }>} options.fetchPage
 * @param {PageContext} options.context
 */
export function pagedTable({ headings, row, fetchPage, context }) {
  const { table, body } = dataTable(headings);
  const empty = h("p", { className: "muted" }, t("list.empty"));
  const more = h("button", { className: "secondary", attributes: { type: "button" } }, t("list.loadMore"));
  empty.hidden = true;
  more.hidden = true;
  /** @type {string | null} */
  let cursor = null;
  // A page that arrives after the table was emptied again belongs to the old filter: it is dropped.
  let generation = 0;

  async function loadPage() {
    const mine = generation;
    more.disabled = true;
    try {
      const page = await fetchPage(cursor);
      if (mine !== generation) return;
      body.append(...page.items.flatMap(row));
      cursor = page.nextCursor;
      more.hidden = cursor === null;
      empty.hidden = body.rows.length > 0;
      context.hideProblem();
    } catch (error) {
      context.showProblem(error);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => void loadPage());

  return {
    element: h("div", { className: "paged" }, table, empty, more),
    /** Empties the table and loads the first page. */
    reload() {
      generation += 1;
      cursor = null;
      body.replaceChildren();
      return loadPage();
    },
  };
}

/** What to tell the operator about a failure. @param {unknown} error */
export function problemText(error) {
  if (error instanceof ApiError && error.status === 0) return t("problem.network", { reason: error.message });
  if (error instanceof ApiError) return `${error.message} (${error.code || error.status})`;
  return String(error);
}

/** A query string of the parameters that have a value. @param {Record<string, string | number | null>} parameters */
export function query(parameters) {
  const given = Object.entries(parameters).filter(([, value]) => value !== null && value !== "");
  return new URLSearchParams(given.map(([name, value]) => [name, String(value)])).toString();
}

/**
 * A table of an admin API list that comes whole (no pages): a {@link pagedTable} of one page.
 * @template T
 * @param {object} options
 * @param {Array<Node | string>} options.headings
 * @param {(item: T) => HTMLTableRowElement | HTMLTableRowElement[]} options.row
 * @param {() => Promise<T[]>} options.fetchAll
 * @param {PageContext} options.context
 */
export function wholeTable({ fetchAll, ...options }) {
  return pagedTable({ ...options, fetchPage: async () => ({ items: await fetchAll(), nextCursor: null }) });
}

/**
 * A table row with a button, in a last cell of its own, that opens a row beneath it across every column; `detail`
 * builds that row's content each time it opens. `opened` keeps which rows are open (by key) when the table is
 * filled again.
 * @param {object} options
 * @param {HTMLTableRowElement} options.row
 * @param {number} options.columns the table's columns, the button's included
 * @param {string} options.key
 * @param {Set<string>} options.opened
 * @param {() => Node} options.detail
 * @returns {HTMLTableRowElement[]}
 */
export function expandable({ row, columns, key, opened, detail }) {
  const content = h("td", { attributes: { colspan: String(columns) } });
  const below = h("tr", { className: "detail" }, content);
  const button = h("button", { className: "secondary", attributes: { type: "button" } });
  let isOpen = false;
  /** @param {boolean} open */
  const show = (open) => {
    isOpen = open;
    below.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = t(open ? "list.close" : "list.open");
    content.replaceChildren(...(open ? [detail()] : []));
    if (open) opened.add(key);
    else opened.delete(key);
  };
  button.addEventListener("click", () => show(!isOpen));
  row.append(cell("open", button));
  show(opened.has(key));
  return [row, below];
}

/** A paragraph for a refusal, hidden until there is one. */
function problemLine() {
  const line = h("p", { className: "problem", attributes: { role: "alert" } });
  line.hidden = true;
  return line;
}

/** @param {HTMLElement} line a {@link problemLine} @param {unknown} error */
function showProblemIn(line, error) {
  line.textContent = problemText(error);
  line.hidden = false;
}

/**
 * A form that sends itself: `submit` gets its fields while the button waits. A refusal is shown in the form (the
 * admin API's message names the field); after success the form is reset. Secret (password) fields are emptied the
 * moment the form is sent, whatever comes of it: a secret stays in the page no longer than it takes to send it.
 * @param {object} options
 * @param {Array<Node | string>} options.fields
 * @param {string} options.submitLabel
 * @param {(fields: FormData) => Promise<void>} options.submit
 */
export function actionForm({ fields, submitLabel, submit }) {
  const button = h("button", { attributes: { type: "submit" } }, submitLabel);
  const problem = problemLine();
  const form = h(
    "form",
    { className: "action-form" },
    ...fields,
    h("div", { className: "buttons" }, button),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = new FormData(form);
    for (const secret of form.querySelectorAll('input[type="password"]')) {
      if (secret instanceof HTMLInputElement) secret.value = "";
    }
    button.disabled = true;
    problem.hidden = true;
    try {
      await submit(values);
      form.reset();
    } catch (error) {
      showProblemIn(problem, error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** A field's text, trimmed ("" when absent). @param {FormData} fields @param {string} name */
export function fieldText(fields, name) {
  return String(fields.get(name) ?? "").trim();
}

/** A labelled text input. @param {string} label @param {string} name @param {Record<string, string>} [attributes] */
export function textField(label, name, attributes = {}) {
  return labelled(label, h("input", { attributes: { name, ...attributes } }));
}

/**
 * A labelled password input for a secret: write-only, never filled in, never offered by the browser's password store.
 * @param {string} label @param {string} name @param {boolean} [required]
 */
export function secretField(label, name, required = true) {
  const attributes = { name, type: "password", autocomplete: "new-password", spellcheck: "false" };
  return labelled(label, h("input", { attributes: required ? { ...attributes, required: "" } : attributes }));
}

/**
 * A tick box with its label after it.
 * @param {string} label @param {string} name @param {boolean} checked @param {string} [value] for several of one name
 */
export function checkbox(label, name, checked, value = "on") {
  const box = h("input", { attributes: { type: "checkbox", name, value } });
  box.defaultChecked = checked;
  return h("label", { className: "tick" }, box, h("span", {}, label));
}

/** A date and time input in the browser's time zone. @param {string} name */
export function dateTimeInput(name) {
  return h("input", { attributes: { name, type: "datetime-local", step: "1" } });
}

/** The Unix ms of a {@link dateTimeInput} (read as local time), or null when it is empty. @param {HTMLInputElement} input */
export function millisOf(input) {
  return input.value === "" ? null : new Date(input.value).getTime();
}

/**
 * A button whose action waits for an explicit second yes: the question (saying what will happen) with Confirm and
 * Cancel. A refusal is shown beneath it.
 * @param {object} options
 * @param {string} options.label
 * @param {string} options.question
 * @param {() => Promise<void>} options.action
 */
export function confirmStep({ label, question, action }) {
  const start = h("button", { className: "secondary", attributes: { type: "button" } }, label);
  const yes = h("button", { className: "danger", attributes: { type: "button" } }, t("confirm.yes"));
  const no = h("button", { className: "secondary", attributes: { type: "button" } }, t("confirm.cancel"));
  const problem = problemLine();
  const asking = h(
    "div",
    { className: "confirm", attributes: { role: "group", "aria-label": label } },
    h("p", {}, question),
    h("div", { className: "buttons" }, yes, no),
  );
  /** @param {boolean} open */
  const ask = (open) => {
    asking.hidden = !open;
    start.hidden = open;
  };
  ask(false);
  start.addEventListener("click", () => {
    problem.hidden = true;
    ask(true);
  });
  no.addEventListener("click", () => ask(false));
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await action();
      ask(false);
    } catch (error) {
      showProblemIn(problem, error);
    } finally {
      yes.disabled = false;
    }
  });
  return h("div", { className: "confirm-step" }, start, asking, problem);
}

/**
 * A secret talkgate shows this once (a new key or token), with a copy button; dismissing it takes it off the page.
 * @param {string} title @param {string} secret
 */
export function oneTimeSecret(title, secret) {
  const value = h("code", { className: "secret" }, secret);
  const copy = h("button", { className: "secondary", attributes: { type: "button" } }, t("secret.copy"));
  const dismiss = h("button", { attributes: { type: "button" } }, t("secret.dismiss"));
  const box = h(
    "div",
    { className: "one-time", attributes: { role: "region", "aria-label": title } },
    h("strong", {}, title),
    h("p", {}, t("secret.once")),
    value,
    h("div", { className: "buttons" }, copy, dismiss),
  );
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = t("secret.copied");
    } catch {
      // No clipboard for this page (permission refused): the text is selected for the operator to copy.
      getSelection()?.selectAllChildren(value);
      copy.textContent = t("secret.selected");
    }
  });
  dismiss.addEventListener("click", () => box.remove());
  return box;
}

/** A line that says what an action did (role status). */
export function statusLine() {
  return h("p", { className: "notice", attributes: { role: "status" } });
}

/**
 * A `<select name="senderKey">` of the channels, filled once GET /admin/channels answers; the `selected` one is there
 * (and chosen) from the start.
 * @param {PageContext} context
 * @param {{ all?: boolean, selected?: string }} [options] all: a first option meaning every channel
 */
export function channelSelect(context, { all = false, selected = "" } = {}) {
  const option = (/** @type {string} */ value, /** @type {string} */ label) =>
    h("option", { attributes: { value } }, label);
  const first = () => (all ? [option("", t("list.all"))] : []);
  const senderKey = h(
    "select",
    { attributes: { name: "senderKey" } },
    ...first(),
    ...(selected ? [option(selected, selected)] : []),
  );
  senderKey.value = selected;
  api("GET", "/admin/channels").then(
    (/** @type {{ channels: Array<{ senderKey: string, partner: string }> }} */ { channels }) => {
      const chosen = senderKey.value;
      senderKey.replaceChildren(
        ...first(),
        ...channels.map((channel) => option(channel.senderKey, `${channel.senderKey} (${channel.partner})`)),
      );
      if (chosen) senderKey.value = chosen;
    },
    context.showProblem,
  );
  return senderKey;
}

/**
 * The Reveal button of a page that shows message text masked. Pressed, the page fetches its items again with
 * reveal=true (which the admin API records in the audit log as event.reveal) and says so; pressed again, masked.
 * @param {() => Promise<void>} reload fetches the page's items again, reading {@link revealed}
 */
export function revealControl(reload) {
  let revealed = false;
  const button = h("button", { className: "secondary", attributes: { type: "button" } });
  const notice = statusLine();
  /** @param {boolean} value */
  const set = (value) => {
    revealed = value;
    button.textContent = t(revealed ? "reveal.mask" : "reveal.show");
    notice.textContent = revealed ? t("reveal.recorded") : "";
  };
  set(false);
  button.addEventListener("click", async () => {
    set(!revealed);
    button.disabled = true;
    await reload();
    button.disabled = false;
  });
  return {
    element: h("div", { className: "actions" }, button, notice),
    /** Whether texts are asked for unmasked. */
    get revealed() {
      return revealed;
    },
    /** Masked again (for a new query: each reveal is asked for, and recorded, on its own). */
    mask() {
      set(false);
    },
  };
}

/** A link to the Events page showing one event. @param {string} senderKey @param {string} serialNumber */
export function eventLink(senderKey, serialNumber) {
  const address = `#/events?${query({ senderKey, serialNumber })}`;
  return h("a", { className: "key", attributes: { href: address } }, serialNumber);
}

/** A link to a conversation's timeline page. @param {string} senderKey @param {string} conversation */
export function timelineLink(senderKey, conversation) {
  const address = `#/timeline?${query({ senderKey, conversation })}`;
  return h("a", { attributes: { href: address } }, conversation);
}

/** A titled part of a page. @param {string} title @param {...(Node | string)} content */
export function panel(title, ...content) {
  return h("section", { className: "panel" }, h("h2", {}, title), ...content);
}

/** Whether an entry (channel, partner) is in use, as a badge. @param {boolean} disabled */
export function enabledBadge(disabled) {
  return disabled ? badge(t("entry.disabled"), "muted") : badge(t("entry.enabled"), "ok");
}

/** Who keeps an entry: the configuration file (read-only here) or the admin API. @param {"file" | "api"} managedBy */
export function managedBadge(managedBy) {
  return badge(t(`managedBy.${managedBy}`), managedBy === "file" ? "muted" : "ok");
}
