// Key scoping (SPEC §6): a partner API key reaches only its own partner's channels. Every route that takes
// a sender_key, called with another partner's valid key for a channel that exists (and data that exists),
// answers 404 -406 exactly as for a channel that does not exist, and changes nothing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { eventually, listDeliveries } from "./support/deliveries.ts";
import { serial } from "./support/partner-api.ts";
import { readCount, readRows } from "./support/read-rows.ts";
import {
  API_KEY,
  OTHER_API_KEY,
  OTHER_SENDER_KEY,
  SENDER_KEY,
  type Stack,
  startStack,
} from "./support/stack.ts";

/** No channel has it; as long as SENDER_KEY, so that only the key differs between the answers compared. */
const NO_SUCH_SENDER_KEY = "1999999999";

/** What a route call is made of; `senderKey` goes into the query or the body. */
interface Call {
  method: "GET" | "HEAD" | "POST";
  path: string;
  query?: Record<string, string>;
  body?: Record<string, unknown>;
}

interface Answer {
  status: number;
  contentType: string;
  contentLength: string | null;
  text: string;
}

describe("another partner's key reaches nothing of a channel", () => {
  let stack: Stack;
  const user = ev.randomUserId();
  /** Stored messages of SENDER_KEY, all relayed: a long text, an image with its content stored, a text. */
  const serials = { long: "", image: "", text: "" };

  before(async () => {
    // The owner may repoint its channel's webhook URL, so that only the key's scope can refuse it here.
    stack = await startStack({ partner: { allowWebhookEndpointChange: true } });
    stack.emulator.setProfile(user, { displayName: "홍길동" });
    const source = ev.userSource(user);
    const long = ev.textEvent(source, "long text ".repeat(150));
    const image = ev.imageEvent(source);
    const text = ev.textEvent(source, "a text with a markAsReadToken");
    stack.emulator.setContent(image.message.id, { body: "image bytes", contentType: "image/jpeg" });
    const events = [long, image, text];
    assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, events)).status, 200);
    const payloads = (await stack.sink.waitFor((all) => all.length >= events.length)) as PartnerPayload[];
    const serialOf = (id: string) => payloads.find((p) => p.content.id === id)?.serial_number ?? "";
    serials.long = serialOf(long.message.id);
    serials.image = serialOf(image.message.id);
    serials.text = serialOf(text.message.id);
    // The partner has them; talkgate records that a moment after the partner's answer.
    await eventually("the deliveries recorded as delivered", async () => (await undelivered()) === 0);
    // The partner's own key sees the data: long text and attachment are there (the image was relayed once
    // its content was stored, so nothing is still under way in the background).
    const own = await call(
      { method: "GET", path: "/line/message/attachment", query: { serial_number: serials.image } },
      SENDER_KEY,
      API_KEY,
    );
    assert.equal(own.status, 200, own.text);
    assert.equal(own.text, "image bytes");
  });
  after(() => stack.close());

  async function call(route: Call, senderKey: string, key: string): Promise<Answer> {
    const url = new URL(route.path, stack.talkgate.url);
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    let body: string | undefined;
    if (route.method === "POST") {
      headers["content-type"] = "application/json";
      body = JSON.stringify({ sender_key: senderKey, ...route.body });
    } else {
      url.search = new URLSearchParams({ sender_key: senderKey, ...route.query }).toString();
    }
    const response = await fetch(url, { method: route.method, headers, ...(body ? { body } : {}) });
    return {
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      contentLength: response.headers.get("content-length"),
      text: await response.text(),
    };
  }

  /** Deliveries not (yet) recorded as delivered, of every channel (each key sees its own partner's). */
  async function undelivered(): Promise<number> {
    const all = [
      ...(await listDeliveries(stack.talkgate)),
      ...(await listDeliveries(stack.talkgate, {}, OTHER_API_KEY)),
    ];
    return all.filter((delivery) => delivery.state !== "delivered").length;
  }

  /**
   * Everything a call could change: talkgate's rows (sends, deliveries, the user directory, what sending needs of
   * each conversation: its mode and reply token with the send that claimed it), and what LINE and the partner were
   * asked. Rows, because no API shows sends or reply tokens.
   */
  async function snapshot() {
    const { database } = stack.config;
    const table = (sql: string) => readRows<Record<string, unknown>>(database, sql);
    return {
      sends: await table("SELECT * FROM sends ORDER BY sender_key, serial_number"),
      deliveries: await table(
        TEST_DATABASE === "postgres"
          ? `SELECT id, sender_key, conversation, partner_id, state, attempts, next_attempt_at, updated_at, last_status,
               last_error FROM events WHERE state IS NOT NULL ORDER BY id`
          : "SELECT * FROM deliveries ORDER BY event_id",
      ),
      directory: await table("SELECT * FROM user_directory ORDER BY sender_key, user_id"),
      conversations: await table(
        `SELECT sender_key, conversation, last_event_at, last_mode, reply_token, reply_token_at, reply_token_used_by
         FROM conversations ORDER BY sender_key, conversation`,
      ),
      events: await readCount(database, "SELECT count(*) AS n FROM events"),
      lineCalls: stack.emulator.calls.length,
      lineSent: stack.emulator.sent.length,
      partnerRequests: stack.sink.received.length,
    };
  }

  // Each route with a request that its owner's key makes work (checked last: the data exists and the
  // request is good, so a 404 can only be the key's scope).
  const routes: Array<{ name: string; route: () => Call; undo?: () => void }> = [
    {
      name: "GET /line/message/long",
      route: () => ({ method: "GET", path: "/line/message/long", query: { serial_number: serials.long } }),
    },
    {
      name: "GET /line/message/attachment",
      route: () => ({
        method: "GET",
        path: "/line/message/attachment",
        query: { serial_number: serials.image },
      }),
    },
    {
      name: "HEAD /line/message/attachment",
      route: () => ({
        method: "HEAD",
        path: "/line/message/attachment",
        query: { serial_number: serials.image },
      }),
    },
    {
      name: "POST /line/message/send",
      route: () => ({
        method: "POST",
        path: "/line/message/send",
        body: { user_key: user, serial_number: serial("scope"), messages: [{ type: "text", text: "hi" }] },
      }),
    },
    {
      name: "POST /line/chat/loading",
      route: () => ({ method: "POST", path: "/line/chat/loading", body: { user_key: user, seconds: 5 } }),
    },
    {
      name: "POST /line/chat/read",
      route: () => ({ method: "POST", path: "/line/chat/read", body: { serial_number: serials.text } }),
    },
    {
      name: "GET /line/user/profile",
      route: () => ({ method: "GET", path: "/line/user/profile", query: { user_key: user } }),
    },
    {
      name: "POST /line/user",
      route: () => ({
        method: "POST",
        path: "/line/user",
        body: { user_key: user, e164: "01012345678", agree_type: 1 },
      }),
    },
    {
      name: "POST /line/channel/webhook/endpoint/set",
      route: () => ({
        method: "POST",
        path: "/line/channel/webhook/endpoint/set",
        body: { endpoint: `https://relay.example.com/line/webhook/${SENDER_KEY}` },
      }),
      // The owner's call did move the channel's webhooks: back to talkgate.
      undo: () =>
        stack.emulator.setWebhookUrl(SENDER_KEY, `${stack.talkgate.url}/line/webhook/${SENDER_KEY}`),
    },
    {
      name: "GET /line/channel/webhook/endpoint/info",
      route: () => ({ method: "GET", path: "/line/channel/webhook/endpoint/info" }),
    },
    {
      name: "GET /line/deliveries",
      route: () => ({ method: "GET", path: "/line/deliveries" }),
    },
    {
      name: "POST /line/deliveries/replay",
      route: () => ({
        method: "POST",
        path: "/line/deliveries/replay",
        body: { serial_numbers: [serials.long, serials.image, serials.text] },
      }),
    },
  ];

  for (const { name, route, undo } of routes) {
    test(`${name} with another partner's key: 404 -406 as for no such channel, and nothing changes`, async () => {
      const request = route();
      const before = await snapshot();
      const foreign = await call(request, SENDER_KEY, OTHER_API_KEY);
      const after = await snapshot();
      const unknown = await call(request, NO_SUCH_SENDER_KEY, OTHER_API_KEY);

      assert.equal(foreign.status, 404, `${foreign.status} ${foreign.text.slice(0, 200)}`);
      assert.equal(unknown.status, 404, `no such channel: ${unknown.status} ${unknown.text.slice(0, 200)}`);
      assert.equal(foreign.contentType, unknown.contentType);
      assert.equal(foreign.contentLength, unknown.contentLength);
      if (request.method === "HEAD") {
        assert.equal(foreign.text, "");
      } else {
        assert.equal(JSON.parse(foreign.text).code, "-406", foreign.text);
        // The same answer, word for word, but for the key it names.
        assert.equal(
          foreign.text.replaceAll(SENDER_KEY, "<key>"),
          unknown.text.replaceAll(NO_SUCH_SENDER_KEY, "<key>"),
        );
      }
      assert.deepEqual(after, before, "the call changed nothing and asked LINE and the partner nothing");

      // The owner's key, with the very same request, gets past the scope check.
      const own = await call(request, SENDER_KEY, API_KEY);
      undo?.();
      assert.equal(own.status, 200, `the owner's key: ${own.status} ${own.text.slice(0, 200)}`);
    });
  }

  test("without a sender_key, the deliveries list of another partner's key shows none of the channel's", async () => {
    const url = new URL("/line/deliveries", stack.talkgate.url);
    const answer = async (key: string) => {
      const response = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(response.status, 200);
      return ((await response.json()) as { deliveries: Array<{ sender_key: string }> }).deliveries;
    };
    const own = await answer(API_KEY);
    assert.ok(own.length >= 3, "the owner sees the channel's deliveries");
    assert.deepEqual(
      (await answer(OTHER_API_KEY)).filter((d) => d.sender_key !== OTHER_SENDER_KEY),
      [],
    );
  });
});
