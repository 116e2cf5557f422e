// The talkgate command line: `serve` runs the relay, `emulator` the LINE platform emulator, `dev` both with a demo
// partner, `migrate` brings the database's schema up to date, `deliveries` lists and replays through a running
// talkgate, `secrets` makes secrets.
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { SecretKeyRefusal } from "../src/app/runtime-config.ts";
import { ConfigError, loadConfig, type TalkgateConfig } from "../src/config/config.ts";
import { generateAssertionKeyPair, publicKeyOf } from "../src/core/access-token.ts";
import { hashPassword } from "../src/core/credentials.ts";
import { startTalkgate } from "../src/main.ts";
import { settleAfterStart } from "../src/settle-after-start.ts";
import { DatabaseRefusal } from "../src/store/database-refusal.ts";
import { describeDatabase, migrateStore } from "../src/store/open-store.ts";
import {
  type AdminCall,
  adminApi,
  askPassword,
  auditCommand,
  entryCommand,
  keysCommand,
  operatorToken,
  printTable,
  tokensCommand,
} from "./admin-commands.ts";
import { CliError } from "./cli-error.ts";

export const USAGE = `usage: talkgate <command> [options]

commands:
  serve     [--config FILE]   run talkgate (webhook intake, partner API, workers)
  emulator  [--config FILE] [--port N]
                              run the LINE platform emulator for the channels in FILE
  dev       [--config FILE]   run talkgate, the LINE emulator and a demo partner that prints
                              what it receives (development only; used by npm start)
  migrate   [--config FILE]   bring the database's schema up to date, print its version and exit
                              (serve does it too at start; this runs it alone, e.g. before a rollout)
  hash-password               read a password (asked without echo, or one line of stdin) and print its
                              hash for operators[].passwordHash
  secrets signing             print a new partner signing secret (whsec_ + 32 random bytes, base64)

operator commands: they call the admin API of the running talkgate (listen of --config, or --url) with
the operator token in TALKGATE_TOKEN; tables by default, --json for the answers themselves
  tokens create --operator NAME --name LABEL
                              sign in as NAME (password asked, or TALKGATE_PASSWORD) and print a new
                              operator token for NAME, shown once
  tokens list | tokens revoke ID
  partners list | show ID | create --body FILE | update ID --body FILE | disable ID | enable ID | delete ID
  channels list | show K | create --body FILE | update K --body FILE | disable K | enable K | delete K
                              --body: the admin API's JSON (docs/admin-api.md) in a file, or - for stdin,
                              so that secrets never appear on a command line
  keys list|create|revoke --partner ID [--name LABEL] [KEY-ID]
                              a partner's API keys; create prints the new key once
  keys generate               print a new RSA key pair for a channel's v2.1 tokens (no talkgate needed):
                              the public JWK to register at LINE, the private one for talkgate
  audit [--actor A] [--action X] [--target T] [--from TIME] [--to TIME] [--limit N]
                              the audit log, newest first
  deliveries list   [--sender-key K] [--state pending|retrying|delivered|dead] [--limit N] [--cursor C]
  deliveries replay (--sender-key K --serial S [--serial S …] | [--sender-key K] --from TIME --to TIME)
                    [--state S] [--yes]
                              deliveries of every channel (or K); TIME is ISO 8601 or Unix ms; a range
                              replay says how many deliveries it matches and asks first (--yes: do not ask)

options:
  --config FILE   the configuration (default talkgate.config.json); secrets may come from the
                  environment: see docs/configuration.md
  --url URL       the running talkgate's address, for operator commands (default: listen of --config)
  --json          print the admin API's answers as JSON instead of tables
  --help          this text`;

