// Crash suite, intake and delivery: talkgate SIGKILLed and restarted again and again while thousands of
// webhook events come in and go out. Nothing acknowledged is lost, each conversation reaches the partner
// in LINE timestamp order, serial numbers never change, and duplicates are only re-deliveries.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { generatedSha256 } from "../emulator/content-stream.ts";
import * as ev from "../emulator/events.ts";
import { startLineEmulator } from "../emulator/line-emulator.ts";
import { startPartnerSink } from "../emulator/partner-sink.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { deliveriesByState, waitingDeliveries } from "./support/deliveries.ts";
import { sleep } from "./support/partner-api.ts";
import {
  ACCESS_TOKEN,
  API_KEY,
  CHANNEL_SECRET,
  SENDER_KEY,
  SIGNING_SECRET,
  stackConfig,
} from "./support/stack.ts";
import { freePort, printOutputIfFailed, startTalkgateProcess } from "./support/talkgate-process.ts";

const CONVERSATIONS = 150; // 90 one-to-one chats, 30 groups, 30 rooms
const EVENTS_PER_CONVERSATION = 20;
const CONVERSATIONS_PER_SENDER = 2; // one webhook body may carry events of several chats, as LINE's do
const KILLS = 5;
const MAX_EVENTS_PER_BODY = 4;
const LOAD_DEADLINE_MS = 45_000;
const DRAIN_DEADLINE_MS = 30_000;
// On PostgreSQL a killed instance's leases hold its conversations and downloads until they expire (SPEC §9: no
// instance can tell that another is dead); short leases let the restarted talkgate carry on within the deadlines.
// SQLite voids them when its one process opens the file.
const LEASES =
  TEST_DATABASE === "postgres"
    ? { delivery: { timeoutMs: 1_000, leaseMs: 4_000 }, media: { leaseMs: 8_000 } }
    : { delivery: {}, media: {} };

interface Conversation {
  key: string;
  source: ev.Source;
}

interface SentEvent {
  messageId: string;
  conversation: string;
  timestamp: number;
}

function conversation(c: number): Conversation {
  const member = ev.randomUserId();
  switch (c % 5) {
    case 3: {
      const groupId = ev.randomGroupId();
      return { key: `group:${groupId}`, source: ev.groupSource(groupId, member) };
    }
    case 4: {
      const roomId = ev.randomRoomId();
      return { key: `room:${roomId}`, source: ev.roomSource(roomId, member) };
    }
    default:
      return { key: `user:${member}`, source: ev.userSource(member) };
  }
}

function conversationOf(payload: PartnerPayload): string {
  const source = payload.source as { type: string; userId?: string; groupId?: string; roomId?: string };
  const id =
    source.type === "group" ? source.groupId : source.type === "room" ? source.roomId : source.userId;
  return `${source.type}:${id}`;
}

// The i-th event of conversation c: mostly texts, some stickers and locations (all carry a message id).
function messageEvent(conv: Conversation, c: number, i: number, timestamp: number) {
  if (i % 7 === 3) return ev.stickerEvent(conv.source, {}, { timestamp });
  if (i % 11 === 5)
    return ev.locationEvent(conv.source, { latitude: 35.6 + c / 1000, longitude: 139.7 }, { timestamp });
  return ev.textEvent(conv.source, `${c}:${i}`, { timestamp });
}

