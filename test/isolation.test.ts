// Partner isolation (issue 12): a slow, trickling, silent or failing partner never holds up another, never has an
// event in flight twice, is paused once per outage and probed with growing pauses, and a restart or a recovery
// releases everything; uploads stop (quota, free-space floor) before webhook intake could fail. talkgate runs as a
// real process; the partners are loopback servers that misbehave on purpose.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import * as ev from "../emulator/events.ts";
import { type LineEmulator, startLineEmulator } from "../emulator/line-emulator.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { TEST_DATABASE } from "./support/database.ts";
import { png } from "./support/media-fixtures.ts";
import { assertError, callApi } from "./support/partner-api.ts";
import { SENDER_KEY, startStack } from "./support/stack.ts";
import {
  freePort,
  printOutputIfFailed,
  startTalkgateProcess,
  type TalkgateProcess,
} from "./support/talkgate-process.ts";
import {
  type Attempt,
  type Behaviour,
  startUnrulyPartner,
  type UnrulyPartner,
} from "./support/unruly-partner.ts";

const BAD = "1700000001";
const GOOD = "1700000002";
const GOOD_KEY = "good-partner-api-key-0001";
const secretOf = (senderKey: string) => `secret-${senderKey}`;
const tokenOf = (senderKey: string) => `token-${senderKey}`;

interface World {
  emulator: LineEmulator;
  bad: UnrulyPartner;
  good: UnrulyPartner;
  talkgate: TalkgateProcess;
  close(): Promise<void>;
}

/** A talkgate process serving two partners, "bad" (behaving as told) and "good", each with a channel. */
async function world(
  t: { readonly name: string; after(fn: () => unknown): void },
  behaviour: Behaviour,
  delivery: Record<string, number> = {},
): Promise<World> {
  const bad = await startUnrulyPartner(behaviour);
  const good = await startUnrulyPartner();
  const emulator = await startLineEmulator({
    channels: [BAD, GOOD].map((senderKey) => ({
      channelId: senderKey,
      channelSecret: secretOf(senderKey),
      accessToken: tokenOf(senderKey),
    })),
  });
  const port = await freePort();
  for (const senderKey of [BAD, GOOD])
    emulator.setWebhookUrl(senderKey, `http://127.0.0.1:${port}/line/webhook/${senderKey}`);
  const config = {
    database: "sqlite:./talkgate.db",
    mediaDir: "./media",
    line: { apiBaseUrl: emulator.url, dataApiBaseUrl: emulator.url },
    delivery: {
      timeoutMs: 2_000,
      leaseMs: 4_000,
      concurrency: 8,
      partnerConcurrency: 4,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
      pollMs: 100,
      ...delivery,
    },
    media: { minFreeBytes: 1024 * 1024 },
    profiles: { waitMs: 100 },
    partners: [
      { id: "bad", receiveUrl: `${bad.url}/line`, allowPrivateNetwork: true },
      { id: "good", receiveUrl: `${good.url}/line`, apiKeys: [GOOD_KEY], allowPrivateNetwork: true },
    ],
    channels: [BAD, GOOD].map((senderKey) => ({
      senderKey,
      channelSecret: secretOf(senderKey),
      channelAccessToken: tokenOf(senderKey),
      partner: senderKey === BAD ? "bad" : "good",
    })),
  };
  const talkgate = await startTalkgateProcess(config, port).catch(async (error: unknown) => {
    await Promise.all([emulator.close(), bad.close(), good.close()]);
    throw error;
  });
  const w: World = {
    emulator,
    bad,
    good,
    talkgate,
    async close() {
      await talkgate.close();
      await Promise.all([emulator.close(), bad.close(), good.close()]);
    },
  };
  t.after(() => printOutputIfFailed(t, talkgate));
  return w;
}

