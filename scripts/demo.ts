// npm run demo: plays a scripted LINE conversation through emulator → talkgate → partner and shows what the partner got.
// It uses the stack `npm start` runs when there is one (the payloads then print in that terminal), else a stack of its own.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import * as ev from "../emulator/events.ts";
import { startLineEmulator } from "../emulator/line-emulator.ts";
import { startPartnerSink } from "../emulator/partner-sink.ts";
import { loadConfig, parseConfig } from "../src/config/config.ts";
import { startTalkgate } from "../src/main.ts";

/** The conversation: what the user does, and the event LINE sends for it. */
interface DemoProfile {
  userId: string;
  displayName: string;
  groupId?: string;
}

function conversation(): { script: Array<[string, object]>; profiles: DemoProfile[] } {
  const user = "Uae87c693e2897ccc4c7654acd04f9259";
  const group = ev.randomGroupId();
  const member = ev.randomUserId();
  const t = Date.now();
  const me = ev.userSource(user);
  const script: Array<[string, object]> = [
    ["a text", ev.textEvent(me, "안녕하세요, 주문 문의드립니다 🍎", { timestamp: t })],
    [
      "a long text (cut to 300 characters)",
      ev.textEvent(me, "긴 메시지입니다. ".repeat(120), { timestamp: t + 1 }),
    ],
    [
      "a sticker",
      ev.stickerEvent(
        me,
        { packageId: "11537", stickerId: "52002738", stickerResourceType: "ANIMATION" },
        { timestamp: t + 2 },
      ),
    ],
    [
      "a location",
      ev.locationEvent(
        me,
        { title: "my location", address: "Tokyo", latitude: 35.67966, longitude: 139.73669 },
        { timestamp: t + 3 },
      ),
    ],
    [
      "a postback",
      ev.postbackEvent(
        me,
        { data: "storeId=12345", params: { datetime: "2021-09-27T13:11" } },
        { timestamp: t + 4 },
      ),
    ],
    ["a group message", ev.textEvent(ev.groupSource(group, member), "สวัสดีครับ", { timestamp: t + 5 })],
    [
      "a standby event",
      ev.textEvent(me, "while another module holds the chat", { timestamp: t + 6, mode: "standby" }),
    ],
  ];
  const profiles: DemoProfile[] = [
    { userId: user, displayName: "홍길동" },
    { groupId: group, userId: member, displayName: "สมชาย" },
  ];
  return { script, profiles };
}

// The stack `npm start` runs (talkgate.config.json): its emulator's control API and talkgate both answer.
const running = await (async () => {
  try {
    const config = loadConfig("talkgate.config.json");
    const emulator = config.line.apiBaseUrl;
    const ok = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok;
    const talkgate = `http://127.0.0.1:${config.listen.port}`;
    if ((await ok(`${emulator}/_emulator/channels`)) && (await ok(`${talkgate}/healthz`))) {
      return { config, emulator, talkgate };
    }
  } catch {
    // nothing runs there
  }
  return null;
})();

const { script, profiles } = conversation();
if (running) await throughRunningStack(running);
else await throughOwnStack();

async function throughRunningStack({ config, emulator, talkgate }: NonNullable<typeof running>) {
  const channel = config.channels[0];
  const key = config.partners.find((p) => p.id === channel?.partner)?.apiKeys[0];
  if (!channel || !key) throw new Error("talkgate.config.json has no channel with a partner API key");
  console.log(
    `Playing the conversation through the running stack (talkgate ${talkgate}, LINE emulator ${emulator});`,
  );
  console.log("its demo partner prints each payload in the terminal of npm start.\n");
  const post = (path: string, body: unknown) =>
    fetch(`${emulator}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  for (const profile of profiles) await post("/_emulator/profiles", profile);
  const from = Date.now();
  for (const [what, event] of script) {
    const answer = (await (
      await post(`/_emulator/channels/${channel.senderKey}/webhook`, { events: [event] })
    ).json()) as {
      status: number;
    };
    console.log(`LINE user sends ${what}: talkgate answered ${answer.status}`);
  }
  // What talkgate delivered, as its deliveries API tells (the same key the partner has).
  const query = new URLSearchParams({ sender_key: channel.senderKey, from: String(from), limit: "100" });
  let deliveries: Array<{ serial_number: string; event_type: string; state: string }> = [];
  for (let tries = 0; tries < 100; tries++) {
    const listed = (await (
      await fetch(`${talkgate}/line/deliveries?${query}`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { deliveries: typeof deliveries };
    deliveries = listed.deliveries;
    if (deliveries.length >= script.length && deliveries.every((d) => d.state === "delivered")) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log("\ntalkgate's deliveries to the partner:");
  for (const d of deliveries) console.log(`  ${d.serial_number}  ${d.event_type}  ${d.state}`);
}

async function throughOwnStack() {
  console.log(
    "No npm start stack answers on talkgate.config.json's ports: running a stack of its own on free ports.\n",
  );
  const SENDER_KEY = "1656168303";
  const SECRET = "demo-channel-secret";
  const TOKEN = "demo-channel-access-token";
  const dir = mkdtempSync(join(tmpdir(), "talkgate-demo-"));
  const emulator = await startLineEmulator({
    channels: [{ channelId: SENDER_KEY, channelSecret: SECRET, accessToken: TOKEN }],
  });
  const sink = await startPartnerSink();
  const config = parseConfig(
    {
      listen: { host: "127.0.0.1", port: 0 },
      database: "sqlite:./talkgate.db",
      line: { apiBaseUrl: emulator.url, dataApiBaseUrl: emulator.url },
      partners: [{ id: "demo", receiveUrl: `${sink.url}/line`, allowPrivateNetwork: true }],
      channels: [
        { senderKey: SENDER_KEY, channelSecret: SECRET, channelAccessToken: TOKEN, partner: "demo" },
      ],
    },
    { baseDir: dir },
  );
  const talkgate = await startTalkgate(config, { logger: pino({ level: "warn" }) });
  emulator.setWebhookUrl(SENDER_KEY, `${talkgate.url}/line/webhook/${SENDER_KEY}`);
  for (const { userId, displayName, groupId } of profiles) {
    if (groupId) emulator.setGroupMemberProfile(groupId, userId, { displayName });
    else emulator.setProfile(userId, { displayName });
  }
  for (const [what, event] of script) {
    const answer = await emulator.sendWebhook(SENDER_KEY, [event]);
    console.log(`LINE user sends ${what}: talkgate answered ${answer.status}`);
  }
  await sink.waitFor((accepted) => accepted.length === script.length);
  for (const payload of sink.accepted)
    console.log(`\npartner received:\n${JSON.stringify(payload, null, 2)}`);

  await talkgate.close();
  await emulator.close();
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}
