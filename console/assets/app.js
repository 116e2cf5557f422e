// @ts-check
// The console's start: the sign-in form or, signed in, the header and the page the address names (#/overview,
// #/deliveries, #/events, #/timeline?senderKey=…&conversation=…, #/channels, #/partners, #/tokens, #/audit). Any 401
// of the admin API returns to the sign-in form.
import { ApiError, api, onUnauthorized } from "./api.js";
import { showAudit } from "./audit.js";
import { showChannels } from "./channels.js";
import { showDeliveries } from "./deliveries.js";
import { showEvents } from "./events.js";
import { formatDuration } from "./format.js";
import { isLanguage, labelPage, language, setLanguage, t } from "./i18n.js";
import { showOverview } from "./overview.js";
import { showPartners } from "./partners.js";
import { forgetSession, storedSession, storeSession } from "./session.js";
import { showTimeline } from "./timeline.js";
import { showTokens } from "./tokens.js";
import { problemText } from "./ui.js";

/** @type {Record<string, import("./ui.js").Page>} */
const PAGES = {
  overview: showOverview,
  deliveries: showDeliveries,
  events: showEvents,
  timeline: showTimeline,
  channels: showChannels,
  partners: showPartners,
  tokens: showTokens,
  audit: showAudit,
};

/**
 * The element of index.html with this id, of this type.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T }} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`index.html has no #${id}`);
  return element;
}

const view = {
  nav: byId("nav", HTMLElement),
  language: byId("language", HTMLSelectElement),
  operator: byId("operator", HTMLElement),
  signOut: byId("sign-out", HTMLButtonElement),
  signIn: byId("sign-in", HTMLElement),
  signInForm: byId("sign-in-form", HTMLFormElement),
  signInProblem: byId("sign-in-problem", HTMLElement),
  console: byId("console", HTMLElement),
  problem: byId("problem", HTMLElement),
  page: byId("page", HTMLElement),
};

/** @type {import("./session.js").Operator | null} */
let operator = null;
/** Stops the page shown (its timers). */
let stopPage = () => {};

/** Shows either the sign-in form or the console with its header controls. @param {boolean} signedIn */
function showSignedIn(signedIn) {
  for (const element of [view.console, view.nav, view.operator, view.signOut]) element.hidden = !signedIn;
  view.signIn.hidden = signedIn;
}

/** @param {string} [problem] */
function showSignIn(problem) {
  stopPage();
  stopPage = () => {};
  operator = null;
  showSignedIn(false);
  view.signInProblem.textContent = problem ?? "";
  view.signInProblem.hidden = problem === undefined;
}

/** @param {import("./session.js").Operator} signedIn */
function showConsole(signedIn) {
  operator = signedIn;
  showSignedIn(true);
  showPage();
}

/** Shows the page the address names (the overview if it names none), in place of the one shown. */
function showPage() {
  if (operator === null) return;
  // "#/timeline?senderKey=…" read as a path and its query.
  const address = new URL(location.hash.replace(/^#/, "") || "/", location.origin);
  const name = address.pathname.slice(1);
  const page = Object.hasOwn(PAGES, name) ? name : "overview";
  for (const link of view.nav.querySelectorAll("a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view.operator.textContent = `${operator.name} · ${t(`role.${operator.role}`)}`;
  stopPage();
  hideProblem();
  view.page.replaceChildren();
  const show = /** @type {import("./ui.js").Page} */ (PAGES[page]);
  const context = { operator, params: address.searchParams, showProblem, hideProblem };
  stopPage = show(view.page, context) ?? (() => {});
}

/** @param {unknown} error */
function showProblem(error) {
  view.problem.textContent = problemText(error);
  view.problem.hidden = false;
}

function hideProblem() {
  view.problem.hidden = true;
}

/** @param {SubmitEvent} event */
async function signIn(event) {
  event.preventDefault();
  const fields = new FormData(view.signInForm);
  try {
    /** @type {import("./session.js").Session} */
    const session = await api("POST", "/admin/sign-in", {
      name: String(fields.get("name")),
      password: String(fields.get("password")),
    });
    storeSession(session);
    view.signInForm.reset();
    showConsole(session.operator);
  } catch (error) {
    showSignIn(signInProblem(error));
  }
}

/** @param {unknown} error */
function signInProblem(error) {
  if (!(error instanceof ApiError)) return problemText(error);
  if (error.status === 401) return t("signIn.wrong");
  if (error.status === 429)
    return t("signIn.throttled", { wait: formatDuration((error.retryAfterS ?? 0) * 1000) });
  return problemText(error);
}

async function signOut() {
  try {
    await api("POST", "/admin/sign-out");
  } catch {
    // Signed out here whatever talkgate answered: the session is forgotten below either way.
  }
  forgetSession();
  showSignIn();
}

/** Resumes a stored session if talkgate still takes it; else asks to sign in. */
async function start() {
  view.language.value = language();
  labelPage();
  if (storedSession() === null) return showSignIn();
  try {
    /** @type {{ name: string, role: string }} */
    const me = await api("GET", "/admin/me");
    showConsole({ name: me.name, role: me.role === "admin" ? "admin" : "viewer" });
  } catch (error) {
    // A 401 has already brought the sign-in form.
    if (!(error instanceof ApiError && error.status === 401)) showSignIn(problemText(error));
  }
}

onUnauthorized(() => {
  const ended = operator !== null;
  forgetSession();
  showSignIn(ended ? t("signIn.ended") : undefined);
});
view.signInForm.addEventListener("submit", (event) => void signIn(event));
view.signOut.addEventListener("click", () => void signOut());
view.language.addEventListener("change", () => {
  if (isLanguage(view.language.value)) setLanguage(view.language.value);
  showPage();
});
window.addEventListener("hashchange", showPage);
void start();