/** Every option the CLI takes (docs/operations.md lists each one; a test checks it). */
export const OPTIONS = {
  config: { type: "string", default: "talkgate.config.json" },
  port: { type: "string" },
  help: { type: "boolean" },
  url: { type: "string" },
  "sender-key": { type: "string" },
  state: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  serial: { type: "string", multiple: true },
  from: { type: "string" },
  to: { type: "string" },
  yes: { type: "boolean" },
  json: { type: "boolean" },
  body: { type: "string" },
  partner: { type: "string" },
  name: { type: "string" },
  operator: { type: "string" },
  actor: { type: "string" },
  action: { type: "string" },
  target: { type: "string" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

export { CliError };

// `talkgate dev`'s TALKGATE_SECRET_KEY when none is set: public, so for development only.
const DEV_SECRET_KEY = Buffer.alloc(32, "talkgate-dev").toString("base64");

// The LINE user the dev setup's hint speaks as; the emulator knows their profile.
const DEMO_USER = "U4af4980629f3b4a1c2d3e4f5a6b7c8d9";

/** Runs one talkgate command; `argv` is the command line after the script (`serve --config FILE`). */
export async function runCli(argv: string[]): Promise<void> {
  let parsed: { positionals: string[]; values: Values };
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (error) {
    // Node's messages name the option; its advice about "--" does not apply here.
    throw new CliError(`${(error as Error).message.split(". ")[0]} (see talkgate --help)`, 2);
  }
  const { positionals, values } = parsed;
  const [command, action, subject] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  if (command === "secrets") return secrets(action);
  // The only keys command that needs neither a configuration nor a running talkgate.
  if (command === "keys" && action === "generate") return generateAssertionKeys();
  // The development stack can store secrets made through the admin API without any setup (never serve).
  if (command === "dev") process.env.TALKGATE_SECRET_KEY ||= DEV_SECRET_KEY;
  if (command === "hash-password") {
    console.log(await hashPassword(await askPassword("password: ")));
    return;
  }
  const config = readConfig(values.config);
  try {
    if (command === "serve") return await serve(config);
    if (command === "migrate") return await migrate(config);
    if (command === "emulator") {
      const emu = await emulator(config, values.port ? Number(values.port) : undefined);
      onShutdown(() => emu.close());
      return;
    }
    if (command === "dev") return await dev(config);
    const base = () => values.url ?? listeningUrl(config);
    const operator = (): AdminCall => adminApi(base(), operatorToken(process.env));
    const times = {
      from: values.from === undefined ? undefined : parseTime("--from", values.from),
      to: values.to === undefined ? undefined : parseTime("--to", values.to),
    };
    if (command === "deliveries") return await deliveries(operator, action, values);
    const admin = { ...values, ...times };
    if (command === "tokens") return await tokensCommand(base(), process.env, action, subject, admin);
    if (command === "partners" || command === "channels")
      return await entryCommand(operator(), command, action, subject, admin);
    if (command === "keys") return await keysCommand(operator(), action, subject, admin);
    if (command === "audit") return await auditCommand(operator(), admin);
  } catch (error) {
    // Another talkgate on the SQLite file, a schema newer than this build: the operator's to act on.
    if (error instanceof DatabaseRefusal || error instanceof SecretKeyRefusal)
      throw new CliError(error.message);
    throw error;
  }
  throw new CliError(`unknown command ${JSON.stringify(command)} (see talkgate --help)`, 2);
}

function readConfig(path: string): TalkgateConfig {
  try {
    return loadConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) {
      const [only] = error.problems;
      throw new CliError(error.problems.length === 1 ? `${path}: ${only}` : error.message, 2);
    }
    throw error;
  }
}

function secrets(action: string | undefined): void {
  if (action !== "signing") throw new CliError("usage: talkgate secrets signing", 2);
  console.log(`whsec_${randomBytes(32).toString("base64")}`);
}

/** `talkgate keys generate`: a v2.1 assertion key pair, and how to use it. */
function generateAssertionKeys(): void {
  const { publicKey, privateKey } = generateAssertionKeyPair();
  console.log(`1. In the LINE Developers Console: the channel's Basic settings → Assertion Signing Key → Register a
   public key, paste this public key and note the kid LINE shows:

${JSON.stringify(publicKey, null, 2)}

2. Give talkgate the private key (keep it secret: it issues tokens for the channel). In the configuration
   file, or with the admin API (docs/operations.md, "Move a channel to v2.1 tokens"):

   "accessToken": {"type": "v2.1", "kid": "<the kid LINE showed>", "privateKey": <the key below>}

   or keep it out of the file: TALKGATE_CHANNEL_<SENDER_KEY>_PRIVATE_KEY='<the key below, one line>'

${JSON.stringify(privateKey)}
`);
}

/** `talkgate migrate`: the configured database's migrations alone, then one line saying its version. */
async function migrate(config: TalkgateConfig): Promise<void> {
  const version = await migrateStore(config);
  console.log(`talkgate: database ${describeDatabase(config.database)} is at schema version ${version}`);
}

async function serve(config: TalkgateConfig): Promise<void> {
  const talkgate = await listening(config, () => startTalkgate(config));
  onShutdown(() => talkgate.close());
  settleAfterStart();
}

// Starts something that listens on config.listen; a port in use is one line, not a stack trace.
async function listening<T>(config: TalkgateConfig, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const { code, address, port } = error as { code?: string; address?: string; port?: number };
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      const where = `${address ?? config.listen.host}:${port ?? config.listen.port}`;
      const why =
        code === "EADDRINUSE"
          ? "address already in use"
          : code === "EACCES"
            ? "permission denied"
            : "no such address";
      throw new CliError(
        `cannot listen on ${where}: ${why} (listen.host and listen.port in the configuration)`,
      );
    }
    throw error;
  }
}

