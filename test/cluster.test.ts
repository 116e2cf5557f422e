// The cluster suite (SPEC §9): three `talkgate serve` processes on one real PostgreSQL, webhooks spread over
// them round-robin, retries going to another instance. Instances SIGKILLed under load, PostgreSQL itself
// restarted under load: nothing acknowledged lost, each conversation in LINE timestamp order, serial numbers
// stable; attachments and long texts served by instances that did not receive them; one send per serial.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { allDeliveries, type Cluster, startCluster } from "./support/cluster.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { png } from "./support/media-fixtures.ts";
import { sleep } from "./support/partner-api.ts";
import { type PostgresServer, startPostgres } from "./support/postgres.ts";
import { auditRelay, type SentEvent } from "./support/relay-audit.ts";
import { API_KEY, SENDER_KEY } from "./support/stack.ts";
import { printOutputIfFailed, type TalkgateProcess } from "./support/talkgate-process.ts";

const INSTANCES = 3;
const LOAD_DEADLINE_MS = 60_000;
const DRAIN_DEADLINE_MS = 45_000;

const PNG_BYTES = png();
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** `conversations` chats, each sending `perConversation` texts, in timestamp order per chat. */
function chats(conversations: number, perConversation: number) {
  const sent = new Map<string, SentEvent>();
  const t0 = Date.now() - 60_000;
  const lanes = Array.from({ length: conversations }, (_, c) => {
    const user = ev.randomUserId();
    return Array.from({ length: perConversation }, (_, i) => {
      const timestamp = t0 + i * 1_000 + c;
      const event = ev.textEvent(ev.userSource(user), `${c}:${i}`, { timestamp });
      sent.set(event.message.id, { conversation: `user:${user}`, timestamp });
      return event;
    });
  });
  return { sent, lanes };
}

