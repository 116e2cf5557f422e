// The operator console (SPEC §10) in a real headless Chromium against a whole stack: sign-in and its refusals, the
// session cookie, overview figures that move without a reload, deliveries and their replay, partners, channels, keys
// and tokens made and revoked through it (secrets never shown back), a channel's LINE webhook endpoint, events with
// the audited reveal and a user's erasure, a conversation's timeline, the audit log's filters and export, viewers
// without change controls, English and Korean, sign-out — all under a strict CSP that lets the page load only
// talkgate's own.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import * as ev from "../emulator/events.ts";
import { hashPassword } from "../src/core/credentials.ts";
import { FORWARDABLE_EVENT_TYPES, type PartnerPayload } from "../src/core/partner-payload.ts";
import { eventually } from "./support/deliveries.ts";
import { callApi } from "./support/partner-api.ts";
import { SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_PASSWORD = "correct horse battery staple";
const VIEWER_PASSWORD = "viewer password 1234";
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/** Long enough for a slow machine; the console refreshes its figures every 5 s. */
const PATIENCE_MS = 30_000;
/** A channel the console makes (the emulator knows it as LINE would), of a partner the console makes. */
const CONSOLE_CHANNEL = "1700000042";
const CONSOLE_CHANNEL_SECRET = "console-channel-secret-4f1d9a";
const CONSOLE_ACCESS_TOKEN = "console-channel-access-token-7c2e";
const ACME_SIGNING_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

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
    env: { TALKGATE_SECRET_KEY: randomBytes(32).toString("base64") },
    emulatorChannels: [
      {
        channelId: CONSOLE_CHANNEL,
        channelSecret: CONSOLE_CHANNEL_SECRET,
        accessToken: CONSOLE_ACCESS_TOKEN,
      },
    ],
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
  /** The bodies of the admin API's answers to the page. */
  answers: Array<Promise<string>>;
}

/** Opens the console in a fresh browser context (no cookies, no storage) and waits for it to start. */
async function visit(locale = "en-US"): Promise<Visit> {
  const context = await browser.newContext({ locale });
  contexts.push(context);
  const page = await context.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  const answers: Array<Promise<string>> = [];
  page.on("request", (request) => requests.push(request.url()));
  page.on("response", (response) => {
    if (new URL(response.url()).pathname.startsWith("/admin/")) answers.push(response.text().catch(() => ""));
  });
  page.on("console", (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(`${stack.talkgate.url}/console`);
  await page.locator("#sign-in:not([hidden]), #console:not([hidden])").waitFor();
  return { page, context, requests, problems, answers };
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

/** A text message of `userId` through the emulator; answers its serial_number once the partner has it. */
async function relayMessage(text: string, userId = ev.randomUserId()): Promise<string> {
  const before = stack.sink.accepted.length;
  const result = await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(userId), text)]);
  assert.equal(result.status, 200, result.body);
  const accepted = await stack.sink.waitFor((all) => all.length > before);
  return (accepted.at(-1) as PartnerPayload).serial_number;
}

/** Opens the row's details; answers the row beneath it that holds them. */
async function details(row: Locator): Promise<Locator> {
  await row.getByRole("button", { name: "Details" }).click();
  return row.locator("xpath=following-sibling::tr[1]");
}

/** Presses a button that asks first (in `scope`), and confirms. */
async function confirm(scope: Locator, label: string): Promise<void> {
  await scope.getByRole("button", { name: label, exact: true }).click();
  await scope.getByRole("group", { name: label }).getByRole("button", { name: "Confirm" }).click();
}

