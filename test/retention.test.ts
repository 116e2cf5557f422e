// Retention and erasure (SPEC §12) end to end: talkgate's clock moves by days; what is older than
// retention.mediaDays and retention.eventsDays goes, answers -410 afterwards, and what is still to be delivered
// stays until it is. A user's erasure, by the partner or an operator, deletes what is stored of them.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as ev from "../emulator/events.ts";
import { hashPassword } from "../src/core/credentials.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { adminSession } from "./support/admin-session.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { eventually } from "./support/deliveries.ts";
import { callApi } from "./support/partner-api.ts";
import { API_KEY, SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

const DAY = 86_400_000;
const PASSWORD = "retention-operator-password";
const clock = { offset: 0, now: () => Date.now() + clock.offset };
let stack: Stack;

before(async () => {
  stack = await startStack({
    clock,
    config: {
      // A purge every 100 ms, two rows of a kind per batch; deliveries retried for 100 days (kept meanwhile).
      retention: { eventsDays: 30, mediaDays: 7, intervalMs: 100, batchSize: 2 },
      delivery: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 100, maxAgeMs: 100 * DAY },
      operators: [{ name: "olivia", role: "admin", passwordHash: await hashPassword(PASSWORD) }],
    },
  });
});
after(() => stack.close());

/** A user's message, once the partner has it: its payload. */
async function relayed(event: { message: { id: string } }): Promise<PartnerPayload> {
  assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [event])).status, 200);
  const all = await stack.sink.waitFor(
    (accepted) => accepted.some((p) => (p as PartnerPayload).content.id === event.message.id),
    20_000,
  );
  return (all as PartnerPayload[]).find((p) => p.content.id === event.message.id) as PartnerPayload;
}

/** GET a stored message's text or attachment: the status and, for errors, the code and message. */
async function read(kind: "long" | "attachment", serialNumber: string) {
  const response = await fetch(
    `${stack.talkgate.url}/line/message/${kind}?sender_key=${SENDER_KEY}&serial_number=${serialNumber}`,
    { headers: { authorization: `Bearer ${API_KEY}` } },
  );
  if (!response.headers.get("content-type")?.includes("json")) {
    await response.arrayBuffer();
    return { status: response.status, code: undefined, message: undefined };
  }
  const body = (await response.json()) as { code?: string; message?: string };
  return { status: response.status, code: body.code, message: body.message };
}

/** Attachment files talkgate keeps on disk (SQLite keeps them in mediaDir; PostgreSQL in the database). */
function filesOnDisk(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? entry.name.startsWith(".") || entry.name === "uploads"
          ? []
          : walk(join(dir, entry.name))
        : [entry.name],
    );
  return walk(stack.config.mediaDir);
}

async function purged(kind: string): Promise<number> {
  const text = await (await fetch(`${stack.talkgate.url}/metrics`)).text();
  const match = new RegExp(`^talkgate_retention_purged_total\\{kind="${kind}"\\} (\\d+)`, "m").exec(text);
  return Number(match?.[1] ?? 0);
}

test("attachments go after retention.mediaDays, events after retention.eventsDays (-410 then); an undelivered event stays until delivered", async () => {
  const user = ev.randomUserId();
  const text = await relayed(ev.textEvent(ev.userSource(user), "personal data, kept 30 days"));
  const image = ev.imageEvent(ev.userSource(user));
  stack.emulator.setContent(image.message.id, { body: randomBytes(4096), contentType: "image/jpeg" });
  const picture = await relayed(image);
  assert.equal((await read("attachment", picture.serial_number)).status, 200);
  if (TEST_DATABASE === "sqlite") assert.equal(filesOnDisk().length, 1, "the attachment is on disk");

  // Another customer's message the partner refuses for now: its delivery waits (retrying).
  const waitingUser = ev.randomUserId();
  stack.sink.respondWith((request) => (request.raw.includes(waitingUser) ? { status: 503 } : undefined));
  const waiting = ev.textEvent(ev.userSource(waitingUser), "not delivered yet");
  assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [waiting])).status, 200);
  await eventually("the partner refused it", () =>
    stack.sink.received.some((r) => r.raw.includes(waitingUser)),
  );

  clock.offset = 8 * DAY;
  await eventually("the attachment is deleted after mediaDays", async () => {
    return (await read("attachment", picture.serial_number)).status === 410;
  });
  const gone = await read("attachment", picture.serial_number);
  assert.equal(gone.code, "-410");
  assert.match(gone.message ?? "", /retention\.mediaDays/);
  assert.equal((await read("long", text.serial_number)).status, 200, "the events stay");
  if (TEST_DATABASE === "sqlite") assert.deepEqual(filesOnDisk(), [], "its file is removed");
  assert.ok((await purged("attachments")) >= 1);

  clock.offset = 31 * DAY;
  await eventually("the events are deleted after eventsDays", async () => {
    return (await read("long", text.serial_number)).status === 410;
  });
  const deleted = await read("long", text.serial_number);
  assert.equal(deleted.code, "-410");
  assert.match(deleted.message ?? "", /retention\.eventsDays/);
  assert.equal((await read("attachment", picture.serial_number)).code, "-410");
  assert.ok((await purged("events")) >= 2);
  const waitingPayload = () =>
    stack.sink.received
      .map((r) => r.body as PartnerPayload)
      .find((p) => p?.content?.id === waiting.message.id) as PartnerPayload;
  const waitingSerial = waitingPayload().serial_number;
  assert.equal((await read("long", waitingSerial)).status, 200, "still to be delivered: kept");

  stack.sink.respondWith(undefined);
  await stack.sink.waitFor(
    (accepted) => accepted.some((p) => (p as PartnerPayload).content.id === waiting.message.id),
    10_000,
  );
  await eventually("delivered, it goes at the next purge", async () => {
    return (await read("long", waitingSerial)).code === "-410";
  });
  assert.equal(
    (await read("long", "Uffffffffff-0001-FFFFFFFF")).code,
    "-508",
    "a serial not yet due is unknown",
  );
});