describe("a cluster of three instances on one PostgreSQL", {
  skip:
    TEST_DATABASE !== "postgres" &&
    "a cluster runs on PostgreSQL: this suite runs in npm run test:integration:postgres",
}, () => {
  let server: PostgresServer;
  let cluster: Cluster;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.stop());

  const start = async (
    t: { after(fn: () => unknown): void; name: string },
    options?: Parameters<typeof startCluster>[2],
  ) => {
    cluster = await startCluster(await server.createDatabase(), INSTANCES, options);
    t.after(async () => {
      for (const instance of cluster.instances) printOutputIfFailed(t, instance);
      await cluster.close();
    });
    return cluster;
  };

  /**
   * Sends every lane's events (1 to 3 per body) through the round-robin, all lanes at once; resolves with
   * the message ids acknowledged and how many bodies needed more than one attempt.
   */
  async function load(lanes: ReturnType<typeof chats>["lanes"], acknowledged: Set<string>, pauseMs = 0) {
    let retried = 0;
    const deadline = Date.now() + LOAD_DEADLINE_MS;
    await Promise.all(
      lanes.map(async (events, lane) => {
        for (let next = 0; next < events.length; ) {
          const body = events.slice(next, next + 1 + ((next + lane) % 3));
          next += body.length;
          const { attempts } = await cluster.sendWebhook(body, deadline);
          if (attempts > 1) retried++;
          for (const event of body) acknowledged.add(event.message.id);
          if (pauseMs > 0) await sleep(pauseMs);
        }
      }),
    );
    return retried;
  }

  async function drained(total: number) {
    const distinct = () => new Set(cluster.sink.accepted.map((p) => (p as PartnerPayload).content.id)).size;
    await cluster.sink.waitFor(() => distinct() >= total, DRAIN_DEADLINE_MS);
    const deadline = Date.now() + DRAIN_DEADLINE_MS;
    for (;;) {
      const deliveries = await allDeliveries(cluster, 1);
      if (deliveries.every((d) => d.state === "delivered") || Date.now() > deadline) return deliveries;
      await sleep(100);
    }
  }

  test("instances SIGKILLed at random under load: 0 acknowledged events lost, 0 order violations, 0 serial changes", {
    timeout: 180_000,
  }, async (t) => {
    // A little slow, and now and then failing, so that kills land on deliveries in flight and on retries.
    let requests = 0;
    await start(t, {
      partnerRespond: () => {
        requests++;
        return requests % 40 === 0 ? { status: 503 } : { status: 200, delayMs: requests % 5 };
      },
    });
    // Paced (each chat a body every 300 ms at most), so that the kills, a second or two each, land mid-load.
    const { sent, lanes } = chats(40, 30);
    const total = sent.size;
    const acknowledged = new Set<string>();
    const loading = load(lanes, acknowledged, 300);
    // Four kills at 1/5 … 4/5 of the load acknowledged, each of an instance that is up (a restart runs on
    // while the load goes on, so that the kills land mid-load; one instance is always up).
    const kills: string[] = [];
    const restarting = new Map<number, Promise<void>>();
    let seed = 7;
    for (let kill = 1; kill <= 4; kill++) {
      while (acknowledged.size < (total * kill) / 5) await sleep(5);
      while (restarting.size >= INSTANCES - 1) await Promise.race(restarting.values());
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const up = cluster.instances.map((_, i) => i).filter((i) => !restarting.has(i));
      const victim = up[seed % up.length] as number;
      kills.push(`instance ${victim} at ${acknowledged.size} acknowledged`);
      restarting.set(
        victim,
        (cluster.instances[victim] as TalkgateProcess)
          .killAndRestart()
          .finally(() => restarting.delete(victim)),
      );
    }
    await Promise.all(restarting.values());
    const retried = await loading;
    const deliveries = await drained(total);

    const audit = auditRelay(sent, acknowledged, cluster.sink.accepted as PartnerPayload[]);
    const perInstance = cluster.instances.map((_, i) => cluster.acknowledgedBy.filter((x) => x === i).length);
    t.diagnostic(
      `${total} events; kills: ${kills.join(", ")}; bodies acknowledged per instance ${perInstance.join("/")}; ` +
        `bodies retried on another instance ${retried}; duplicates ${audit.duplicates}`,
    );
    assert.equal(acknowledged.size, total, "every event was acknowledged in the end");
    assert.ok(retried > 0, "the kills interrupted the load (else this test proves nothing)");
    assert.ok(
      perInstance.every((n) => n > 0),
      "every instance took webhooks",
    );
    assert.deepEqual(audit.lost, [], "no acknowledged event is lost");
    assert.equal(audit.unknown, 0, "the partner received nothing that was not sent");
    assert.equal(audit.orderViolations, 0, "each conversation reached the partner in LINE timestamp order");
    assert.equal(audit.serialChanges, 0, "a re-delivered event keeps its serial_number");
    assert.equal(audit.duplicatesNotIdentical, 0, "a duplicate is the same payload again");
    assert.equal(new Set(audit.serialOf.values()).size, total, "serial numbers are unique");
    assert.equal(deliveries.length, total, "a redelivery to another instance is stored once");
    assert.deepEqual(
      [...new Set(deliveries.map((d) => d.state))],
      ["delivered"],
      "every delivery is recorded as delivered",
    );
    assert.ok(
      cluster.sink.received.every((r) => r.signatureValid === true),
      "every delivery is signed",
    );
  });

  test("PostgreSQL restarted under load: 5xx while it is down, nothing acknowledged lost, delivery resumes", {
    timeout: 180_000,
  }, async (t) => {
    await start(t);
    const { sent, lanes } = chats(30, 20);
    const total = sent.size;
    const acknowledged = new Set<string>();
    const loading = load(lanes, acknowledged);
    while (acknowledged.size < total / 3) await sleep(5);
    await server.down();
    // While it is down, a webhook is refused with a 5xx in time (never a 200 it could not store).
    const probe = ev.textEvent(ev.userSource(ev.randomUserId()), "while the database is down");
    const answers = await Promise.all(
      cluster.instances.map((instance) =>
        cluster.emulator
          .sendWebhook(SENDER_KEY, [probe], {
            url: `${instance.url}/line/webhook/${SENDER_KEY}`,
            timeoutMs: 5_000,
          })
          .then((r) => r.status),
      ),
    );
    const ready = await Promise.all(
      cluster.instances.map((instance) => fetch(`${instance.url}/readyz`).then((r) => r.status)),
    );
    await sleep(1_000);
    const acknowledgedWhileDown = acknowledged.size;
    await server.up();
    const retried = await loading;
    const deliveries = await drained(total);

    const audit = auditRelay(sent, acknowledged, cluster.sink.accepted as PartnerPayload[]);
    t.diagnostic(
      `${total} events; down at ${acknowledgedWhileDown} acknowledged; webhook answers while down ${answers.join(", ")}; ` +
        `bodies retried ${retried}; duplicates ${audit.duplicates}`,
    );
    assert.ok(
      answers.every((status) => status >= 500),
      `webhooks while down: ${answers.join(", ")}`,
    );
    assert.ok(
      ready.every((status) => status === 503 || status === 500),
      `/readyz while down: ${ready.join(", ")}`,
    );
    assert.ok(retried > 0, "the outage interrupted the load");
    assert.equal(acknowledged.size, total);
    assert.deepEqual(audit.lost, [], "no acknowledged event is lost");
    assert.equal(audit.orderViolations, 0, "each conversation in LINE timestamp order");
    assert.equal(audit.serialChanges, 0);
    assert.equal(audit.duplicatesNotIdentical, 0);
    assert.equal(deliveries.length, total, "each event stored once");
    assert.ok(
      deliveries.every((d) => d.state === "delivered"),
      "delivery resumed by itself",
    );
  });

  test("attachments, long texts and uploads are served by instances that did not receive them", {
    timeout: 60_000,
  }, async (t) => {
    await start(t);
    const source = ev.userSource(ev.randomUserId());
    const image = ev.imageEvent(source);
    const bytes = Buffer.from(Array.from({ length: 600_000 }, (_, i) => (i * 7) % 256));
    cluster.emulator.setContent(image.message.id, { body: bytes, contentType: "image/png" });
    const long = "긴 메시지입니다. ".repeat(200);
    const text = ev.textEvent(source, long, { timestamp: image.timestamp + 1 });
    // Taken by instance 0 only.
    const answer = await cluster.emulator.sendWebhook(SENDER_KEY, [image, text], {
      url: `${cluster.instances[0]?.url}/line/webhook/${SENDER_KEY}`,
    });
    assert.equal(answer.status, 200);
    await cluster.sink.waitFor((accepted) => accepted.length >= 2, 20_000);
    const [imagePayload, textPayload] = cluster.sink.accepted as PartnerPayload[];
    const get = (i: number, path: string, headers: Record<string, string> = {}) =>
      fetch(`${cluster.instances[i]?.url}${path}`, {
        headers: { authorization: `Bearer ${API_KEY}`, ...headers },
      });
    for (const i of [1, 2]) {
      const whole = await get(
        i,
        `/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${imagePayload?.serial_number}`,
      );
      assert.equal(whole.status, 200);
      assert.equal(
        sha256(new Uint8Array(await whole.arrayBuffer())),
        sha256(bytes),
        `instance ${i}: byte-exact`,
      );
      const part = await get(
        i,
        `/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${imagePayload?.serial_number}`,
        { range: "bytes=262000-262300" },
      );
      assert.equal(part.status, 206);
      assert.deepEqual(
        Buffer.from(await part.arrayBuffer()),
        bytes.subarray(262_000, 262_301),
        "a range across chunk rows",
      );
      const full = await get(
        i,
        `/line/message/long?sender_key=${SENDER_KEY}&serial_number=${textPayload?.serial_number}`,
      );
      assert.equal(full.status, 200);
      assert.equal(((await full.json()) as { text: string }).text, long);
    }
    // An upload to instance 2 is served at its public URL by instance 0.
    const form = new FormData();
    form.append("file", new Blob([PNG_BYTES], { type: "image/png" }), "a.png");
    const uploaded = await fetch(`${cluster.instances[2]?.url}/line/media`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.equal(uploaded.status, 200);
    const { url } = (await uploaded.json()) as { url: string };
    const name = new URL(url).pathname;
    const served = await fetch(`${cluster.instances[0]?.url}${name}`);
    assert.equal(served.status, 200);
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), PNG_BYTES);
  });

  test("the same serial_number sent to all three instances at once reaches LINE once", {
    timeout: 60_000,
  }, async (t) => {
    await start(t);
    const user = ev.randomUserId();
    await cluster.sendWebhook([ev.textEvent(ev.userSource(user), "hello")], Date.now() + 10_000);
    await cluster.sink.waitFor((accepted) => accepted.length >= 1, 10_000);
    // LINE is slow to answer, so that the three requests overlap.
    cluster.emulator.setDelay("/v2/bot/message/", 300);
    const body = {
      sender_key: SENDER_KEY,
      user_key: user,
      serial_number: "cluster-once",
      messages: [{ type: "text", text: "exactly once" }],
    };
    const answers = await Promise.all(
      cluster.instances.map((_, i) => cluster.api(i, "POST", "/line/message/send", body)),
    );
    cluster.emulator.clearFaults();
    const again = await Promise.all(
      cluster.instances.map((_, i) => cluster.api(i, "POST", "/line/message/send", body)),
    );
    const sends = cluster.emulator.sent.filter((s) =>
      (s.messages as Array<{ text?: string }>).some((m) => m.text === "exactly once"),
    );
    t.diagnostic(`answers at once: ${answers.map((a) => `${a.status} ${a.body.code}`).join(", ")}`);
    assert.equal(sends.length, 1, "one LINE request for one serial_number");
    assert.equal(answers.filter((a) => a.status === 200).length >= 1, true, "one instance sent it");
    for (const a of answers)
      assert.ok(
        a.status === 200 || (a.status === 409 && a.body.code === "-423"),
        `${a.status} ${JSON.stringify(a.body)}`,
      );
    for (const a of again)
      assert.equal(a.body.code, "0", "afterwards every instance answers the first result");
  });
});
