// The command line as an operator meets it: failures are one readable line and an exit code, never a stack trace;
// a range replay says how many deliveries it matches and asks first; one talkgate per SQLite file; `migrate`.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import type { JsonWebKey } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, afterEach, before, describe, test } from "node:test";
import postgres from "postgres";
import { Webhook } from "standardwebhooks";
import * as ev from "../emulator/events.ts";
import { privateKeyProblem } from "../src/core/access-token.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { signingSecretProblem } from "../src/core/signature.ts";
import { png } from "./support/media-fixtures.ts";
import { sharedPostgres } from "./support/postgres.ts";
import { SENDER_KEY, type Stack, stackConfig, startStack } from "./support/stack.ts";
import {
  freePort,
  printOutputIfFailed,
  startTalkgateProcess,
  type TalkgateProcess,
} from "./support/talkgate-process.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `talkgate …` (bin/talkgate.js) with `args`, and `env` over this process's; never rejects. */
function talkgate(
  args: string[],
  options: { nodeOptions?: string[]; env?: Record<string, string>; input?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...(options.nodeOptions ?? []), "bin/talkgate.js", ...args],
      { timeout: 30_000, env: { ...process.env, ...options.env } },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: unknown }).code as number) : 0;
        resolve({ code: typeof code === "number" ? code : -1, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

/** Asserts a failure reported as one line starting `talkgate: ` and matching `message`, with `code`. */
function assertOneLine(run: Run, code: number, message: RegExp): void {
  assert.equal(run.code, code, `exit code (stderr: ${run.stderr})`);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${run.stderr}`);
  assert.match(lines[0] ?? "", /^talkgate: /);
  assert.match(lines[0] ?? "", message);
  assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
}

describe("the CLI without a running talkgate", () => {
  let dir: string;
  let configPath: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "talkgate-cli-"));
    configPath = join(dir, "talkgate.config.json");
    writeFileSync(configPath, JSON.stringify(stackConfig("http://127.0.0.1:1", "http://127.0.0.1:1")));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("an unknown option or command is one line, exit 2", async () => {
    assertOneLine(await talkgate(["serve", "--bogus"]), 2, /Unknown option '--bogus'/);
    assertOneLine(await talkgate(["bogus", "--config", configPath]), 2, /unknown command "bogus"/);
  });

  test("an older Node says what it needs instead of failing inside", async () => {
    const preload = join(dir, "old-node.mjs");
    writeFileSync(
      preload,
      'Object.defineProperty(process, "versions", { value: { ...process.versions, node: "20.11.0" } });\n' +
        'Object.defineProperty(process, "version", { value: "v20.11.0" });\n',
    );
    assertOneLine(
      await talkgate(["--help"], { nodeOptions: ["--import", preload] }),
      1,
      /needs Node\.js 22\.18 or later \(this is v20\.11\.0\)/,
    );
  });

  test("a port in use is one line, exit 1", async () => {
    const port = await freePort();
    const holder = createServer().listen(port, "127.0.0.1");
    await new Promise((resolve) => holder.once("listening", resolve));
    try {
      const busy = join(dir, "busy.config.json");
      writeFileSync(
        busy,
        JSON.stringify({
          ...stackConfig("http://127.0.0.1:1", "http://127.0.0.1:1"),
          listen: { host: "127.0.0.1", port },
        }),
      );
      assertOneLine(
        await talkgate(["serve", "--config", busy]),
        1,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
      );
    } finally {
      holder.close();
    }
  });

  test("a talkgate that is down is one line, exit 1", async () => {
    const port = await freePort();
    assertOneLine(
      await talkgate(["deliveries", "list", "--config", configPath, "--url", `http://127.0.0.1:${port}`], {
        env: { TALKGATE_TOKEN: "tgo_any" },
      }),
      1,
      new RegExp(
        `no talkgate answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): is it running\\?`,
      ),
    );
  });

  test("times that are not times, and half ranges, are refused before anything is asked", async () => {
    const replay = (...args: string[]) => talkgate(["deliveries", "replay", "--config", configPath, ...args]);
    assertOneLine(await replay("--from", "yesterday", "--to", "now"), 2, /--from: "yesterday" is not a time/);
    assertOneLine(
      await replay("--from", "1700000000000", "--to", "2026-13-45"),
      2,
      /--to: "2026-13-45" is not a time/,
    );
    assertOneLine(await replay("--from", "1700000000000"), 2, /--to: missing/);
    assertOneLine(await replay("--to", "1700000000000"), 2, /--from: missing/);
    assertOneLine(await replay(), 2, /give --serial S/);
  });

  test("secrets signing prints a secret the Standard Webhooks libraries take", async () => {
    const run = await talkgate(["secrets", "signing"]);
    assert.equal(run.code, 0);
    const secret = run.stdout.trim();
    assert.equal(signingSecretProblem(secret), null);
    assert.equal(Buffer.from(secret.slice("whsec_".length), "base64").length, 32);
    assert.ok(new Webhook(secret));
    assert.notEqual((await talkgate(["secrets", "signing"])).stdout.trim(), secret, "a new one each time");
  });

  test("keys generate prints a v2.1 key pair: the public JWK for LINE, the private one talkgate takes, and the steps", async () => {
    const run = await talkgate(["keys", "generate"]);
    assert.equal(run.code, 0, run.stderr);
    const jwks = [...run.stdout.matchAll(/^(\{[\s\S]*?^\}|\{".*\})$/gm)].map(
      (m) => JSON.parse(m[1] ?? "") as JsonWebKey,
    );
    const [publicKey, privateKey] = jwks;
    assert.equal(jwks.length, 2, run.stdout);
    assert.equal(publicKey?.kty, "RSA");
    assert.equal(publicKey?.d, undefined, "the public key has no private part");
    assert.equal(privateKeyProblem(privateKey), null);
    assert.equal(privateKey?.n, publicKey?.n, "one pair");
    assert.match(run.stdout, /LINE Developers Console/);
    assert.match(run.stdout, /"accessToken": \{"type": "v2\.1", "kid":/);
    assert.match(run.stdout, /TALKGATE_CHANNEL_<SENDER_KEY>_PRIVATE_KEY/);
  });
});

describe("operator commands against a running talkgate", () => {
  let stack: Stack;
  let configPath: string;
  let token = "";
  const PASSWORD = "a password for the cli test";
  before(async () => {
    const hashed = await talkgate(["hash-password"], { input: `${PASSWORD}\n` });
    assert.equal(hashed.code, 0, hashed.stderr);
    const operators = [{ name: "olga", role: "admin", passwordHash: hashed.stdout.trim() }];
    stack = await startStack({
      config: { operators },
      env: { TALKGATE_SECRET_KEY: Buffer.alloc(32, 7).toString("base64") },
    });
    configPath = join(stack.dir, "cli.config.json");
    writeFileSync(
      configPath,
      JSON.stringify({ ...stackConfig(stack.emulator.url, stack.sink.url), operators }),
    );
  });
  after(() => stack.close());

  const run = (args: string[], input?: string) =>
    talkgate([...args, "--config", configPath, "--url", stack.talkgate.url], {
      env: { TALKGATE_TOKEN: token },
      ...(input === undefined ? {} : { input }),
    });

  test("tokens create signs in with the password and prints a token; without one, one line says how to get it", async () => {
    assertOneLine(await run(["partners", "list"]), 2, /TALKGATE_TOKEN is not set/);
    const createToken = (password: string) =>
      talkgate(
        [
          "tokens",
          "create",
          "--operator",
          "olga",
          "--name",
          "cli",
          "--url",
          stack.talkgate.url,
          "--config",
          configPath,
        ],
        { env: { TALKGATE_PASSWORD: password } },
      );
    const wrong = await createToken("wrong");
    assertOneLine(wrong, 1, /sign-in refused: 401 -801/);
    const made = await createToken(PASSWORD);
    assert.equal(made.code, 0, made.stderr);
    token = made.stdout.trim();
    assert.match(token, /^tgo_/);
    assert.match(made.stderr, /shown this once/);
  });

  test("partners, channels and keys: made from a JSON body on stdin, listed as tables; errors are one line", async () => {
    const created = await run(
      ["partners", "create", "--body", "-"],
      JSON.stringify({ id: "cli-co", receiveUrl: "https://cli.example/line" }),
    );
    assert.equal(created.code, 0, created.stderr);
    const listed = await run(["partners", "list"]);
    assert.match(listed.stdout, /^ID +RECEIVEURL +DISABLED +MANAGEDBY/);
    assert.match(listed.stdout, /\ncli-co +https:\/\/cli\.example\/line +false +api/);
    assert.match(listed.stdout, /\npartner +.*file/);
    const key = await run(["keys", "create", "--partner", "cli-co", "--name", "prod"]);
    assert.equal(key.code, 0, key.stderr);
    assert.match(key.stdout.trim(), /^tgk_/);
    const keys = JSON.parse(
      (await run(["keys", "list", "--partner", "cli-co", "--json"])).stdout,
    ) as unknown[];
    assert.equal(keys.length, 1);
    assertOneLine(
      await run(["partners", "disable", "partner"]),
      1,
      /409 -809: .*managed by the configuration file/,
    );
    assertOneLine(
      await run(["channels", "create", "--body", "-"], "{nope"),
      2,
      /--body: - is not a JSON object/,
    );
    const audit = await run(["audit", "--actor", "olga"]);
    assert.match(audit.stdout, /partner\.key\.create +cli-co\/keys\/[0-9a-f]{16} +ok/);
  });

  test("a range replay says how many deliveries it matches, and replays only with --yes when it cannot ask", async () => {
    const replay = (...args: string[]) => run(["deliveries", "replay", ...args]);
    const from = Date.now();
    const user = ev.randomUserId();
    await stack.emulator.sendWebhook(SENDER_KEY, [
      ev.textEvent(ev.userSource(user), "a"),
      ev.textEvent(ev.userSource(user), "b"),
    ]);
    const mine = (a: readonly unknown[]) => a.filter((p) => (p as PartnerPayload).user_key === user).length;
    await stack.sink.waitFor((a) => mine(a) === 2);
    const range = [
      "--sender-key",
      SENDER_KEY,
      "--from",
      new Date(from).toISOString(),
      "--to",
      String(Date.now() + 1),
    ];

    // No terminal to ask on (stdin is not a TTY here): refused, saying what it would have replayed.
    assertOneLine(
      await replay(...range),
      2,
      /replay 2 deliveries of channel 1656168303 received from .*: add --yes/,
    );
    assert.equal(mine(stack.sink.accepted), 2, "nothing replayed");

    const done = await replay(...range, "--yes", "--json");
    assert.equal(done.code, 0, done.stderr);
    assert.equal((JSON.parse(done.stdout) as { replayed: number }).replayed, 2);
    await stack.sink.waitFor((a) => mine(a) === 4);

    const empty = await replay("--sender-key", SENDER_KEY, "--from", "1000", "--to", "2000");
    assert.equal(empty.code, 0);
    assert.match(
      empty.stderr,
      /^no deliveries match: received from 1970-01-01T00:00:01\.000Z .*nothing replayed\n$/,
    );
    const listed = await run(["deliveries", "list", "--sender-key", SENDER_KEY]);
    assert.match(listed.stdout, /^SENDERKEY +SERIALNUMBER/);
    const [first] = (
      JSON.parse((await run(["deliveries", "list", "--state", "delivered", "--json"])).stdout) as {
        deliveries: Array<{ serialNumber: string }>;
      }
    ).deliveries;
    assert.ok(first);
    const one = await replay("--sender-key", SENDER_KEY, "--serial", first.serialNumber);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^replayed 1 of 1 matching: ${first.serialNumber}\\n$`));
  });
});

describe("talkgate dev (npm start)", () => {
  test("a partner can upload and send media locally, and Ctrl-C stops everything once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "talkgate-dev-"));
    const [port, linePort, partnerPort] = [await freePort(), await freePort(), await freePort()];
    const config = JSON.parse(readFileSync("talkgate.config.json", "utf8")) as Record<string, unknown>;
    Object.assign(config, {
      listen: { host: "127.0.0.1", port },
      publicBaseUrl: `http://127.0.0.1:${port}`,
      database: "sqlite:./talkgate.db",
      mediaDir: "./media",
      line: { apiBaseUrl: `http://127.0.0.1:${linePort}`, dataApiBaseUrl: `http://127.0.0.1:${linePort}` },
      logLevel: "warn",
    });
    const [partner] = config.partners as Array<Record<string, unknown>>;
    if (partner) partner.receiveUrl = `http://127.0.0.1:${partnerPort}/line`;
    const configPath = join(dir, "talkgate.config.json");
    writeFileSync(configPath, JSON.stringify(config));
    const child = spawn(process.execPath, ["bin/talkgate.js", "dev", "--config", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      for (let i = 0; i < 300 && !stdout.includes("npm run demo"); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.match(stdout, /talkgate on http:\/\/127\.0\.0\.1:\d+; make a LINE user say something/, stderr);
      const user = "U4af4980629f3b4a1c2d3e4f5a6b7c8d9";
      const said = await fetch(`http://127.0.0.1:${linePort}/_emulator/channels/1656168303/say`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId: user, text: "send me a picture" }),
      });
      assert.equal(said.status, 200);
      const key = (partner?.apiKeys as string[] | undefined)?.[0] ?? "";
      const form = new FormData();
      form.append("file", new Blob([png()]), "a.png");
      const uploaded = (await (
        await fetch(`http://127.0.0.1:${port}/line/media`, {
          method: "POST",
          body: form,
          headers: { authorization: `Bearer ${key}` },
        })
      ).json()) as { url: string };
      assert.match(uploaded.url, new RegExp(`^http://127\\.0\\.0\\.1:${port}/media/`));
      const sent = await fetch(`http://127.0.0.1:${port}/line/message/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          sender_key: "1656168303",
          user_key: user,
          serial_number: "dev-media-1",
          messages: [{ type: "image", originalContentUrl: uploaded.url, previewImageUrl: uploaded.url }],
        }),
      });
      assert.equal(sent.status, 200, await sent.clone().text());
      const atLine = (await (await fetch(`http://127.0.0.1:${linePort}/_emulator/sent`)).json()) as unknown[];
      assert.equal(atLine.length, 1);
    } finally {
      child.kill("SIGINT");
      assert.equal(await exited, 0, stderr);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(stderr.match(/shutting down/g)?.length, 1, stderr);
    assert.match(stderr, /SIGINT: shutting down\nstopped\n$/);
  });
});

describe("one talkgate per SQLite file", () => {
  let first: TalkgateProcess | undefined;
  afterEach((t) => printOutputIfFailed(t, first));
  after(() => first?.close());

  test("a second process on the file is refused with one line while the first keeps serving; after a SIGKILL the file is free at once", async () => {
    first = await startTalkgateProcess(
      stackConfig("http://127.0.0.1:1", "http://127.0.0.1:1"),
      await freePort(),
      { database: "sqlite:./talkgate.db" }, // one process per SQLite file is what this is about
    );
    // The same database (sqlite:./talkgate.db beside the configuration), another port.
    const second = join(first.dir, "second.config.json");
    writeFileSync(
      second,
      JSON.stringify({
        ...stackConfig("http://127.0.0.1:1", "http://127.0.0.1:1"),
        listen: { host: "127.0.0.1", port: await freePort() },
      }),
    );
    const inUse = new RegExp(
      `^talkgate: the database ${join(first.dir, "talkgate.db").replaceAll(".", "\\.")} is in use by another talkgate process \\(`,
    );
    assertOneLine(await talkgate(["serve", "--config", second]), 1, inUse);
    assertOneLine(await talkgate(["migrate", "--config", second]), 1, inUse);
    assert.equal((await fetch(`${first.url}/healthz`)).status, 200, "the first one still serves");
    const reader = new DatabaseSync(join(first.dir, "talkgate.db"), { readOnly: true });
    assert.equal(
      reader.prepare("SELECT count(*) AS n FROM events").all().length,
      1,
      "its file is readable meanwhile",
    );
    reader.close();

    // No shutdown of any kind: the OS drops the lock with the process, so the restart is not refused.
    await first.killAndRestart();
    assert.equal((await fetch(`${first.url}/healthz`)).status, 200, "restarted on the same file");
    assertOneLine(await talkgate(["serve", "--config", second]), 1, inUse);
  });
});

describe("talkgate migrate", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "talkgate-migrate-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A configuration in `dir` whose database is `database`; answers its path. */
  function configFor(name: string, database: string): string {
    const path = join(dir, `${name}.config.json`);
    writeFileSync(
      path,
      JSON.stringify({ ...stackConfig("http://127.0.0.1:1", "http://127.0.0.1:1"), database }),
    );
    return path;
  }

  const userVersion = (path: string) => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    } finally {
      db.close();
    }
  };

  test("a fresh SQLite file: migrated, one line with its version, exit 0; TALKGATE_DATABASE wins over the file", async () => {
    const file = join(dir, "fresh", "talkgate.db");
    const run = await talkgate(["migrate", "--config", configFor("fresh", "sqlite:./fresh/talkgate.db")]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    const version = userVersion(file);
    assert.ok(version > 0);
    assert.equal(run.stdout, `talkgate: database ${file} is at schema version ${version}\n`);
    assert.equal(
      (await talkgate(["migrate", "--config", configFor("fresh", "sqlite:./fresh/talkgate.db")])).stdout,
      run.stdout,
      "again: nothing to do, the same line",
    );

    const other = join(dir, "from-env.db");
    const fromEnv = await talkgate(["migrate", "--config", configFor("fresh", "sqlite:./unused.db")], {
      env: { TALKGATE_DATABASE: `sqlite:${other}` },
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.equal(fromEnv.stdout, `talkgate: database ${other} is at schema version ${version}\n`);
    assert.equal(userVersion(other), version);
    assert.equal(existsSync(join(dir, "unused.db")), false);
  });

  test("a SQLite file with a newer schema: one line and exit 1, from migrate and from serve alike", async () => {
    const file = join(dir, "newer.db");
    const db = new DatabaseSync(file);
    db.exec("PRAGMA user_version = 999");
    db.close();
    const config = configFor("newer", `sqlite:${file}`);
    const newer = new RegExp(
      `^talkgate: the database ${file.replaceAll(".", "\\.")} has schema version 999, newer than this talkgate knows \\(\\d+\\): run a newer talkgate$`,
    );
    assertOneLine(await talkgate(["migrate", "--config", config]), 1, newer);
    assertOneLine(await talkgate(["serve", "--config", config]), 1, newer);
    assert.equal(userVersion(file), 999, "left as it was");
  });

  test("a PostgreSQL database: migrated, its URL shown without the password, exit 0; a newer schema is one line and exit 1", async () => {
    const url = await (await sharedPostgres()).createDatabase();
    const { password, port, pathname } = new URL(url);
    assert.ok(password.length > 0);
    const config = configFor("postgres", "sqlite:./unused.db");
    const migrate = () => talkgate(["migrate", "--config", config], { env: { TALKGATE_DATABASE: url } });
    const shown = `postgres://talkgate@127.0.0.1:${port}${pathname} (password redacted)`;

    const run = await migrate();
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<
        Array<{ version: number }>
      >`SELECT max(version) AS version FROM schema_migrations`;
      const version = row?.version ?? 0;
      assert.ok(version > 0);
      assert.equal(run.stdout, `talkgate: database ${shown} is at schema version ${version}\n`);
      assert.equal((await migrate()).stdout, run.stdout, "again: nothing to do, the same line");

      await sql`INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`;
      const refused = await migrate();
      assertOneLine(
        refused,
        1,
        new RegExp(
          `^talkgate: the database ${shown.replace(/[.()]/g, "\\$&")} has schema version 999, newer than this talkgate knows \\(${version}\\): run a newer talkgate$`,
        ),
      );
      for (const output of [run, refused]) assert.ok(!`${output.stdout}${output.stderr}`.includes(password));
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test("a PostgreSQL database that cannot be used (login refused, nothing listening) is one line and exit 1, without the password", async () => {
    const url = new URL(await (await sharedPostgres()).createDatabase());
    url.password = "not-the-password";
    const config = configFor("unusable", "sqlite:./unused.db");
    const run = (database: string) =>
      talkgate(["migrate", "--config", config], { env: { TALKGATE_DATABASE: database } });
    const refused = await run(url.href);
    assertOneLine(
      refused,
      1,
      /^talkgate: cannot use the database postgres:\/\/talkgate@127\.0\.0\.1:\d+\/\w+ \(password redacted\): password authentication failed/,
    );
    assert.ok(!refused.stderr.includes("not-the-password"));
    url.port = String(await freePort());
    assertOneLine(await run(url.href), 1, /^talkgate: cannot use the database .*: connect ECONNREFUSED/);
  });
});
