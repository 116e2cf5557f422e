#!/usr/bin/env node
// The talkgate command line: `serve` runs the relay, `emulator` the LINE platform emulator, `dev` both with a demo partner.
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type TalkgateConfig } from "../src/config/config.ts";
import { startTalkgate } from "../src/main.ts";

const USAGE = `usage: talkgate <command> [options]

commands:
  serve     [--config FILE]   run talkgate (webhook intake, partner API, workers)
  emulator  [--config FILE] [--port N]
                              run the LINE platform emulator for the channels in FILE
  dev       [--config FILE]   run talkgate, the LINE emulator and a demo partner that prints
                              what it receives (development only; used by npm start)

--config defaults to talkgate.config.json. Secrets may come from the environment: see docs/configuration.md.`;

// The LINE user the dev setup's hint speaks as; the emulator knows their profile.
const DEMO_USER = "U4af4980629f3b4a1c2d3e4f5a6b7c8d9";

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", default: "talkgate.config.json" },
      port: { type: "string" },
      help: { type: "boolean" },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  const config = readConfig(values.config);
  if (command === "serve") return serve(config);
  if (command === "emulator") {
    await emulator(config, values.port ? Number(values.port) : undefined);
    return;
  }
  if (command === "dev") return dev(config);
  console.error(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exitCode = 2;
}

function readConfig(path: string): TalkgateConfig {
  try {
    return loadConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

async function serve(config: TalkgateConfig): Promise<void> {
  const talkgate = await startTalkgate(config);
  onShutdown(() => talkgate.close());
}

async function emulator(config: TalkgateConfig, port?: number) {
  const { startLineEmulator } = await import("../emulator/line-emulator.ts");
  const apiUrl = new URL(config.line.apiBaseUrl);
  const talkgateUrl = `http://127.0.0.1:${config.listen.port}`;
  const emu = await startLineEmulator({
    host: apiUrl.hostname,
    port: port ?? Number(apiUrl.port),
    channels: config.channels.map((c) => ({
      channelId: c.senderKey,
      channelSecret: c.channelSecret,
      accessToken: c.channelAccessToken ?? "",
      webhookUrl: `${talkgateUrl}/line/webhook/${c.senderKey}`,
    })),
  });
  console.log(`LINE emulator on ${emu.url} (control API under ${emu.url}/_emulator)`);
  onShutdown(() => emu.close());
  return emu;
}

async function dev(config: TalkgateConfig): Promise<void> {
  const { startPartnerSink } = await import("../emulator/partner-sink.ts");
  const emu = await emulator(config);
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
  const talkgate = await startTalkgate(config);
  onShutdown(async () => {
    await talkgate.close();
    await Promise.all(sinks.map((sink) => sink.close()));
  });
  const channel = config.channels[0];
  if (channel) {
    console.log(`talkgate on ${talkgate.url}; make a LINE user say something:
  curl -s -X POST ${emu.url}/_emulator/channels/${channel.senderKey}/say -H 'content-type: application/json' \\
    -d '{"userId":"${DEMO_USER}","text":"Hello talkgate"}'
or play a whole scripted conversation with: npm run demo`);
  }
}

/** Runs `close` once on SIGINT or SIGTERM, then exits. */
function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: string) => {
    if (closing) return;
    closing = true;
    console.error(`${signal}: shutting down`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
