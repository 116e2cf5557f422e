// @ts-check
// The pieces every page is built from: elements (text only ever set as text), badges, tables filled page by page,
// and what a page is given.
import { ApiError } from "./api.js";
import { t } from "./i18n.js";

/**
 * What a page is given: who is signed in, and the page's problem area.
 * @typedef {object} PageContext
 * @property {import("./session.js").Operator} operator
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
 * @param {(item: T) => HTMLTableRowElement} options.row
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
      body.append(...page.items.map(row));
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
