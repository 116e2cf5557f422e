// The command line as an operator meets it: failures are one readable line and an exit code, never a stack trace;
// a range replay says how many deliveries it matches and asks first.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { signingSecretProblem } from "../src/core/signature.ts";
import { png } from "./support/media-fixtures.ts";
import { SENDER_KEY, type Stack, stackConfig, startStack } from "./support/stack.ts";
import { freePort } from "./support/talkgate-process.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `talkgate …` (bin/talkgate.js) with `args`; never rejects. */
function talkgate(args: string[], options: { nodeOptions?: string[] } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...(options.nodeOptions ?? []), "bin/talkgate.js", ...args],
      { timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: unknown }).code as number) : 0;
        resolve({ code: typeof code === "number" ? code : -1, stdout, stderr });
      },
    );
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
      await talkgate(["deliveries", "list", "--config", configPath, "--url", `http://127.0.0.1:${port}`]),
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
});

describe("range replay through the CLI", () => {
  let stack: Stack;
  let configPath: string;
  before(async () => {
    stack = await startStack();
    configPath = join(stack.dir, "cli.config.json");
    writeFileSync(configPath, JSON.stringify(stackConfig(stack.emulator.url, stack.sink.url)));
  });
  after(() => stack.close());

  const replay = (...args: string[]) =>
    talkgate(["deliveries", "replay", "--config", configPath, "--url", stack.talkgate.url, ...args]);

  test("says how many deliveries a range matches, and replays only with --yes when it cannot ask", async () => {
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

    const done = await replay(...range, "--yes");
    assert.equal(done.code, 0, done.stderr);
    assert.equal((JSON.parse(done.stdout) as { replayed: number }).replayed, 2);
    await stack.sink.waitFor((a) => mine(a) === 4);

    const empty = await replay("--sender-key", SENDER_KEY, "--from", "1000", "--to", "2000");
    assert.equal(empty.code, 0);
    assert.match(
      empty.stderr,
      /^no deliveries match: received from 1970-01-01T00:00:01\.000Z .*nothing replayed\n$/,
    );
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
