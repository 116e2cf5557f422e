// The operator console (SPEC §10) in a real headless Chromium against a whole stack: sign-in and its refusals, the
// session cookie, overview figures that move without a reload, deliveries and their replay, viewers without replay,
// the audit log, English and Korean, sign-out — all under a strict CSP that lets the page load only talkgate's own.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import * as ev from "../emulator/events.ts";
import { hashPassword } from "../src/core/credentials.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { eventually } from "./support/deliveries.ts";
import { SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_PASSWORD = "correct horse battery staple";
const VIEWER_PASSWORD = "viewer password 1234";
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/** Long enough for a slow machine; the console refreshes its figures every 5 s. */
const PATIENCE_MS = 30_000;

let stack: Stack;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** A session of alice's for the test's own checks through the admin API. */
let adminCookie = "";

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: the console tests drive a real Chromium (Debian's chromium package; .ci/run installs it)`,
  );
  stack = await startStack({
    config: {
      operators: [
        { name: "alice", role: "admin", passwordHash: await hashPassword(ADMIN_PASSWORD) },
        { name: "victor", role: "viewer", passwordHash: await hashPassword(VIEWER_PASSWORD) },
      ],
      admin: { signInMaxFailures: 3 },
    },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const signedIn = await fetch(`${stack.talkgate.url}/admin/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "alice", password: ADMIN_PASSWORD }),
  });
  adminCookie = signedIn.headers.get("set-cookie")?.split(";")[0] ?? "";
});

after(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await stack?.close();
});

interface Visit {
  page: Page;
  context: BrowserContext;
  /** Every URL the page requested. */
  requests: string[];
  /** CSP violations and uncaught errors the page reported. */
  problems: string[];
}

/** Opens the console in a fresh browser context (no cookies, no storage) and waits for it to start. */
async function visit(locale = "en-US"): Promise<Visit> {
  const context = await browser.newContext({ locale });
  contexts.push(context);
  const page = await context.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on("request", (request) => requests.push(request.url()));
  page.on("console", (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(`${stack.talkgate.url}/console`);
  await page.locator("#sign-in:not([hidden]), #console:not([hidden])").waitFor();
  return { page, context, requests, problems };
}

/** Fills in and sends the sign-in form; returns once talkgate has answered (and the page had the answer). */
async function signIn(page: Page, name: string, password: string): Promise<void> {
  await page.locator('input[name="name"]').fill(name);
  await page.locator('input[name="password"]').fill(password);
  const answered = page.waitForResponse((response) => response.url().endsWith("/admin/sign-in"));
  await page.locator('#sign-in-form button[type="submit"]').click();
  await (await answered).finished();
}

async function signedIn(name: string, password: string, locale?: string): Promise<Visit> {
  const visited = await visit(locale);
  await signIn(visited.page, name, password);
  await visited.page.locator("#console").waitFor();
  return visited;
}

/** A pattern matching exactly `text`. */
function exactly(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

/** Waits until the element's whole text is `text` (or matches it). */
function hasText(locator: Locator, text: string | RegExp): Promise<void> {
  return locator
    .filter({ hasText: typeof text === "string" ? exactly(text) : text })
    .waitFor({ timeout: PATIENCE_MS });
}

async function sessionCookie(context: BrowserContext) {
  return (await context.cookies()).find((cookie) => cookie.name === "talkgate_session");
}

/** GET of the admin API with alice's session. */
async function adminGet(path: string): Promise<Record<string, unknown>> {
  const answer = await fetch(`${stack.talkgate.url}${path}`, { headers: { cookie: adminCookie } });
  assert.equal(answer.status, 200, path);
  return (await answer.json()) as Record<string, unknown>;
}

/** A text message through the emulator; answers its serial_number once the partner has it. */
async function relayMessage(text: string): Promise<string> {
  const before = stack.sink.accepted.length;
  const result = await stack.emulator.sendWebhook(SENDER_KEY, [
    ev.textEvent(ev.userSource(ev.randomUserId()), text),
  ]);
  assert.equal(result.status, 200, result.body);
  const accepted = await stack.sink.waitFor((all) => all.length > before);
  return (accepted.at(-1) as PartnerPayload).serial_number;
}

test("/console and its assets carry the CSP, nosniff and no-referrer; only the console's own files are served", async () => {
  const files: Array<[string, string]> = [
    ["/console", "text/html; charset=utf-8"],
    ["/console/", "text/html; charset=utf-8"],
    ["/console/assets/app.js", "text/javascript; charset=utf-8"],
    ["/console/assets/console.css", "text/css; charset=utf-8"],
    ["/console/assets/icon.svg", "image/svg+xml"],
  ];
  for (const [path, type] of files) {
    const answer = await fetch(`${stack.talkgate.url}${path}`);
    assert.equal(answer.status, 200, path);
    assert.equal(answer.headers.get("content-type"), type, path);
    assert.equal(answer.headers.get("content-security-policy"), CSP, path);
    assert.equal(answer.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(answer.headers.get("referrer-policy"), "no-referrer", path);
    const etag = answer.headers.get("etag") ?? "";
    const again = await fetch(`${stack.talkgate.url}${path}`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, `${path} again with its ETag`);
  }
  for (const path of [
    "/console/assets/nope.js",
    "/console/assets/..%2Ftsconfig.json",
    "/console/assets/..%2F..%2Fpackage.json",
    "/console/assets/index.html",
  ]) {
    const answer = await fetch(`${stack.talkgate.url}${path}`);
    assert.equal(answer.status, 404, path);
    assert.equal(answer.headers.get("content-security-policy"), CSP, path);
  }
});

test("a wrong password is refused on the form and sets no cookie; too many tries say when to try again", async () => {
  const { page, context } = await visit();
  await signIn(page, "alice", "wrong password");
  await hasText(page.locator("#sign-in-problem"), "Wrong name or password.");
  assert.equal(await sessionCookie(context), undefined);
  assert.ok(await page.locator("#console").isHidden());

  // admin.signInMaxFailures is 3 here; the fourth try of a name waits, whatever the password.
  for (let i = 0; i < 4; i++) await signIn(page, "mallory", `guess ${i}`);
  await hasText(page.locator("#sign-in-problem"), /^Too many failed tries\. Try again in \d+ min/);
});

test("an admin signs in with an HttpOnly, SameSite=Strict cookie; the overview moves with a webhook, without a reload; no CSP refusal, no other origin", async () => {
  const { page, context, requests, problems } = await signedIn("alice", ADMIN_PASSWORD);
  const cookie = await sessionCookie(context);
  assert.ok(cookie, "the session cookie is set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(await page.evaluate("document.cookie"), "", "no script reads the session cookie");

  const row = page.locator(`tr[data-sender-key="${SENDER_KEY}"]`);
  await hasText(row.locator('td[data-column="received"]'), "0");
  await hasText(row.locator('td[data-column="last-webhook"]'), "never");
  await page.evaluate("window.loadedOnce = true");
  await relayMessage("hello console");
  await hasText(row.locator('td[data-column="received"]'), "1");
  await hasText(row.locator('td[data-column="delivered"]'), "1");
  await hasText(row.locator('td[data-column="backlog"]'), "0");
  await hasText(row.locator('td[data-column="partner"]'), "partner delivering");
  await hasText(row.locator('td[data-column="token"]'), "valid static");
  await hasText(row.locator('td[data-column="last-webhook"]'), /ago|now/);
  assert.equal(await page.evaluate("window.loadedOnce"), true, "the page was not reloaded");

  await page.locator('a[data-page="deliveries"]').click();
  await page.locator("tr[data-serial-number]").first().waitFor();
  await page.locator('a[data-page="audit"]').click();
  await page.locator("#page tbody tr").first().waitFor();
  assert.deepEqual(problems, []);
  const origin = new URL(stack.talkgate.url).origin;
  assert.deepEqual(
    requests.filter((url) => new URL(url).origin !== origin),
    [],
  );
  assert.ok(requests.some((url) => url.endsWith("/console/assets/console.css")));
});

test("a Korean browser gets the Korean console; the header switches language, and the choice is kept", async () => {
  const { page } = await visit("ko-KR");
  const html = page.locator("html");
  await hasText(page.locator("#sign-in h1"), "로그인");
  assert.equal(await html.getAttribute("lang"), "ko");
  await page.locator("#language").selectOption("en");
  await hasText(page.locator("#sign-in h1"), "Sign in");
  assert.equal(await html.getAttribute("lang"), "en");
  await page.reload();
  await hasText(page.locator("#sign-in h1"), "Sign in");

  await page.locator("#language").selectOption("ko");
  await signIn(page, "alice", ADMIN_PASSWORD);
  await hasText(page.locator('a[data-page="overview"]'), "개요");
  await hasText(page.locator("#page h1"), "개요");
  await page.locator("#page th", { hasText: "전달 실패" }).waitFor();
  await hasText(page.locator("#operator"), "alice · 관리자");
  await hasText(page.locator("#sign-out"), "로그아웃");
});

test("deliveries: an admin filters, ticks a delivered one and replays it; the admin API shows it delivered again", async () => {
  const serialNumber = await relayMessage("replay me");
  const { page } = await signedIn("alice", ADMIN_PASSWORD);
  await page.locator('a[data-page="deliveries"]').click();
  await page.locator('select[name="senderKey"]').selectOption(SENDER_KEY);
  await page.locator('select[name="state"]').selectOption("delivered");
  const row = page.locator(`tr[data-serial-number="${serialNumber}"]`);
  await hasText(row.locator('td[data-column="state"]'), "delivered");
  await row.locator('input[type="checkbox"]').check();
  await page.getByRole("button", { name: "Replay selected" }).click();
  await hasText(page.getByRole("status"), "Replayed 1 of 1 selected.");

  await eventually(
    "the replayed delivery delivered a second time",
    async () => {
      const { deliveries } = await adminGet(`/admin/deliveries?senderKey=${SENDER_KEY}&state=delivered`);
      const replayed = (deliveries as Array<{ serialNumber: string; attempts: number }>).find(
        (delivery) => delivery.serialNumber === serialNumber,
      );
      return replayed?.attempts === 2;
    },
    PATIENCE_MS,
  );
  const { entries } = await adminGet("/admin/audit?action=deliveries.replay");
  const [replay] = entries as Array<{ actor: string; target: string; outcome: string }>;
  assert.deepEqual(replay && [replay.actor, replay.target, replay.outcome], ["alice", SENDER_KEY, "ok"]);
});

test("a viewer sees deliveries but no replay controls", async () => {
  const { page } = await signedIn("victor", VIEWER_PASSWORD);
  await hasText(page.locator("#operator"), "victor · viewer");
  await page.locator('a[data-page="deliveries"]').click();
  await page.locator("tr[data-serial-number]").first().waitFor();
  assert.equal(await page.getByRole("button", { name: "Replay selected" }).count(), 0);
  assert.equal(await page.locator('#page input[type="checkbox"]').count(), 0);
});

test("the audit log lists sign-ins newest first, and filters by action", async () => {
  const { page } = await signedIn("alice", ADMIN_PASSWORD);
  await page.locator('a[data-page="audit"]').click();
  const first = page.locator("#page tbody tr").first();
  await hasText(first.locator('td[data-column="action"]'), "operator.sign-in");
  await hasText(first.locator('td[data-column="actor"]'), "alice operator");
  await hasText(first.locator('td[data-column="outcome"]'), "ok");

  await page.locator('input[name="action"]').fill("operator.sign-in");
  await page.locator('input[name="actor"]').fill("mallory");
  await page.getByRole("button", { name: "Filter" }).click();
  await hasText(page.locator("#page tbody tr").first().locator('td[data-column="outcome"]'), "-829");
  const actions = await page.locator('#page td[data-column="action"]').allTextContents();
  assert.ok(actions.length > 0 && actions.every((action) => action === "operator.sign-in"), actions.join());
});

test("sign-out returns to the sign-in form, ends the session and stops the refreshes; a session ended elsewhere does too", async () => {
  const { page, context, requests } = await signedIn("alice", ADMIN_PASSWORD);
  await page.reload();
  await page.locator(`tr[data-sender-key="${SENDER_KEY}"]`).waitFor();
  const cookie = await sessionCookie(context);
  assert.ok(cookie, "signed in after a reload");

  await page.locator("#sign-out").click();
  await page.locator("#sign-in").waitFor();
  assert.equal(await page.evaluate('localStorage.getItem("talkgate.session")'), null);
  const me = await fetch(`${stack.talkgate.url}/admin/me`, {
    headers: { cookie: `${cookie.name}=${cookie.value}` },
  });
  assert.equal(me.status, 401);
  const overviews = () => requests.filter((url) => url.endsWith("/admin/overview")).length;
  const signedOutAt = overviews();
  await new Promise((resolve) => setTimeout(resolve, 6_000));
  assert.equal(overviews(), signedOutAt, "no refresh while signed out");

  // Ended by another tab (here: the API), the session's next refresh answers 401 and the form comes back.
  await signIn(page, "alice", ADMIN_PASSWORD);
  await page.locator(`tr[data-sender-key="${SENDER_KEY}"]`).waitFor();
  const session = JSON.parse((await page.evaluate('localStorage.getItem("talkgate.session")')) ?? "{}");
  const ended = await fetch(`${stack.talkgate.url}/admin/sign-out`, {
    method: "POST",
    headers: {
      cookie: `talkgate_session=${(await sessionCookie(context))?.value}`,
      "x-csrf-token": session.csrfToken,
    },
  });
  assert.equal(ended.status, 204);
  await hasText(page.locator("#sign-in-problem"), "Your session has ended. Please sign in again.");
});
