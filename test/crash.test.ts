// talkgate killed with SIGKILL mid-load and restarted: nothing acknowledged is lost, order and serial numbers hold.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import * as ev from "../emulator/events.ts";
import { startLineEmulator } from "../emulator/line-emulator.ts";
import { startPartnerSink } from "../emulator/partner-sink.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { ACCESS_TOKEN, CHANNEL_SECRET, SENDER_KEY, stackConfig } from "./support/stack.ts";

const USERS = 40;
const MESSAGES_PER_USER = 25;
const KILLS = 3;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address ? address.port : 0;
}

/** Starts `talkgate serve` as a child process and resolves once it logs that it is ready. */
async function spawnTalkgate(configPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["bin/talkgate.ts", "serve", "--config", configPath], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`talkgate exited with ${code} before it was ready`)));
    lines.on("line", (line) => {
      if (line.includes('"talkgate:ready"')) resolve();
    });
  });
  return child;
}

test("SIGKILL mid-load loses nothing acknowledged and keeps order and serial numbers", {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "talkgate-crash-"));
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
  const config = stackConfig(emulator.url, sink.url, { config: { logLevel: "info" } });
  const configPath = join(dir, "talkgate.config.json");
  writeFileSync(configPath, JSON.stringify({ ...config, listen: { host: "127.0.0.1", port } }));

  let child = await spawnTalkgate(configPath);
  const acknowledged = new Map<string, { userId: string; timestamp: number }>();
  let redeliveries = 0;

  // Each user sends its messages one after another, as a person types; a webhook that is not
  // answered 200 is sent again (marked as a redelivery) until it is, as LINE's redelivery does.
  const t0 = Date.now();
  const users = Array.from({ length: USERS }, () => ev.randomUserId());
  const sendAll = Promise.all(
    users.map(async (userId, u) => {
      for (let i = 0; i < MESSAGES_PER_USER; i++) {
        const timestamp = t0 + i * 1000 + u;
        const event = ev.textEvent(ev.userSource(userId), `${u}:${i}`, { timestamp });
        for (let attempt = 0; ; attempt++) {
          const result = await emulator
            .sendWebhook(SENDER_KEY, [attempt === 0 ? event : ev.redelivered(event)], { timeoutMs: 2_000 })
            .catch(() => null);
          if (result?.status === 200) break;
          redeliveries++;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        acknowledged.set(event.message.id, { userId, timestamp });
      }
    }),
  );

  for (let kill = 0; kill < KILLS; kill++) {
    await new Promise((resolve) => setTimeout(resolve, 400 + kill * 150));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    child = await spawnTalkgate(configPath);
  }
  await sendAll;

  try {
    const total = USERS * MESSAGES_PER_USER;
    assert.equal(acknowledged.size, total);
    await sink.waitFor(
      (accepted) => new Set(accepted.map((p) => (p as PartnerPayload).content.id)).size >= total,
      60_000,
    );

    const payloads = sink.accepted as PartnerPayload[];
    const serialOf = new Map<string, string>();
    for (const payload of payloads) {
      const id = payload.content.id as string;
      const serial = serialOf.get(id);
      assert.ok(
        serial === undefined || serial === payload.serial_number,
        `message ${id} kept its serial_number`,
      );
      serialOf.set(id, payload.serial_number);
    }
    for (const id of acknowledged.keys())
      assert.ok(serialOf.has(id), `acknowledged message ${id} was delivered`);
    assert.equal(new Set(serialOf.values()).size, serialOf.size, "serial numbers are unique");

    for (const userId of users) {
      const firstDeliveries: number[] = [];
      const seen = new Set<string>();
      for (const payload of payloads) {
        const id = payload.content.id as string;
        if (payload.user_key !== userId || seen.has(id)) continue;
        seen.add(id);
        firstDeliveries.push(acknowledged.get(id)?.timestamp ?? -1);
      }
      assert.deepEqual(
        firstDeliveries,
        [...firstDeliveries].sort((a, b) => a - b),
        `user ${userId} received in order`,
      );
    }
    assert.ok(redeliveries > 0, "the kills interrupted the load (otherwise this test proves nothing)");
  } finally {
    child.kill("SIGKILL");
    await emulator.close();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