test("a user's erasure: their texts, attachments and files, sent messages and directory entry go (audited); their new messages are relayed as ever", async () => {
  const user = ev.randomUserId();
  const text = await relayed(ev.textEvent(ev.userSource(user), "my phone number is 010-1234-5678"));
  const image = ev.imageEvent(ev.userSource(user));
  stack.emulator.setContent(image.message.id, { body: randomBytes(4096), contentType: "image/jpeg" });
  const picture = await relayed(image);
  const other = await relayed(ev.textEvent(ev.userSource(ev.randomUserId()), "another customer"));
  assert.equal(
    (
      await callApi(stack, "POST", "/line/user", {
        sender_key: SENDER_KEY,
        user_key: user,
        e164: "01012345678",
      })
    ).status,
    200,
  );
  const sent = await callApi(stack, "POST", "/line/message/send", {
    sender_key: SENDER_KEY,
    user_key: user,
    serial_number: `erase-${user.slice(1, 12)}`,
    messages: [{ type: "text", text: "we will call you back" }],
  });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const filesBefore = TEST_DATABASE === "sqlite" ? filesOnDisk().length : 0;

  const erased = await callApi(stack, "POST", "/line/user/erase", { sender_key: SENDER_KEY, user_key: user });
  assert.equal(erased.status, 200, JSON.stringify(erased.body));
  assert.deepEqual(erased.body, { code: "0", events: 2, attachments: 1, sends: 1, directory: true });
  for (const [kind, serial] of [
    ["long", text.serial_number],
    ["attachment", picture.serial_number],
  ] as const) {
    const gone = await read(kind, serial);
    assert.equal(gone.code, "-410", `${kind}: ${JSON.stringify(gone)}`);
    assert.match(gone.message ?? "", /erased/);
  }
  if (TEST_DATABASE === "sqlite") assert.equal(filesOnDisk().length, filesBefore - 1, "its file is removed");
  assert.equal((await read("long", other.serial_number)).status, 200, "another user's messages stay");

  const again = await relayed(ev.textEvent(ev.userSource(user), "hello again"));
  assert.equal((await read("long", again.serial_number)).status, 200, "relaying goes on");
  assert.equal(again.e164, "", "without the erased directory entry");

  const admin = await adminSession(stack.talkgate.url, "olivia", PASSWORD);
  const byOperator = await admin("POST", `/admin/channels/${SENDER_KEY}/users/${user}/erase`);
  assert.equal(byOperator.status, 200, JSON.stringify(byOperator.body));
  assert.deepEqual(byOperator.body, { events: 1, attachments: 0, sends: 0, directory: false });
  assert.equal((await read("long", again.serial_number)).code, "-410");
  assert.equal((await admin("POST", `/admin/channels/1999999999/users/${user}/erase`)).status, 404);

  const audit = await admin("GET", "/admin/audit?action=user.erase");
  const entries = audit.body.entries as Array<{ actorKind: string; target: string; outcome: string }>;
  assert.deepEqual(
    entries.map((e) => [e.actorKind, e.target, e.outcome]),
    [
      ["operator", `1999999999/${user}`, "-804"],
      ["operator", `${SENDER_KEY}/${user}`, "ok"],
      ["partner", `${SENDER_KEY}/${user}`, "ok"],
    ],
  );
});