/** `n` users of `senderKey` write one text each, in one webhook. */
async function speak(emulator: LineEmulator, senderKey: string, n: number, label: string): Promise<void> {
  const events = Array.from({ length: n }, (_, i) =>
    ev.textEvent(ev.userSource(ev.randomUserId()), `${label} ${i}`),
  );
  const answer = await emulator.sendWebhook(senderKey, events);
  assert.equal(answer.status, 200, answer.body);
}

const delivered = (partner: UnrulyPartner) =>
  partner.attempts.filter((a) => a.status === 200 && a.endedAt !== null);

describe("a misbehaving partner never holds up another", () => {
  const cases: Array<[string, Behaviour]> = [
    ["trickling (headers, then a byte every 200 ms)", { kind: "trickle", everyMs: 200 }],
    ["slow (answering after 1.5 s, within the 2 s deadline)", { kind: "slow", ms: 1_500 }],
    ["silent (never answering)", { kind: "silent" }],
  ];
  for (const [name, behaviour] of cases) {
    test(`${name}: the healthy partner's events all arrive before its first attempt ends`, async (t) => {
      const w = await world(t, behaviour);
      try {
        await speak(w.emulator, BAD, 20, "bad");
        await w.bad.until("the bad partner holds its share of the slots", () => w.bad.open() === 4);
        const spoke = Date.now();
        await speak(w.emulator, GOOD, 10, "good");
        await w.good.until("the good partner's 10 events", () => delivered(w.good).length === 10);
        const healthyMs = Date.now() - spoke;
        const firstEnd = Math.min(...w.bad.attempts.map((a) => a.endedAt ?? Number.POSITIVE_INFINITY));
        const lastGood = Math.max(...w.good.attempts.map((a) => a.startedAt));
        assert.ok(
          lastGood < firstEnd,
          "every healthy event arrived while the bad partner's first attempts were open",
        );
        assert.equal(w.bad.attempts.length, 4, "the bad partner never held more than its 4 slots");
        // Every attempt ends by its deadline, and the next ones go on within the bad partner's share.
        await w.bad.until("the first attempts ended", () =>
          w.bad.attempts.slice(0, 4).every((a) => a.endedAt !== null),
        );
        await w.bad.until("more attempts", () => w.bad.attempts.length >= 8);
        assert.ok(
          w.bad.attempts.every(
            (a, i) =>
              w.bad.attempts.slice(0, i).filter((b) => (b.endedAt ?? Infinity) > a.startedAt).length < 4,
          ),
          "never more than 4 open at once",
        );
        assert.deepEqual(w.bad.overlaps, [], "no event was in flight twice at once");
        const first = w.bad.attempts[0];
        console.log(
          `# ${behaviour.kind} partner: the healthy partner's 10 events in ${healthyMs} ms; the bad partner's ` +
            `first attempt lasted ${(first?.endedAt ?? 0) - (first?.startedAt ?? 0)} ms (deadline 2,000 ms), ` +
            `${w.bad.attempts.length} attempts, never more than 4 open, 0 in flight twice`,
        );
      } finally {
        await w.close();
      }
    });
  }

  test("failing: the healthy partner's events all arrive; the failing one is paused, not hammered", async (t) => {
    const w = await world(t, { kind: "fail", status: 503 }, { pauseAfterFailures: 5, pauseInitialMs: 5_000 });
    try {
      await speak(w.emulator, BAD, 20, "bad");
      await w.bad.until("the bad partner failed enough to be paused", () => w.bad.attempts.length >= 5);
      await speak(w.emulator, GOOD, 10, "good");
      await w.good.until("the good partner's 10 events", () => delivered(w.good).length === 10);
      const metrics = await (await fetch(`${w.talkgate.url}/metrics`)).text();
      assert.match(metrics, /talkgate_partner_state\{partner="bad",state="paused"\} 1/);
      assert.match(metrics, /talkgate_partner_state\{partner="good",state="delivering"\} 1/);
      // Attempts in flight when it opened end as they end; then nothing until the pause is over.
      assert.ok(w.bad.attempts.length <= 5 + 4, `${w.bad.attempts.length} attempts: paused after 5 failures`);
      assert.deepEqual(w.bad.overlaps, []);
    } finally {
      await w.close();
    }
  });
});