/** Asserts that `secret` is nowhere in the page (its markup, any field) nor in any admin API answer it had. */
async function assertForgotten({ page, answers }: Visit, secret: string): Promise<void> {
  assert.equal((await page.content()).includes(secret), false, "a secret in the page's markup");
  const values = await page.evaluate<string[]>(
    '[...document.querySelectorAll("input, textarea")].map((field) => field.value)',
  );
  assert.equal(
    values.some((value) => value.includes(secret)),
    false,
    "a secret in a field",
  );
  for (const answer of await Promise.all(answers))
    assert.equal(answer.includes(secret), false, "a secret in an admin API answer");
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

test("an admin creates a partner and a channel through the console; the admin API lists them; no secret typed stays in the page or comes back", async () => {
  const visited = await signedIn("alice", ADMIN_PASSWORD);
  const { page } = visited;
  await page.locator('a[data-page="partners"]').click();
  await page.getByText("New partner").click();
  const partnerForm = page.locator("details.panel form");
  await partnerForm.locator('input[name="id"]').fill("acme");
  await partnerForm.locator('input[name="receiveUrl"]').fill(`${stack.sink.url}/acme`);
  await partnerForm.locator('input[name="signingSecret"]').fill(ACME_SIGNING_SECRET);
  await partnerForm.getByLabel("private network allowed").check();
  await partnerForm.getByRole("button", { name: "Create partner" }).click();
  await hasText(page.getByRole("status"), "Partner acme created.");
  const partnerRow = page.locator('tr[data-partner="acme"]');
  await hasText(partnerRow.locator('td[data-column="managed-by"]'), "admin API");
  const secretId = await partnerRow
    .locator("xpath=following-sibling::tr[1]")
    .locator("li[data-secret-id]")
    .getAttribute("data-secret-id");
  assert.match(
    secretId ?? "",
    /^[0-9a-f]{8}$/,
    "the new partner's row opened to its signing secret (its id only)",
  );

  await page.locator('a[data-page="channels"]').click();
  await page.getByText("New channel").click();
  const channelForm = page.locator("details.panel form");
  await channelForm.locator('input[name="senderKey"]').fill(CONSOLE_CHANNEL);
  await channelForm.locator('select[name="partner"]').selectOption("acme");
  await channelForm.locator('input[name="channelSecret"]').fill(CONSOLE_CHANNEL_SECRET);
  assert.ok(
    await channelForm.locator('input[name="token"]').isHidden(),
    "no token field before a kind is chosen",
  );
  await channelForm.locator('select[name="tokenType"]').selectOption("static");
  await channelForm.locator('input[name="token"]').fill(CONSOLE_ACCESS_TOKEN);
  const offered = await Promise.all(
    (await channelForm.locator('input[name="forwardEventTypes"]').all()).map((box) =>
      box.getAttribute("value"),
    ),
  );
  assert.deepEqual(
    offered,
    [...FORWARDABLE_EVENT_TYPES],
    "the console offers the event types talkgate forwards",
  );
  await channelForm.getByLabel("follow", { exact: true }).check();
  await channelForm.getByRole("button", { name: "Create channel" }).click();
  await hasText(page.getByRole("status"), `Channel ${CONSOLE_CHANNEL} created.`);
  const channelRow = page.locator(`tr[data-sender-key="${CONSOLE_CHANNEL}"]`);
  await hasText(channelRow.locator('td[data-column="token"]'), "valid static");
  await hasText(channelRow.locator('td[data-column="events"]'), "message, postback, follow");

  const { channels } = await adminGet("/admin/channels");
  const channel = (channels as Array<Record<string, unknown>>).find((c) => c.senderKey === CONSOLE_CHANNEL);
  assert.deepEqual(
    channel && [channel.partner, channel.managedBy, channel.hasChannelAccessToken, channel.forwardEventTypes],
    ["acme", "api", true, ["message", "postback", "follow"]],
  );
  const { partners } = await adminGet("/admin/partners");
  const acme = (partners as Array<Record<string, unknown>>).find((p) => p.id === "acme");
  assert.deepEqual(acme && [acme.receiveUrl, acme.allowPrivateNetwork, acme.managedBy], [
    `${stack.sink.url}/acme`,
    true,
    "api",
  ]);
  for (const secret of [ACME_SIGNING_SECRET, CONSOLE_CHANNEL_SECRET, CONSOLE_ACCESS_TOKEN])
    await assertForgotten(visited, secret);
  assert.deepEqual(visited.problems, []);
});

test("a partner API key is shown once with a copy button, works against the partner API, is gone once hidden, and is refused once revoked", async () => {
  const { page, context } = await signedIn("alice", ADMIN_PASSWORD);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.locator('a[data-page="partners"]').click();
  const detail = await details(page.locator('tr[data-partner="acme"]'));
  await detail.locator('input[name="name"]').fill("console test");
  await detail.getByRole("button", { name: "Create API key" }).click();
  const shown = page.getByRole("region", { name: "New API key “console test” of acme" });
  const key = (await shown.locator("code").textContent()) ?? "";
  assert.match(key, /^tgk_/);
  await shown.getByRole("button", { name: "Copy" }).click();
  await hasText(shown.getByRole("button", { name: "Copied" }), "Copied");
  assert.equal(await page.evaluate("navigator.clipboard.readText()"), key);

  const deliveries = `/line/deliveries?sender_key=${CONSOLE_CHANNEL}`;
  assert.equal((await callApi(stack, "GET", deliveries, undefined, key)).status, 200);
  await shown.getByRole("button", { name: "Hide" }).click();
  await shown.waitFor({ state: "detached" });
  assert.equal((await page.content()).includes(key), false, "the key is gone from the page");

  const keyRow = detail.locator("tr[data-key-id]", { hasText: "console test" });
  await confirm(keyRow, "Revoke");
  await hasText(page.getByRole("status"), "API key “console test” revoked.");
  await keyRow.waitFor({ state: "detached" });
  assert.equal((await callApi(stack, "GET", deliveries, undefined, key)).status, 401);
});

test("a channel's LINE webhook endpoint is set and tested through the console, LINE's answer shown; a rotated secret is not shown back; a channel of the configuration file has no edit controls", async () => {
  const visited = await signedIn("alice", ADMIN_PASSWORD);
  const { page } = visited;
  await page.locator('a[data-page="channels"]').click();
  const detail = await details(page.locator(`tr[data-sender-key="${CONSOLE_CHANNEL}"]`));
  const endpoint = detail.locator('[data-field="endpoint"]');
  await hasText(endpoint, "none set inactive");
  const relay = `https://relay.example.com/line/webhook/${CONSOLE_CHANNEL}`;
  await detail.locator('input[name="endpoint"][required]').fill(relay);
  await detail.getByRole("button", { name: "Set at LINE" }).click();
  await hasText(endpoint, `${relay} active`);

  const result = detail.locator('[data-field="test-result"]');
  const talkgate = `${stack.talkgate.url}/line/webhook/${CONSOLE_CHANNEL}`;
  await detail.locator('input[name="endpoint"]:not([required])').fill(talkgate);
  await detail.getByRole("button", { name: "Send a test webhook" }).click();
  await hasText(result, /^succeeded HTTP 200 OK · /);

  // A new channel secret takes effect at once: LINE, still signing with the old one, is refused now.
  const rotated = "console-channel-secret-rotated";
  await detail.locator('input[name="channelSecret"]').fill(rotated);
  await detail
    .locator("form", { has: page.locator('input[name="channelSecret"]') })
    .getByRole("button")
    .click();
  await hasText(page.getByRole("status"), `The channel secret of ${CONSOLE_CHANNEL} was replaced.`);
  const reopened = page
    .locator(`tr[data-sender-key="${CONSOLE_CHANNEL}"]`)
    .locator("xpath=following-sibling::tr[1]");
  await reopened.locator('input[name="endpoint"]:not([required])').fill(talkgate);
  await reopened.getByRole("button", { name: "Send a test webhook" }).click();
  await hasText(reopened.locator('[data-field="test-result"]'), /^failed HTTP 401 /);
  await assertForgotten(visited, rotated);

  const file = await details(page.locator(`tr[data-sender-key="${SENDER_KEY}"]`));
  await hasText(file.locator("p.muted").first(), "From the configuration file: read-only here.");
  await hasText(file.locator('[data-field="endpoint"]'), /active$/);
  for (const control of ["Save", "Replace", "Delete channel"])
    assert.equal(await file.getByRole("button", { name: control, exact: true }).count(), 0, control);
  assert.equal(await file.locator('input[type="password"], select').count(), 0);
});

test("events: message text masked, revealed on request (audited as event.reveal); erasing the user shows what went and leaves the event without its text", async () => {
  const user = ev.randomUserId();
  const serialNumber = await relayMessage("please call me back", user);
  const { page } = await signedIn("alice", ADMIN_PASSWORD);
  await page.locator('a[data-page="deliveries"]').click();
  await page.locator('select[name="senderKey"]').selectOption(SENDER_KEY);
  await page.getByRole("link", { name: serialNumber }).click();
  await hasText(page.locator("#page h1"), "Events");
  assert.equal(await page.locator('input[name="serialNumber"]').inputValue(), serialNumber);
  const row = page.locator(`tr[data-serial-number="${serialNumber}"]`);
  await hasText(row.locator('td[data-column="state"]'), "delivered");
  assert.equal(await page.locator("#page tbody tr[data-serial-number]").count(), 1);
  const detail = await details(row);
  const stored = detail.locator("pre");
  await hasText(stored, /"text": "\[masked: 19 characters\]"/);

  await page.getByRole("button", { name: "Reveal message text" }).click();
  await hasText(
    page.getByRole("status"),
    /^Message text is shown\. This reveal is recorded in the audit log/,
  );
  await hasText(stored, /"text": "please call me back"/);
  const { entries } = await adminGet("/admin/audit?action=event.reveal");
  const [reveal] = entries as Array<{ actor: string; target: string; outcome: string }>;
  assert.deepEqual(reveal && [reveal.actor, reveal.target, reveal.outcome], [
    "alice",
    `${SENDER_KEY}/${serialNumber}`,
    "ok",
  ]);

  await detail.getByRole("button", { name: "Erase this user's data" }).click();
  const asking = detail.getByRole("group", { name: "Erase this user's data" });
  await hasText(
    asking.locator("p"),
    new RegExp(`^Erase what talkgate holds of user ${user} in channel ${SENDER_KEY}\\?`),
  );
  await asking.getByRole("button", { name: "Confirm" }).click();
  await hasText(
    page.getByRole("status"),
    `Erased for ${user}: events 1, attachments 0, sent messages 0, directory entry none.`,
  );
  const { events } = await adminGet(
    `/admin/events?senderKey=${SENDER_KEY}&serialNumber=${serialNumber}&reveal=true`,
  );
  const [erased] = events as Array<{ event: { message: Record<string, unknown> } }>;
  assert.ok(erased, "the event stays");
  assert.equal(erased.event.message.text, undefined, "without its text");
});

test("a conversation's timeline shows the customer's event and the partner's send, newest first, their texts revealed on request", async () => {
  const user = ev.randomUserId();
  const serialNumber = await relayMessage("where is my parcel?", user);
  const sent = await callApi(stack, "POST", "/line/message/send", {
    sender_key: SENDER_KEY,
    user_key: user,
    serial_number: `console-${user.slice(1, 12)}`,
    messages: [{ type: "text", text: "it ships today" }],
  });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));

  const { page } = await signedIn("alice", ADMIN_PASSWORD);
  await page.locator('a[data-page="events"]').click();
  await page.locator('input[name="userId"]').fill(user);
  await page.getByRole("button", { name: "Search" }).click();
  await page
    .locator(`tr[data-serial-number="${serialNumber}"]`)
    .getByRole("link", { name: `user:${user}` })
    .click();
  await hasText(page.locator("#page h1"), "Conversation timeline");
  const items = page.locator("ol.timeline > li");
  await hasText(items.last().locator(".says"), "[masked: 19 characters]");
  assert.deepEqual(await Promise.all((await items.all()).map((item) => item.getAttribute("data-kind"))), [
    "send",
    "event",
  ]);
  await hasText(items.first().locator(".says"), "[masked: 14 characters]");
  await hasText(items.first().locator("p.muted").first(), /^sent · (reply|push) · attempts: 1$/);
  await hasText(items.last().locator("p.muted").first(), "delivered · attempts: 1 · last answer: 200");

  await page.getByRole("button", { name: "Reveal message text" }).click();
  await hasText(items.first().locator(".says"), "it ships today");
  await hasText(items.last().locator(".says"), "where is my parcel?");
  const { entries } = await adminGet("/admin/audit?action=event.reveal");
  const [reveal] = entries as Array<{ target: string }>;
  assert.equal(reveal?.target, `${SENDER_KEY}/user:${user}`);
});