test("SIGKILL again and again under load: nothing acknowledged lost, order and serial numbers kept", {
  timeout: 90_000,
}, async (t) => {
  const port = await freePort();
  const emulator = await startLineEmulator({
    channels: [
      {
        channelId: SENDER_KEY,
        channelSecret: CHANNEL_SECRET,
        accessToken: ACCESS_TOKEN,
        webhookUrl: `http://127.0.0.1:${port}/line/webhook/${SENDER_KEY}`,
      },
    ],
  });
  const sink = await startPartnerSink({ signingSecret: SIGNING_SECRET });
  // The partner is a little slow and now and then fails (every 40th request answers 503), so that kills
  // land on deliveries in flight and on conversations waiting for a retry.
  let partnerRequests = 0;
  sink.respondWith(() => {
    partnerRequests++;
    if (partnerRequests % 40 === 0) return { status: 503 };
    return { status: 200, delayMs: partnerRequests % 5 };
  });
  const talkgate = await startTalkgateProcess(
    stackConfig(emulator.url, sink.url, {
      config: { delivery: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 100, ...LEASES.delivery } },
    }),
    port,
  );
  t.after(() => printOutputIfFailed(t, talkgate));

  const conversations = Array.from({ length: CONVERSATIONS }, (_, c) => conversation(c));
  const sentEvents = new Map<string, SentEvent>();
  let acknowledged = 0;
  let bodies = 0;
  let redeliveredBodies = 0;
  let redeliveredEvents = 0;
  let failedAnswers = 0;
  const acknowledgedIds = new Set<string>();
  const t0 = Date.now() - 60_000;

  // Each sender (a LINE delivery lane) posts its chats' events in timestamp order, 1 to 4 per body; a body
  // not answered 200 within 2 s is posted again, marked as a redelivery, until it is, as LINE does.
  const senders = Array.from({ length: CONVERSATIONS / CONVERSATIONS_PER_SENDER }, async (_, s) => {
    const events = [];
    for (let k = 0; k < CONVERSATIONS_PER_SENDER; k++) {
      const c = s * CONVERSATIONS_PER_SENDER + k;
      const conv = conversations[c] as Conversation;
      for (let i = 0; i < EVENTS_PER_CONVERSATION; i++) {
        const timestamp = t0 + i * 1_000 + c;
        const event = messageEvent(conv, c, i, timestamp);
        sentEvents.set(event.message.id, { messageId: event.message.id, conversation: conv.key, timestamp });
        events.push(event);
      }
    }
    events.sort((a, b) => a.timestamp - b.timestamp);
    const deadline = Date.now() + LOAD_DEADLINE_MS;
    for (let next = 0; next < events.length; ) {
      const body = events.slice(next, next + 1 + ((next + s) % MAX_EVENTS_PER_BODY));
      next += body.length;
      bodies++;
      for (let attempt = 0; ; attempt++) {
        assert.ok(Date.now() < deadline, "the load finished in time");
        if (attempt > 0) {
          redeliveredBodies++;
          redeliveredEvents += body.length;
        }
        const result = await emulator
          .sendWebhook(SENDER_KEY, attempt === 0 ? body : body.map((e) => ev.redelivered(e)), {
            timeoutMs: 2_000,
          })
          .catch(() => null);
        if (result?.status === 200) break;
        failedAnswers++;
        await sleep(50);
      }
      for (const event of body) acknowledgedIds.add(event.message.id);
      acknowledged += body.length;
    }
  });
  const load = Promise.all(senders);

  const total = CONVERSATIONS * EVENTS_PER_CONVERSATION;
  const distinctDelivered = () => new Set(sink.accepted.map((p) => (p as PartnerPayload).content.id)).size;
  const atKills: string[] = [];
  const started = Date.now();
  try {
    // Kill when the load is 1/6, 2/6, … 5/6 acknowledged: every kill lands mid-load on any machine.
    for (let kill = 1; kill <= KILLS; kill++) {
      const threshold = Math.floor((total * kill) / (KILLS + 1));
      const deadline = Date.now() + LOAD_DEADLINE_MS;
      while (acknowledged < threshold && Date.now() < deadline) await sleep(5);
      atKills.push(`${acknowledged} acknowledged/${distinctDelivered()} delivered`);
      await talkgate.killAndRestart();
    }
    await load;
    await sink.waitFor(() => distinctDelivered() >= total, DRAIN_DEADLINE_MS);
    // Let the outbox empty, so that every re-delivery is counted.
    const drainDeadline = Date.now() + DRAIN_DEADLINE_MS;
    while (Date.now() < drainDeadline) {
      const waiting = await waitingDeliveries(talkgate);
      if (waiting.pending + waiting.retrying === 0) break;
      await sleep(50);
    }
    const elapsed = Date.now() - started;

    const payloads = sink.accepted as PartnerPayload[];
    const firstPayload = new Map<string, string>();
    const serialOf = new Map<string, string>();
    let duplicates = 0;
    let duplicatesNotIdentical = 0;
    let serialChanges = 0;
    let unknown = 0;
    const deliveredOrder = new Map<string, number[]>();
    for (const payload of payloads) {
      const id = payload.content.id as string;
      const sent = sentEvents.get(id);
      if (!sent) {
        unknown++;
        continue;
      }
      const json = JSON.stringify(payload);
      const first = firstPayload.get(id);
      if (first !== undefined) {
        duplicates++;
        if (first !== json) duplicatesNotIdentical++;
        if (serialOf.get(id) !== payload.serial_number) serialChanges++;
        continue;
      }
      firstPayload.set(id, json);
      serialOf.set(id, payload.serial_number);
      assert.equal(conversationOf(payload), sent.conversation, `message ${id} kept its source`);
      const order = deliveredOrder.get(sent.conversation) ?? [];
      order.push(sent.timestamp);
      deliveredOrder.set(sent.conversation, order);
    }
    const lost = [...acknowledgedIds].filter((id) => !serialOf.has(id));
    let orderViolations = 0;
    for (const timestamps of deliveredOrder.values()) {
      for (let i = 1; i < timestamps.length; i++)
        if ((timestamps[i] as number) < (timestamps[i - 1] as number)) orderViolations++;
    }
    // Every event stored, relayed or not (no API lists events that are not relayed).
    const [stored] = await talkgate.query<{ events: number; serials: number }>(
      "SELECT count(*) AS events, count(DISTINCT serial_number) AS serials FROM events",
    );
    const states = Object.entries(await deliveriesByState(talkgate)).map(([state, n]) => ({ state, n }));

    console.log(
      [
        `crash suite (intake and delivery): ${CONVERSATIONS} conversations, ${elapsed} ms under load and drain`,
        `  events sent ${total} in ${bodies} webhook bodies; acknowledged ${acknowledged}`,
        `  webhooks not answered 200 (refused connection, timeout, 5xx) ${failedAnswers}; ` +
          `redelivered ${redeliveredBodies} bodies (${redeliveredEvents} events)`,
        `  kills survived ${talkgate.kills} (at ${atKills.join(", ")}); SIGKILL to ready again ` +
          `${talkgate.restartMs.join(", ")} ms`,
        `  events stored ${stored?.events} with ${stored?.serials} serial numbers; deliveries ${states
          .map((s) => `${s.state} ${s.n}`)
          .join(", ")}`,
        `  partner requests ${sink.received.length}, accepted ${payloads.length}, distinct events ${serialOf.size}`,
        `  lost ${lost.length}; order violations ${orderViolations}; serial_number changes ${serialChanges}`,
        `  duplicate re-deliveries ${duplicates} (not identical to the first delivery: ${duplicatesNotIdentical})`,
      ].join("\n"),
    );

    assert.equal(acknowledged, total, "every event was acknowledged in the end");
    assert.equal(talkgate.kills, KILLS);
    assert.ok(failedAnswers > 0, "the kills interrupted the load (otherwise this test proves nothing)");
    assert.deepEqual(lost, [], "no acknowledged event is lost");
    assert.equal(unknown, 0, "the partner received nothing that was not sent");
    assert.equal(orderViolations, 0, "each conversation reached the partner in LINE timestamp order");
    assert.equal(serialChanges, 0, "a re-delivered event keeps its serial_number");
    assert.equal(duplicatesNotIdentical, 0, "a duplicate is the same payload again");
    assert.equal(new Set(serialOf.values()).size, serialOf.size, "serial numbers are unique");
    assert.equal(stored?.events, total, "redeliveries stored nothing twice");
    assert.equal(stored?.serials, total);
    assert.deepEqual(states, [{ state: "delivered", n: total }], "every delivery is recorded as delivered");
    assert.ok(
      sink.received.every((r) => r.signatureValid === true),
      "every delivery is signed",
    );
  } finally {
    await talkgate.close();
    await emulator.close();
    await sink.close();
  }
});