async function emulator(config: TalkgateConfig, port?: number, httpMediaOrigins: string[] = []) {
  const { startLineEmulator } = await import("../emulator/line-emulator.ts");
  const apiUrl = new URL(config.line.apiBaseUrl);
  const talkgateUrl = `http://127.0.0.1:${config.listen.port}`;
  const emu = await startLineEmulator({
    host: apiUrl.hostname,
    port: port ?? Number(apiUrl.port),
    // A v2.1 channel's public key is registered from its private one, as an operator does at LINE.
    channels: config.channels.map((c) => ({
      channelId: c.senderKey,
      channelSecret: c.channelSecret,
      ...(c.accessToken?.type === "static" ? { accessToken: c.accessToken.token } : {}),
      ...(c.accessToken?.type === "v2.1"
        ? { assertionKeys: [{ ...publicKeyOf(c.accessToken.privateKey), kid: c.accessToken.kid }] }
        : {}),
      webhookUrl: `${talkgateUrl}/line/webhook/${c.senderKey}`,
    })),
    httpMediaOrigins,
  }).catch((error: unknown) => {
    const { code } = error as { code?: string };
    if (code === "EADDRINUSE")
      throw new CliError(`the LINE emulator cannot listen on ${apiUrl.host}: address already in use`);
    throw error;
  });
  console.log(`LINE emulator on ${emu.url} (control API under ${emu.url}/_emulator; see docs/emulator.md)`);
  return emu;
}

async function dev(config: TalkgateConfig): Promise<void> {
  const { startPartnerSink } = await import("../emulator/partner-sink.ts");
  // Local uploads are served over plain http: the emulator (never LINE) and this talkgate accept them.
  const local = [new URL(config.publicBaseUrl).origin];
  const emu = await emulator(config, undefined, local);
  const stopped: Array<() => Promise<void>> = [() => emu.close()];
  try {
    emu.setProfile(DEMO_USER, { displayName: "Demo User" });
    const sinks = await Promise.all(
      config.partners.map((partner) =>
        startPartnerSink({
          port: Number(new URL(partner.receiveUrl).port),
          signingSecret: partner.signingSecret,
          onPayload: (payload) =>
            console.log(`demo partner ${partner.id} received:\n${JSON.stringify(payload, null, 2)}`),
        }),
      ),
    );
    stopped.unshift(() => Promise.all(sinks.map((sink) => sink.close())).then(() => undefined));
    const talkgate = await listening(config, () => startTalkgate(config, { httpMediaOrigins: local }));
    stopped.unshift(() => talkgate.close());
    const channel = config.channels[0];
    if (channel) {
      console.log(`talkgate on ${talkgate.url}; make a LINE user say something:
  curl -s -X POST ${emu.url}/_emulator/channels/${channel.senderKey}/say -H 'content-type: application/json' \\
    -d '{"userId":"${DEMO_USER}","text":"Hello talkgate"}'
or play a whole scripted conversation through this running stack with: npm run demo`);
    }
  } catch (error) {
    for (const stop of stopped) await stop();
    throw error;
  }
  onShutdown(async () => {
    for (const stop of stopped) await stop();
  });
}