test("the audit log filters by target, outcome and time, and exports what it shows as NDJSON", async () => {
  const { page } = await signedIn("alice", ADMIN_PASSWORD);
  await page.locator('a[data-page="audit"]').click();
  await page.locator('input[name="target"]').fill(CONSOLE_CHANNEL);
  await page.locator('input[name="outcome"]').fill("ok");
  await page.locator('input[name="from"]').fill("2000-01-01T00:00:00");
  await page.getByRole("button", { name: "Filter" }).click();
  const rows = page.locator("#page tbody tr");
  await hasText(rows.first().locator('td[data-column="target"]'), CONSOLE_CHANNEL);
  const actions = await page.locator('#page td[data-column="action"]').allTextContents();
  assert.ok(actions.includes("channel.create") && actions.includes("channel.update"), actions.join());

  const exported = page.getByRole("link", { name: "Export (NDJSON)" });
  const href = (await exported.getAttribute("href")) ?? "";
  assert.match(href, /^\/admin\/audit\/export\?/);
  const answer = await fetch(`${stack.talkgate.url}${href}`, { headers: { cookie: adminCookie } });
  assert.equal(answer.headers.get("content-type"), "application/x-ndjson");
  const lines = (await answer.text())
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { action: string });
  assert.deepEqual(
    lines.map((entry) => entry.action),
    actions,
    "the export holds what the page shows",
  );

  await page.locator('input[name="from"]').fill("2100-01-01T00:00:00");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByText("Nothing to show.").waitFor();
});

