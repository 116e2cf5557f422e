// npm run demo:cluster: three talkgate instances on one PostgreSQL, the LINE emulator and a partner. The
// emulator's webhooks go to the instances in turn; one instance is killed halfway. Each event's line says which
// instance took the webhook and which one delivered it to the partner.
// PostgreSQL: the database in TALKGATE_DATABASE (postgres://…), else a throwaway server of its own (Debian's
// postgresql package, as the tests use).
import * as ev from "../emulator/events.ts";
import type { PartnerPayload } from "../src/core/partner-payload.ts";
import { redactedUrl } from "../src/store/postgres/connection.ts";
import { type Cluster, startCluster } from "../test/support/cluster.ts";
import { type PostgresServer, startPostgres } from "../test/support/postgres.ts";

const INSTANCES = 3;
const USERS = 4;
const MESSAGES = 6;

async function main(): Promise<void> {
  let server: PostgresServer | undefined;
  let database = process.env.TALKGATE_DATABASE;
  if (!database) {
    console.log("starting a throwaway PostgreSQL (set TALKGATE_DATABASE=postgres://… to use your own)…");
    server = await startPostgres();
    database = await server.createDatabase();
  }
  console.log(`database: ${redactedUrl(database)}`);
  const deliveredBy = new Map<string, number>();
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster(database, INSTANCES, {
      onOutput(i, line) {
        if (!line.includes('"delivery:delivered"')) return;
        const serial = (JSON.parse(line) as { serial_number?: string }).serial_number;
        if (serial) deliveredBy.set(serial, i);
      },
    });
    const c = cluster;
    console.log(`instances: ${c.instances.map((instance, i) => `#${i} ${instance.url}`).join(", ")}\n`);

    const takenBy = new Map<string, number>();
    const texts = new Map<string, string>();
    const users = Array.from({ length: USERS }, () => ev.randomUserId());
    const t0 = Date.now();
    const deadline = t0 + 60_000;
    for (let m = 0; m < MESSAGES; m++) {
      if (m === MESSAGES / 2) {
        console.log(`SIGKILL instance #${INSTANCES - 1} (a supervisor restarts it); the others carry on\n`);
        await c.instances[INSTANCES - 1]?.killAndRestart();
      }
      await Promise.all(
        users.map(async (user, u) => {
          const text = `user ${u + 1}, message ${m + 1}`;
          const event = ev.textEvent(ev.userSource(user), text, { timestamp: t0 + m * 1_000 + u });
          texts.set(event.message.id, text);
          const { instance } = await c.sendWebhook([event], deadline);
          takenBy.set(event.message.id, instance);
        }),
      );
    }
    const total = USERS * MESSAGES;
    await c.sink.waitFor((accepted) => accepted.length >= total, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the instances' logs are flushed every 100 ms

    console.log("serial_number                 text                      took   delivered");
    for (const payload of c.sink.accepted as PartnerPayload[]) {
      const id = payload.content.id as string;
      console.log(
        `${payload.serial_number.padEnd(30)}${(texts.get(id) ?? "").padEnd(26)}#${takenBy.get(id)}     ${deliveredBy.has(payload.serial_number) ? `#${deliveredBy.get(payload.serial_number)}` : "? (its log line went with the kill)"}`,
      );
    }
    const count = (map: Map<string, number>, i: number) => [...map.values()].filter((x) => x === i).length;
    console.log(
      `\n${c.sink.accepted.length} deliveries for ${total} events; per instance (took/delivered): ${c.instances
        .map((_, i) => `#${i} ${count(takenBy, i)}/${count(deliveredBy, i)}`)
        .join(", ")}`,
    );
  } finally {
    await cluster?.close();
    await server?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(`demo:cluster: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
