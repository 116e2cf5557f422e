// Deliveries you can operate (issue 5): list by channel, state, conversation and time, page, and replay (the CLI: test/cli.test.ts).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { API_KEY, OTHER_API_KEY, SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

interface Listed {
  code: string;
  deliveries: Array<{
    serial_number: string;
    state: string;
    attempts: number;
    last_status: number | null;
    conversation: string;
  }>;
  next_cursor: string | null;
}

describe("deliveries list and replay", () => {
  let stack: Stack;
  const failing = ev.randomUserId();
  const fine = ev.randomUserId();
  let refuse = true;

  before(async () => {
    stack = await startStack({
      config: { delivery: { maxAgeMs: 300, initialBackoffMs: 20, maxBackoffMs: 50, pollMs: 50 } },
    });
    stack.sink.respondWith((request) =>
      refuse && (request.body as PartnerPayload).user_key === failing ? { status: 503 } : undefined,
    );
    const t = Date.now();
    await stack.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(failing), "lost 1", { timestamp: t }),
      ev.textEvent(ev.userSource(failing), "lost 2", { timestamp: t + 1 }),
      ev.textEvent(ev.userSource(fine), "fine", { timestamp: t + 2 }),
    ]);
    for (let i = 0; i < 200; i++) {
      const dead = await list(`state=dead`);
      if (dead.deliveries.length === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  });
  after(() => stack.close());

  async function list(query: string, key = API_KEY): Promise<Listed> {
    const response = await fetch(`${stack.talkgate.url}/line/deliveries?${query}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    return (await response.json()) as Listed;
  }

  test("lists by state and conversation, in order, with attempts and the last status", async () => {
    const dead = await list("state=dead");
    assert.equal(dead.code, "0");
    assert.equal(dead.deliveries.length, 2);
    assert.ok(
      dead.deliveries.every(
        (d) => d.conversation === `user:${failing}` && d.last_status === 503 && d.attempts >= 1,
      ),
    );
    const delivered = await list(`state=delivered&conversation=user:${fine}`);
    assert.equal(delivered.deliveries.length, 1);
    assert.equal((await list(`sender_key=${SENDER_KEY}`)).deliveries.length, 3);
  });

  test("pages with limit and cursor, and filters by time", async () => {
    const first = await list("limit=2");
    assert.equal(first.deliveries.length, 2);
    assert.ok(first.next_cursor);
    const second = await list(`limit=2&cursor=${first.next_cursor}`);
    assert.equal(second.deliveries.length, 1);
    assert.equal(second.next_cursor, null);
    assert.equal((await list(`from=${Date.now() + 60_000}`)).deliveries.length, 0);
    assert.equal((await list(`to=${Date.now() + 60_000}`)).deliveries.length, 3);
  });

  test("a key sees only its own channels", async () => {
    assert.equal((await list("", OTHER_API_KEY)).deliveries.length, 0);
    const foreign = await list(`sender_key=${SENDER_KEY}`, OTHER_API_KEY);
    assert.equal(foreign.code, "-406");
    const bad = await list("state=lost");
    assert.equal(bad.code, "-405");
  });

  test("replay by serial_numbers delivers dead events again with the same serial_number, in order", async () => {
    refuse = false;
    const dead = await list("state=dead");
    const serials = dead.deliveries.map((d) => d.serial_number);
    const response = await fetch(`${stack.talkgate.url}/line/deliveries/replay`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ sender_key: SENDER_KEY, serial_numbers: [...serials, "Unknown-0001-00000000"] }),
    });
    assert.deepEqual(await response.json(), {
      code: "0",
      matched: 2,
      replayed: 2,
      serial_numbers: serials,
      not_found: ["Unknown-0001-00000000"],
    });
    const accepted = (await stack.sink.waitFor(
      (a) => a.filter((p) => (p as PartnerPayload).user_key === failing).length === 2,
    )) as PartnerPayload[];
    assert.deepEqual(
      accepted.filter((p) => p.user_key === failing).map((p) => [p.serial_number, p.content.text]),
      [
        [serials[0], "lost 1"],
        [serials[1], "lost 2"],
      ],
    );
    assert.equal((await list("state=dead")).deliveries.length, 0);
  });

  test("replay needs serial_numbers or a time range", async () => {
    const response = await fetch(`${stack.talkgate.url}/line/deliveries/replay`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ sender_key: SENDER_KEY }),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { code: string }).code, "-405");
  });
});