test("SIGKILL in the middle of attachment downloads: no truncated attachment is ever served", {
  timeout: 60_000,
}, async (t) => {
  const port = await freePort();
  const emulator = await startLineEmulator({
    channels: [
      {
        channelId: SENDER_KEY,
        channelSecret: CHANNEL_SECRET,
        accessToken: ACCESS_TOKEN,
        webhookUrl: `http://127.0.0.1:${port}/line/webhook/${SENDER_KEY}`,
      },
    ],
  });
  const sink = await startPartnerSink();
  const talkgate = await startTalkgateProcess(
    stackConfig(emulator.url, sink.url, {
      config: {
        delivery: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 100, ...LEASES.delivery },
        media: { initialBackoffMs: 50, maxBackoffMs: 200, pollMs: 50, ...LEASES.media },
        // The partner polls all along: its calls must not run into the per-key rate limit.
        partnerApi: { rateLimitMax: 1_000_000 },
      },
    }),
    port,
  );
  t.after(() => printOutputIfFailed(t, talkgate));
  const MiB = 1024 * 1024;
  const source = ev.userSource(ev.randomUserId());
  // LINE serves each body slowly (1.5 to 2 MiB/s), so that every kill lands mid-body.
  const attachments = [
    { event: ev.videoEvent(source, { duration: 10_000 }), size: 3 * MiB + 1, type: "video/mp4" },
    { event: ev.videoEvent(source, { duration: 10_000 }), size: 3 * MiB + 2, type: "video/mp4" },
    { event: ev.audioEvent(source, { duration: 10_000 }), size: 2 * MiB + 3, type: "audio/m4a" },
    { event: ev.imageEvent(source), size: 1 * MiB + 4, type: "image/jpeg" },
    { event: ev.imageEvent(source), size: 1 * MiB + 5, type: "image/png" },
    {
      event: ev.fileEvent(source, { fileName: "계약서.pdf", fileSize: 2 * MiB + 6 }),
      size: 2 * MiB + 6,
      type: "application/pdf",
    },
  ].map((a, seed) => ({ ...a, id: a.event.message.id, seed }));
  for (const a of attachments) {
    emulator.setContent(a.id, {
      generated: { size: a.size, seed: a.seed },
      contentType: a.type,
      bytesPerSecond: 1.5 * MiB + a.seed * 100 * 1024,
    });
  }
  const attachment = (serialNumber: string, method: "GET" | "HEAD") =>
    fetch(`${talkgate.url}/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${serialNumber}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}` },
      signal: AbortSignal.timeout(10_000),
    });

  let polling = true;
  let polls = 0;
  let notReadyAnswers = 0;
  let truncatedServed = 0;
  const started = Date.now();
  try {
    const result = await emulator.sendWebhook(
      SENDER_KEY,
      attachments.map((a) => a.event),
    );
    assert.equal(result.status, 200, result.body);
    // The partner learns them only once each attachment is stored; its polls start before.
    const serialOf = new Map(
      (
        await talkgate.query<{ message_id: string; serial_number: string }>(
          "SELECT message_id, serial_number FROM events",
        )
      ).map((row) => [row.message_id, row.serial_number]),
    );
    // A partner polls every attachment all along: whatever it is told, a 200 must be the whole content.
    const poller = (async () => {
      while (polling) {
        for (const a of attachments) {
          polls++;
          const response = await attachment(serialOf.get(a.id) ?? "", "HEAD").catch(() => null);
          if (response?.status === 202) notReadyAnswers++;
          if (response?.status === 200 && response.headers.get("content-length") !== String(a.size))
            truncatedServed++;
        }
        await sleep(25);
      }
    })();

    // Two kills, each while downloads are in the middle of their bodies.
    for (let kill = 0; kill < 2; kill++) {
      await sleep(700);
      await talkgate.killAndRestart();
    }
    const deadline = Date.now() + 30_000;
    const stored = async () =>
      (await talkgate.query<{ n: number }>("SELECT count(*) AS n FROM media WHERE state = 'stored'"))[0]?.n ??
      0;
    while ((await stored()) < attachments.length && Date.now() < deadline) await sleep(50);
    await sink.waitFor((accepted) => accepted.length >= attachments.length, 10_000);
    polling = false;
    await poller;

    let byteExact = 0;
    for (const a of attachments) {
      const response = await attachment(serialOf.get(a.id) ?? "", "GET");
      const bytes = new Uint8Array(await response.arrayBuffer());
      const hash = createHash("sha256").update(bytes).digest("hex");
      if (
        response.status === 200 &&
        bytes.length === a.size &&
        hash === (await generatedSha256(a.size, a.seed))
      )
        byteExact++;
    }
    // Files still being written: in mediaDir/.incoming (emptied when the one process starts), or on PostgreSQL
    // rows of `files` named .incoming/… (another instance may still be writing one: they go once older than
    // media.leaseMs, at a start or the hourly prune). There, a last restart after the lease shows them gone.
    const incoming = join(talkgate.dir, "media", ".incoming");
    const partialRows = async () =>
      (
        await talkgate.query<{ n: number }>(
          "SELECT count(*) AS n FROM files WHERE starts_with(name, '.incoming/')",
        )
      )[0]?.n ?? 0;
    let partialFiles: number;
    if (TEST_DATABASE === "postgres") {
      await sleep(LEASES.media.leaseMs ?? 0);
      await talkgate.killAndRestart();
      const deadline = Date.now() + 10_000;
      partialFiles = await partialRows();
      while (partialFiles > 0 && Date.now() < deadline) {
        await sleep(50);
        partialFiles = await partialRows();
      }
    } else partialFiles = existsSync(incoming) ? readdirSync(incoming).length : 0;
    const requests = attachments.map((a) => emulator.contentRequests(a.id));
    const totalBytes = attachments.reduce((sum, a) => sum + a.size, 0);

    console.log(
      [
        `crash suite (attachments): ${attachments.length} attachments, ${(totalBytes / MiB).toFixed(1)} MiB, ` +
          `${Date.now() - started} ms`,
        `  kills survived ${talkgate.kills} mid-download; content requests to LINE per attachment ${requests.join(", ")}`,
        `  partner polls ${polls} (202 not ready ${notReadyAnswers}); truncated attachments served ${truncatedServed}`,
        `  byte-exact after the kills ${byteExact} of ${attachments.length}; partial files left ${partialFiles}; ` +
          `relayed to the partner ${sink.accepted.length}`,
      ].join("\n"),
    );

    assert.ok(
      requests.some((n) => n > 1),
      "a kill cut a download off (otherwise this test proves nothing)",
    );
    assert.equal(truncatedServed, 0, "no attachment was served truncated");
    assert.equal(byteExact, attachments.length, "every attachment is served whole after the kills");
    assert.equal(partialFiles, 0, "no partial file is left behind");
  } finally {
    polling = false;
    await talkgate.close();
    await emulator.close();
    await sink.close();
  }
});
