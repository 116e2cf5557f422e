// The talkgate command line: `serve` runs the relay, `emulator` the LINE platform emulator, `dev` both with a demo partner.
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type TalkgateConfig } from "../src/config/config.ts";
import { startTalkgate } from "../src/main.ts";
import { settleAfterStart } from "../src/settle-after-start.ts";

const USAGE = `usage: talkgate <command> [options]

commands:
  serve     [--config FILE]   run talkgate (webhook intake, partner API, workers)
  emulator  [--config FILE] [--port N]
                              run the LINE platform emulator for the channels in FILE
  dev       [--config FILE]   run talkgate, the LINE emulator and a demo partner that prints
                              what it receives (development only; used by npm start)
  deliveries list   [--sender-key K] [--state pending|retrying|delivered|dead] [--limit N]
  deliveries replay --sender-key K (--serial S [--serial S …] | --from TIME [--to TIME]) [--state S]
                              list or replay deliveries of a running talkgate (through its partner
                              API, with the channel's partner key from the configuration);
                              TIME is ISO 8601 or Unix ms; --url overrides the address

--config defaults to talkgate.config.json. Secrets may come from the environment: see docs/configuration.md.`;

// The LINE user the dev setup's hint speaks as; the emulator knows their profile.
const DEMO_USER = "U4af4980629f3b4a1c2d3e4f5a6b7c8d9";

/** Runs one talkgate command; `argv` is the command line after the script (`serve --config FILE`). */
export async function runCli(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", default: "talkgate.config.json" },
      port: { type: "string" },
      help: { type: "boolean" },
      url: { type: "string" },
      "sender-key": { type: "string" },
      state: { type: "string" },
      limit: { type: "string" },
      serial: { type: "string", multiple: true },
      from: { type: "string" },
      to: { type: "string" },
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
  if (command === "deliveries") return deliveries(config, positionals[1], values);
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
  settleAfterStart();
}

async function emulator(config: TalkgateConfig, port?: number, httpMediaOrigins?: string[]) {
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
    ...(httpMediaOrigins && { httpMediaOrigins }),
  });
  console.log(`LINE emulator on ${emu.url} (control API under ${emu.url}/_emulator)`);
  onShutdown(() => emu.close());
  return emu;
}

async function dev(config: TalkgateConfig): Promise<void> {
  const { startPartnerSink } = await import("../emulator/partner-sink.ts");
  // talkgate's own uploads are served at publicBaseUrl, plain http in development: let the emulator take
  // them (LINE itself would refuse anything but https).
  const publicOrigin = new URL(config.publicBaseUrl);
  const emu = await emulator(
    config,
    undefined,
    publicOrigin.protocol === "http:" ? [publicOrigin.origin] : [],
  );
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

interface DeliveryOptions {
  url?: string | undefined;
  "sender-key"?: string | undefined;
  state?: string | undefined;
  limit?: string | undefined;
  serial?: string[] | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

/** `talkgate deliveries list|replay`: calls the running talkgate's partner API with a key from the config. */
async function deliveries(
  config: TalkgateConfig,
  action: string | undefined,
  options: DeliveryOptions,
): Promise<void> {
  const senderKey = options["sender-key"];
  const channel = config.channels.find((c) => c.senderKey === (senderKey ?? config.channels[0]?.senderKey));
  const key = config.partners.find((p) => p.id === channel?.partner)?.apiKeys[0];
  if (!channel || !key) {
    console.error(`no channel ${senderKey ?? ""} with a partner API key in the configuration`);
    process.exitCode = 2;
    return;
  }
  const host = ["0.0.0.0", "::"].includes(config.listen.host) ? "127.0.0.1" : config.listen.host;
  const base = options.url ?? `http://${host}:${config.listen.port}`;
  const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  const time = (value: string | undefined) =>
    value === undefined ? undefined : /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  let response: Response;
  if (action === "list") {
    const query = new URLSearchParams({ sender_key: channel.senderKey, limit: options.limit ?? "100" });
    if (options.state) query.set("state", options.state);
    response = await fetch(`${base}/line/deliveries?${query}`, { headers });
  } else if (action === "replay") {
    const body = {
      sender_key: channel.senderKey,
      serial_numbers: options.serial,
      state: options.state,
      from: time(options.from),
      to: time(options.to),
    };
    response = await fetch(`${base}/line/deliveries/replay`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
  } else {
    console.error(`usage: talkgate deliveries list|replay …\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  console.log(JSON.stringify(await response.json(), null, 2));
  if (!response.ok) process.exitCode = 1;
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