/** `talkgate deliveries list|replay`: through the running talkgate's admin API, with an operator token. */
async function deliveries(
  operator: () => AdminCall,
  action: string | undefined,
  options: Values,
): Promise<void> {
  if (action !== "list" && action !== "replay")
    throw new CliError("usage: talkgate deliveries list|replay … (see talkgate --help)", 2);
  const senderKey = options["sender-key"];
  if (action === "list") {
    const query = new URLSearchParams({ limit: options.limit ?? "100" });
    if (senderKey) query.set("senderKey", senderKey);
    if (options.state) query.set("state", options.state);
    if (options.cursor) query.set("cursor", options.cursor);
    const listed = await operator()("GET", `/admin/deliveries?${query}`);
    if (options.json) console.log(JSON.stringify(listed, null, 2));
    else
      printTable((listed?.deliveries as Array<Record<string, unknown>>) ?? [], [
        "senderKey",
        "serialNumber",
        "conversation",
        "eventType",
        "state",
        "attempts",
        "lastStatus",
        "receivedAt",
      ]);
    if (typeof listed?.nextCursor === "string")
      console.error(`more: talkgate deliveries list … --cursor ${listed.nextCursor}`);
    return;
  }

  const body: Record<string, unknown> = { senderKey, serialNumbers: options.serial, state: options.state };
  const ranged = options.from !== undefined || options.to !== undefined;
  if (ranged) {
    if (options.from === undefined)
      throw new CliError("--from: missing (a range replay needs --from and --to)", 2);
    if (options.to === undefined)
      throw new CliError("--to: missing (a range replay needs --from and --to)", 2);
    body.from = parseTime("--from", options.from);
    body.to = parseTime("--to", options.to);
  } else if (!options.serial) {
    throw new CliError(
      "give --serial S (one or more, with --sender-key), or a range with --from and --to",
      2,
    );
  }
  const call = operator();
  if (ranged) {
    const counted = await call("POST", "/admin/deliveries/replay", { ...body, dryRun: true });
    const matched = Number(counted?.matched ?? 0);
    const range = `received from ${new Date(body.from as number).toISOString()} to ${new Date(body.to as number).toISOString()}`;
    const channels = senderKey ? `channel ${senderKey}` : "every channel";
    const what = `${matched} deliver${matched === 1 ? "y" : "ies"} of ${channels} ${range}${options.state ? ` (${options.state})` : ""}`;
    if (matched === 0) {
      console.error(`no deliveries match: ${range}; nothing replayed`);
      return;
    }
    if (!options.yes && !(await confirm(`replay ${what}? [y/N] `)))
      throw new CliError(`not replayed: ${what}`, 1);
  }
  const replayed = await call("POST", "/admin/deliveries/replay", body);
  if (options.json) console.log(JSON.stringify(replayed, null, 2));
  else {
    const serials = (replayed?.serialNumbers as string[]) ?? [];
    console.log(
      `replayed ${serials.length} of ${String(replayed?.matched)} matching: ${serials.join(" ")}`.trimEnd(),
    );
  }
}

// A time as ISO 8601 (with a date) or Unix ms; anything else is refused, never read as 0.
function parseTime(option: string, value: string): number {
  const ms = /^\d+$/.test(value)
    ? Number(value)
    : /^\d{4}-\d{2}-\d{2}/.test(value)
      ? Date.parse(value)
      : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new CliError(
      `${option}: ${JSON.stringify(value)} is not a time (ISO 8601 like 2026-12-01T09:00:00+09:00, or Unix ms)`,
      2,
    );
  return ms;
}

// Asks on the terminal; without one (a script, a pipe) there is no one to ask: --yes is needed.
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY)
    throw new CliError(
      `${question.replace(/\? \[y\/N\] $/, "")}: add --yes to confirm without a terminal`,
      2,
    );
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

// The address of the talkgate that --config describes.
function listeningUrl(config: TalkgateConfig): string {
  const host = ["0.0.0.0", "::"].includes(config.listen.host) ? "127.0.0.1" : config.listen.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.listen.port}`;
}

/** Runs `close` once on SIGINT or SIGTERM, then exits. */
function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: string) => {
    if (closing) return;
    closing = true;
    console.error(`${signal}: shutting down`);
    close().then(
      () => {
        console.error("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`talkgate: shutting down failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
}