describe("pausing a failing partner", () => {
  test("it pauses once per outage, only a failed probe doubles the pause, and a good probe releases everything", async (t) => {
    const w = await world(
      t,
      { kind: "fail", status: 503 },
      { pauseAfterFailures: 3, pauseInitialMs: 1_000, pauseMaxMs: 8_000 },
    );
    try {
      await speak(w.emulator, BAD, 12, "bad");
      // The probes: the attempts after the first quiet second (the pause); before it, the burst that opened it
      // (the third failure) and the attempts already under way then.
      const probes = () => {
        const byStart = [...w.bad.attempts].sort((a, b) => a.startedAt - b.startedAt);
        let lastEnd = 0;
        for (const [i, attempt] of byStart.entries()) {
          if (i > 0 && attempt.startedAt - lastEnd >= 900)
            return { opened: lastEnd, probes: byStart.slice(i) };
          lastEnd = Math.max(lastEnd, attempt.endedAt ?? Number.POSITIVE_INFINITY);
        }
        return { opened: lastEnd, probes: [] };
      };
      await w.bad.until("three probes after the pause", () => probes().probes.length >= 3, 60_000);
      const { opened, probes: found } = probes();
      const [p1, p2, p3] = found as [Attempt, Attempt, Attempt];
      // The burst's failures, those of attempts in flight when it opened included, paused it once: 1 s, not 8 s.
      assert.ok(
        p1.startedAt - opened < 2_000 * 0.9 + 1_000,
        `the first pause is 1 s (${p1.startedAt - opened} ms)`,
      );
      assert.ok(p2.startedAt - (p1.endedAt ?? 0) >= 2_000 * 0.9, "a failed probe doubles it: 2 s");
      assert.ok(p3.startedAt - (p2.endedAt ?? 0) >= 4_000 * 0.9, "4 s");
      assert.ok(
        [p1, p2, p3].every((p, i, all) => i === 0 || (all[i - 1]?.endedAt ?? Infinity) <= p.startedAt),
        "one probe at a time",
      );

      // The partner answers again: the next probe succeeds and every waiting delivery goes at once.
      w.bad.behave({ kind: "ok" });
      await w.bad.until(
        "every event delivered",
        () => new Set(delivered(w.bad).map((a) => a.webhookId)).size === 12,
        60_000,
      );
      const success = delivered(w.bad)[0];
      const last = Math.max(...delivered(w.bad).map((a) => a.startedAt));
      assert.ok(
        success && last - success.startedAt < 1_000 * 0.9 + 1_000,
        "all released by the successful probe",
      );
      assert.deepEqual(w.bad.overlaps, []);
    } finally {
      await w.close();
    }
  });

  test("a restart during a pause keeps each delivery's own retry time: nothing waits out the lost pause", async (t) => {
    const w = await world(
      t,
      { kind: "fail", status: 503 },
      { pauseAfterFailures: 3, pauseInitialMs: 120_000 },
    );
    try {
      await speak(w.emulator, BAD, 12, "bad");
      await w.bad.until(
        "paused after 3 failures",
        () => w.bad.attempts.filter((a) => a.endedAt !== null).length >= 3,
      );
      const state = await callDeliveries(w);
      assert.equal(state.partnerState, "paused");
      w.bad.behave({ kind: "ok" });
      await w.talkgate.killAndRestart();
      // The pause (2 minutes) is gone with the process; the deliveries were never pushed back to its end.
      await w.bad.until(
        "every event delivered after the restart",
        () => new Set(delivered(w.bad).map((a) => a.webhookId)).size === 12,
        30_000,
      );
    } finally {
      await w.close();
    }
  });
});