test("operator tokens: an admin makes one (shown once; it works), then revokes it (refused)", async () => {
  const { page } = await signedIn("alice", ADMIN_PASSWORD);
  await page.locator('a[data-page="tokens"]').click();
  await page.locator('#page input[name="name"]').fill("console script");
  await page.getByRole("button", { name: "Create token" }).click();
  const shown = page.getByRole("region", { name: "New token “console script” of alice" });
  const token = (await shown.locator("code").textContent()) ?? "";
  assert.match(token, /^tgo_/);
  const me = () => fetch(`${stack.talkgate.url}/admin/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal((await me()).status, 200);
  await shown.getByRole("button", { name: "Hide" }).click();
  assert.equal((await page.content()).includes(token), false, "the token is gone from the page");

  const row = page.locator("tr[data-token-id]", { hasText: "console script" });
  await confirm(row, "Revoke");
  await hasText(row.locator('td[data-column="state"]'), /^revoked /);
  assert.equal((await me()).status, 401);
});

test("a viewer sees channels, partners, tokens and events, but none of their change controls", async () => {
  const { page } = await signedIn("victor", VIEWER_PASSWORD);
  const pages = [
    ["channels", `tr[data-sender-key="${CONSOLE_CHANNEL}"]`],
    ["partners", 'tr[data-partner="acme"]'],
  ] as const;
  for (const [name, rowSelector] of pages) {
    await page.locator(`a[data-page="${name}"]`).click();
    const detail = await details(page.locator(rowSelector));
    await detail.locator("section.panel").first().waitFor();
    if (name === "channels")
      await hasText(detail.locator('[data-field="endpoint"]'), /^https:\/\/relay\.example\.com/);
    assert.equal(await page.locator("#page form, #page details, #page .confirm-step").count(), 0, name);
    const buttons = await page.locator("#page button:visible").allTextContents();
    assert.ok(
      buttons.length > 0 && buttons.every((text) => text === "Details" || text === "Close"),
      buttons.join(),
    );
  }

  await page.locator('a[data-page="tokens"]').click();
  await page.locator("tr[data-token-id]").first().waitFor();
  assert.equal(await page.locator("#page form, #page button:visible").count(), 0);

  await page.locator('a[data-page="events"]').click();
  const detail = await details(page.locator("tr[data-serial-number]").first());
  await detail.locator("pre").waitFor();
  assert.equal(await page.getByRole("button", { name: "Erase this user's data" }).count(), 0);
  assert.equal(
    await page.getByRole("button", { name: "Reveal message text" }).count(),
    1,
    "viewers may reveal",
  );
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
