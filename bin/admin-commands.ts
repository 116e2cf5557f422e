// The operator's commands: they call a running talkgate's admin API with an operator token (TALKGATE_TOKEN), print
// tables a person can read (or --json), and fail with one line. `tokens create` signs in with a password instead.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";
import { CliError } from "./cli-error.ts";

/** Calls the admin API at `base`; answers the JSON body (null for 204), or fails with one line. */
export type AdminCall = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<Record<string, unknown> | null>;

/** An admin API client with `headers` on every call. */
export function adminApi(base: string, headers: Record<string, string>): AdminCall {
  return async (method, path, body) => {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      const { cause } = error as { cause?: { code?: string; message?: string } };
      const text = cause?.message ?? (error as Error).message;
      const why = cause?.code ?? /\bE[A-Z]{3,}\b/.exec(text)?.[0] ?? text;
      throw new CliError(`no talkgate answers at ${base} (${why}): is it running? (--url sets the address)`);
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new CliError(`${base} answered ${response.status} with something that is not talkgate's JSON`);
    }
    if (!response.ok) {
      const hint =
        response.status === 401 ? " (set TALKGATE_TOKEN to an operator token: talkgate tokens create)" : "";
      throw new CliError(
        `talkgate answered ${response.status} ${String(json.code)}: ${String(json.message)}${hint}`,
      );
    }
    return json;
  };
}

/** The operator token of the environment, or a one-line refusal saying how to get one. */
export function operatorToken(env: NodeJS.ProcessEnv): Record<string, string> {
  const token = env.TALKGATE_TOKEN;
  if (!token)
    throw new CliError(
      "TALKGATE_TOKEN is not set: make an operator token with `talkgate tokens create --operator NAME --name LABEL`",
      2,
    );
  return { authorization: `Bearer ${token}` };
}

/** Prints rows as a table with a header, columns padded; `--json` prints the answer itself. */
export function printTable(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): void {
  const cell = (value: unknown) =>
    value === null || value === undefined
      ? "-"
      : Array.isArray(value)
        ? value.map((v) => (typeof v === "object" ? (v as { id?: string }).id : String(v))).join(",")
        : typeof value === "number" && value > 1e12
          ? new Date(value).toISOString().replace(/\.\d+Z$/, "Z")
          : String(value);
  const table = [columns.map((c) => c.toUpperCase()), ...rows.map((row) => columns.map((c) => cell(row[c])))];
  const widths = columns.map((_, i) => Math.max(...table.map((line) => (line[i] ?? "").length)));
  for (const line of table)
    console.log(
      line
        .map((v, i) => v.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    );
  if (rows.length === 0) console.error("(none)");
}

/** A JSON object given with --body FILE (or - for stdin), for creates and updates: secrets never on the command line. */
function readBody(file: string | undefined, what: string): Record<string, unknown> {
  if (file === undefined)
    throw new CliError(
      `--body: missing (the ${what} as JSON in a file, or - for stdin; see docs/admin-api.md)`,
      2,
    );
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (error) {
    throw new CliError(`--body: cannot read ${file}: ${(error as Error).message}`, 2);
  }
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
    return body as Record<string, unknown>;
  } catch (error) {
    throw new CliError(`--body: ${file} is not a JSON object (${(error as Error).message})`, 2);
  }
}

