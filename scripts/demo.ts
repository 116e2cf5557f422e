// npm run demo: plays a scripted LINE conversation through emulator → talkgate → partner and prints what the partner got.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import * as ev from "../emulator/events.ts";
import { startLineEmulator } from "../emulator/line-emulator.ts";
import { startPartnerSink } from "../emulator/partner-sink.ts";
import { parseConfig } from "../src/config/config.ts";
import { startTalkgate } from "../src/main.ts";

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
    channels: [{ senderKey: SENDER_KEY, channelSecret: SECRET, channelAccessToken: TOKEN, partner: "demo" }],
  },
  { baseDir: dir },
);
const talkgate = await startTalkgate(config, { logger: pino({ level: "warn" }) });
emulator.setWebhookUrl(SENDER_KEY, `${talkgate.url}/line/webhook/${SENDER_KEY}`);

const user = "Uae87c693e2897ccc4c7654acd04f9259";
const group = ev.randomGroupId();
const member = ev.randomUserId();
emulator.setProfile(user, { displayName: "홍길동" });
emulator.setGroupMemberProfile(group, member, { displayName: "สมชาย" });

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

for (const [what, event] of script) {
  const answer = await emulator.sendWebhook(SENDER_KEY, [event]);
  console.log(`LINE user sends ${what}: talkgate answered ${answer.status}`);
}
await sink.waitFor((accepted) => accepted.length === script.length);
for (const payload of sink.accepted) console.log(`\npartner received:\n${JSON.stringify(payload, null, 2)}`);

await talkgate.close();
await emulator.close();
await sink.close();
rmSync(dir, { recursive: true, force: true });
