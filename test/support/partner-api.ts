// Calls talkgate's partner API as a partner would, and reads what LINE (the emulator) was asked to do.
import assert from "node:assert/strict";
import type { RecordedCall } from "../../emulator/line-emulator.ts";
import { readRows } from "./read-rows.ts";
import { API_KEY, SENDER_KEY, type Stack } from "./stack.ts";

/** A partner API answer: the HTTP status and the JSON body. */
export interface ApiAnswer {
  status: number;
  body: Record<string, unknown> & { code?: string; message?: string };
}

/** Calls the partner API with `key` (API_KEY by default; null sends no Authorization header). */
export async function callApi(
  stack: Stack,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  key: string | null = API_KEY,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${stack.talkgate.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: ApiAnswer["body"];
  try {
    json = JSON.parse(text) as ApiAnswer["body"];
  } catch {
    assert.fail(`${method} ${path} answered ${response.status} with a body that is not JSON: ${text}`);
  }
  return { status: response.status, body: json };
}

/** POST /line/message/send with `sender_key` filled in unless given. */
export function send(stack: Stack, body: Record<string, unknown>, key?: string | null): Promise<ApiAnswer> {
  return callApi(stack, "POST", "/line/message/send", { sender_key: SENDER_KEY, ...body }, key);
}

/** Asserts an error answer: HTTP status, code, and (optionally) a pattern the message must match. */
export function assertError(answer: ApiAnswer, status: number, code: string, message?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.code, code, JSON.stringify(answer.body));
  assert.equal(typeof answer.body.message, "string");
  if (message) assert.match(answer.body.message ?? "", message);
}

/** The emulator's calls since `mark` (an index into `emulator.calls`), GETs (profiles, content) left out. */
export function actionCalls(stack: Stack, mark: number): RecordedCall[] {
  return stack.emulator.calls.slice(mark).filter((call) => call.method !== "GET");
}

/** A unique serial_number (≤ 30 characters) for one send. */
let serialCounter = 0;
export function serial(prefix = "s"): string {
  serialCounter += 1;
  return `${prefix}-${Date.now().toString(36)}-${serialCounter}`.slice(0, 30);
}

/** One row of the `sends` audit table. */
export interface SendRow {
  sender_key: string;
  serial_number: string;
  partner_id: string;
  conversation: string;
  recipient: string;
  state: string;
  method: string | null;
  line_request_id: string | null;
  error_code: string | null;
  attempts: number;
}

/** The send's audit row (no API shows it), read on a connection of its own. */
export async function sendRow(stack: Stack, serialNumber: string): Promise<SendRow | undefined> {
  const [row] = await readRows<SendRow>(
    stack.config.database,
    `SELECT sender_key, serial_number, partner_id, conversation, recipient, state, method, line_request_id,
       error_code, attempts FROM sends WHERE sender_key = $1 AND serial_number = $2`,
    SENDER_KEY,
    serialNumber,
  );
  return row;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds (every 20 ms), failing after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