export interface AdminOptions {
  json?: boolean | undefined;
  body?: string | undefined;
  partner?: string | undefined;
  name?: string | undefined;
  operator?: string | undefined;
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  limit?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

const PARTNER_COLUMNS = ["id", "receiveUrl", "disabled", "managedBy", "signingSecrets", "apiKeys"];
const CHANNEL_COLUMNS = [
  "senderKey",
  "partner",
  "forwardEventTypes",
  "hasChannelAccessToken",
  "disabled",
  "managedBy",
];

/** `talkgate partners|channels list|show|create|update|disable|enable|delete`. */
export async function entryCommand(
  call: AdminCall,
  kind: "partners" | "channels",
  action: string | undefined,
  id: string | undefined,
  options: AdminOptions,
): Promise<void> {
  const columns = kind === "partners" ? PARTNER_COLUMNS : CHANNEL_COLUMNS;
  const what = kind === "partners" ? "partner" : "channel";
  const print = (answer: Record<string, unknown> | null, rows: Array<Record<string, unknown>>) =>
    options.json ? console.log(JSON.stringify(answer, null, 2)) : printTable(rows, columns);
  const needId = () => {
    if (!id)
      throw new CliError(
        `usage: talkgate ${kind} ${action} <${kind === "partners" ? "id" : "sender-key"}>`,
        2,
      );
    return encodeURIComponent(id);
  };
  if (action === "list") {
    const answer = await call("GET", `/admin/${kind}`);
    return print(answer, (answer?.[kind] as Array<Record<string, unknown>>) ?? []);
  }
  let answer: Record<string, unknown> | null;
  if (action === "show") answer = await call("GET", `/admin/${kind}/${needId()}`);
  else if (action === "create") answer = await call("POST", `/admin/${kind}`, readBody(options.body, what));
  else if (action === "update")
    answer = await call("PATCH", `/admin/${kind}/${needId()}`, readBody(options.body, what));
  else if (action === "disable" || action === "enable")
    answer = await call("PATCH", `/admin/${kind}/${needId()}`, { disabled: action === "disable" });
  else if (action === "delete") {
    await call("DELETE", `/admin/${kind}/${needId()}`);
    console.error(`deleted ${what} ${id}`);
    return;
  } else
    throw new CliError(
      `usage: talkgate ${kind} list|show|create|update|disable|enable|delete (see talkgate --help)`,
      2,
    );
  print(answer, answer ? [answer] : []);
}

/** `talkgate keys list|create|revoke --partner ID`. */
export async function keysCommand(
  call: AdminCall,
  action: string | undefined,
  keyId: string | undefined,
  options: AdminOptions,
): Promise<void> {
  if (!options.partner) throw new CliError("--partner: missing (whose keys)", 2);
  const partner = encodeURIComponent(options.partner);
  if (action === "list") {
    const answer = await call("GET", `/admin/partners/${partner}`);
    const keys = (answer?.apiKeys as Array<Record<string, unknown>>) ?? [];
    return options.json
      ? console.log(JSON.stringify(keys, null, 2))
      : printTable(keys, ["id", "name", "managedBy", "createdAt", "lastUsedAt"]);
  }
  if (action === "create") {
    if (!options.name)
      throw new CliError("--name: missing (what the key is for, e.g. the partner's system)", 2);
    const answer = await call("POST", `/admin/partners/${partner}/keys`, { name: options.name });
    if (options.json) return console.log(JSON.stringify(answer, null, 2));
    console.log(String(answer?.key));
    console.error(
      `key ${String(answer?.id)} for ${options.partner}: shown this once, give it to the partner`,
    );
    return;
  }
  if (action === "revoke") {
    if (!keyId) throw new CliError("usage: talkgate keys revoke --partner ID <key-id>", 2);
    await call("DELETE", `/admin/partners/${partner}/keys/${encodeURIComponent(keyId)}`);
    console.error(`revoked key ${keyId} of ${options.partner}`);
    return;
  }
  throw new CliError("usage: talkgate keys list|create|revoke --partner ID (see talkgate --help)", 2);
}

/** `talkgate audit`: the newest entries first, filtered. */
export async function auditCommand(call: AdminCall, options: AdminOptions): Promise<void> {
  const query = new URLSearchParams({ limit: options.limit ?? "100" });
  for (const key of ["actor", "action", "target"] as const) {
    const value = options[key];
    if (value !== undefined) query.set(key, value);
  }
  if (options.from !== undefined) query.set("from", String(options.from));
  if (options.to !== undefined) query.set("to", String(options.to));
  const answer = await call("GET", `/admin/audit?${query}`);
  const entries = (answer?.entries as Array<Record<string, unknown>>) ?? [];
  if (options.json) return console.log(JSON.stringify(answer, null, 2));
  printTable(entries, ["at", "actorKind", "actor", "action", "target", "outcome", "requestId"]);
}

/** `talkgate tokens create|list|revoke`: create signs in with the operator's password and makes a token for them. */
export async function tokensCommand(
  base: string,
  env: NodeJS.ProcessEnv,
  action: string | undefined,
  tokenId: string | undefined,
  options: AdminOptions,
): Promise<void> {
  if (action === "create") {
    if (!options.operator) throw new CliError("--operator: missing (who signs in, and whose token it is)", 2);
    if (!options.name)
      throw new CliError("--name: missing (what the token is for, e.g. laptop or backup job)", 2);
    const password = env.TALKGATE_PASSWORD ?? (await askPassword(`password of ${options.operator}: `));
    const signIn = await fetch(`${base}/admin/sign-in`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: options.operator, password }),
    }).catch(() => null);
    if (!signIn)
      throw new CliError(`no talkgate answers at ${base}: is it running? (--url sets the address)`);
    const signedIn = (await signIn.json().catch(() => ({}))) as {
      csrfToken?: string;
      code?: string;
      message?: string;
    };
    if (!signIn.ok || !signedIn.csrfToken)
      throw new CliError(
        `sign-in refused: ${signIn.status} ${String(signedIn.code)}: ${String(signedIn.message)}`,
      );
    const cookie = signIn.headers.get("set-cookie")?.split(";")[0] ?? "";
    const call = adminApi(base, { cookie, "x-csrf-token": signedIn.csrfToken });
    try {
      const made = await call("POST", "/admin/tokens", { operator: options.operator, name: options.name });
      console.log(String(made?.token));
      console.error(
        `operator token ${String(made?.id)} for ${options.operator}: shown this once; use it as TALKGATE_TOKEN`,
      );
    } finally {
      await call("POST", "/admin/sign-out").catch(() => {});
    }
    return;
  }
  const call = adminApi(base, operatorToken(env));
  if (action === "list") {
    const answer = await call("GET", "/admin/tokens");
    if (options.json) return console.log(JSON.stringify(answer, null, 2));
    return printTable((answer?.tokens as Array<Record<string, unknown>>) ?? [], [
      "id",
      "operator",
      "name",
      "createdAt",
      "revokedAt",
      "lastUsedAt",
    ]);
  }
  if (action === "revoke") {
    if (!tokenId) throw new CliError("usage: talkgate tokens revoke <token-id>", 2);
    await call("DELETE", `/admin/tokens/${encodeURIComponent(tokenId)}`);
    console.error(`revoked operator token ${tokenId}`);
    return;
  }
  throw new CliError("usage: talkgate tokens create|list|revoke (see talkgate --help)", 2);
}

/** Asks for a password on the terminal without echoing it; without a terminal, reads one line of stdin. */
export async function askPassword(question: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = readFileSync(0, "utf8").split("\n")[0]?.replace(/\r$/, "") ?? "";
    if (!line) throw new CliError("no password given (type it at the prompt, or pipe it on stdin)", 2);
    return line;
  }
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const prompt = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = prompt.question(question);
    muted = true;
    const password = await answer;
    process.stderr.write("\n");
    if (!password) throw new CliError("no password given", 2);
    return password;
  } finally {
    prompt.close();
  }
}