/** The good partner's view of its deliveries (GET /line/deliveries) — and the bad partner's state, from /metrics. */
async function callDeliveries(w: World): Promise<{ partnerState: string }> {
  const metrics = await (await fetch(`${w.talkgate.url}/metrics`)).text();
  const state = /talkgate_partner_state\{partner="bad",state="(\w+)"\} 1/.exec(metrics)?.[1] ?? "";
  const listed = await fetch(`${w.talkgate.url}/line/deliveries?sender_key=${GOOD}`, {
    headers: { authorization: `Bearer ${GOOD_KEY}` },
  });
  const body = (await listed.json()) as { partner: { id: string; state: string } };
  assert.deepEqual(body.partner, { id: "good", state: "delivering", paused_until: null });
  return { partnerState: state };
}

describe("uploads stop before webhook intake fails", () => {
  const stacks: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const s of stacks) await s.close();
  });

  const upload = async (url: string, key = "test-partner-api-key-0001") => {
    const form = new FormData();
    form.append("file", new Blob([png()]), "a.png");
    const response = await fetch(`${url}/line/media`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${key}` },
    });
    return { status: response.status, body: (await response.json()) as { code: string; message?: string } };
  };

  test("a partner's upload quota: the third upload is refused 507 -507, webhooks go on", async () => {
    const stack = await startStack({ config: { media: { uploadQuotaFiles: 2, minFreeBytes: 1 } } });
    stacks.push(stack);
    assert.equal((await upload(stack.talkgate.url)).status, 200);
    assert.equal((await upload(stack.talkgate.url)).status, 200);
    const third = await upload(stack.talkgate.url);
    assert.equal(third.status, 507);
    assert.equal(third.body.code, "-507");
    assert.match(third.body.message ?? "", /media\.uploadQuotaFiles/);
    const user = ev.randomUserId();
    assert.equal(
      (await stack.emulator.sendWebhook(SENDER_KEY, [ev.textEvent(ev.userSource(user), "still here")]))
        .status,
      200,
    );
    await stack.sink.waitFor((a) => a.some((p) => (p as PartnerPayload).user_key === user));
  });

  test("below the free-space floor: uploads refused -600, downloads wait, webhooks are still stored and relayed", {
    // On PostgreSQL attachments and uploads are kept in the database, whose disk talkgate does not see.
    skip:
      TEST_DATABASE === "postgres" && "the floor guards mediaDir's disk, which PostgreSQL's files do not use",
  }, async () => {
    const stack = await startStack({
      config: { media: { minFreeBytes: Number.MAX_SAFE_INTEGER, relayWaitMs: 300, pollMs: 50 } },
    });
    stacks.push(stack);
    const refused = await upload(stack.talkgate.url);
    assert.equal(refused.status, 500);
    assert.equal(refused.body.code, "-600");
    assert.match(refused.body.message ?? "", /media\.minFreeBytes/);
    const user = ev.randomUserId();
    const image = ev.imageEvent(ev.userSource(user));
    stack.emulator.setContent(image.message.id, { body: "jpeg", contentType: "image/jpeg" });
    assert.equal((await stack.emulator.sendWebhook(SENDER_KEY, [image])).status, 200);
    const accepted = (await stack.sink.waitFor((a) =>
      a.some((p) => (p as PartnerPayload).user_key === user),
    )) as PartnerPayload[];
    const payload = accepted.find((p) => p.user_key === user);
    assert.equal(stack.emulator.contentRequests(image.message.id), 0, "LINE was not asked for the content");
    const attachment = await callApi(
      stack,
      "GET",
      `/line/message/attachment?sender_key=${SENDER_KEY}&serial_number=${payload?.serial_number}`,
    );
    assertError(attachment, 202, "-202");
    const metrics = await (await fetch(`${stack.talkgate.url}/metrics`)).text();
    assert.match(metrics, /talkgate_disk_free_bytes\{volume="media"\} \d+/);
  });
});
