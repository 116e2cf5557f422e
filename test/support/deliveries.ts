// Reads deliveries the way a partner or an operator does, through talkgate's API: GET /line/deliveries, paged, and
// POST /line/deliveries/replay with dry_run to count; so the integration suites assert the same on either database.
import assert from "node:assert/strict";
import { API_KEY, SENDER_KEY } from "./stack.ts";

export type DeliveryState = "pending" | "retrying" | "delivered" | "dead";

/** One delivery as GET /line/deliveries answers it (docs/openapi.json). */
export interface Delivery {
  serial_number: string;
  sender_key: string;
  conversation: string;
  event_type: string;
  state: DeliveryState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  received_at: number;
  updated_at: number;
  next_attempt_at: number;
}

/** The filters of GET /line/deliveries. */
export interface DeliveryQuery {
  sender_key?: string;
  state?: DeliveryState;
  conversation?: string;
  from?: number;
  to?: number;
}

/** Where talkgate listens (`http://127.0.0.1:<port>`), or anything that has its `url`. */
type Talkgate = string | { readonly url: string };
const base = (talkgate: Talkgate) => (typeof talkgate === "string" ? talkgate : talkgate.url);

/**
 * Every delivery the key sees (all its channels unless `sender_key` is given), in the order talkgate stored their
 * events: every page of GET /line/deliveries.
 */
export async function listDeliveries(
  talkgate: Talkgate,
  query: DeliveryQuery = {},
  key = API_KEY,
): Promise<Delivery[]> {
  const all: Delivery[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams({ limit: "1000" });
    for (const [name, value] of Object.entries(query))
      if (value !== undefined) params.set(name, String(value));
    if (cursor !== null) params.set("cursor", cursor);
    const response = await fetch(`${base(talkgate)}/line/deliveries?${params}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const text = await response.text();
    assert.equal(response.status, 200, `GET /line/deliveries?${params}: ${text}`);
    const page = JSON.parse(text) as { deliveries: Delivery[]; next_cursor: string | null };
    all.push(...page.deliveries);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return all;
}

/**
 * How many deliveries of `sender_key` (SENDER_KEY by default) match, received in [from, to) (by default: ever):
 * POST /line/deliveries/replay with dry_run, which replays nothing.
 */
export async function countDeliveries(
  talkgate: Talkgate,
  filter: { sender_key?: string; state?: DeliveryState; from?: number; to?: number } = {},
  key = API_KEY,
): Promise<number> {
  const body = { sender_key: SENDER_KEY, from: 0, to: Number.MAX_SAFE_INTEGER, ...filter, dry_run: true };
  const response = await fetch(`${base(talkgate)}/line/deliveries/replay`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `dry-run replay ${JSON.stringify(body)}: ${text}`);
  return (JSON.parse(text) as { matched: number }).matched;
}

/**
 * Deliveries of every channel not yet acknowledged, by state, as GET /metrics reports them
 * (talkgate_deliveries_waiting): for waiting on a backlog without spending the partner API's rate limit.
 */
export async function waitingDeliveries(talkgate: Talkgate): Promise<{ pending: number; retrying: number }> {
  const response = await fetch(`${base(talkgate)}/metrics`);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  const gauge = (state: string) => {
    const line = new RegExp(`^talkgate_deliveries_waiting\\{state="${state}"\\} (\\d+)$`, "m").exec(text);
    assert.ok(line, `talkgate_deliveries_waiting{state="${state}"} is in GET /metrics`);
    return Number(line[1]);
  };
  return { pending: gauge("pending"), retrying: gauge("retrying") };
}

/** Deliveries counted by state (states with none left out), e.g. `{ delivered: 3000 }`. */
export async function deliveriesByState(
  talkgate: Talkgate,
  query: DeliveryQuery = {},
  key = API_KEY,
): Promise<Partial<Record<DeliveryState, number>>> {
  const counts: Partial<Record<DeliveryState, number>> = {};
  for (const delivery of await listDeliveries(talkgate, query, key))
    counts[delivery.state] = (counts[delivery.state] ?? 0) + 1;
  return counts;
}

/**
 * Polls `check` every 50 ms until it holds, failing with `what` after `timeoutMs`. (A check that calls the partner
 * API costs one of the key's partnerApi.rateLimitMax calls a minute, 600 by default: 50 ms keeps well under it.)
 */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
