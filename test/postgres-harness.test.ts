// The PostgreSQL test harness (test/support/postgres.ts) itself: a real server starts, answers postgres.js,
// carries LISTEN/NOTIFY and advisory locks, runs beside a second one, stops, and fails loudly when it cannot.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { type PostgresServer, startPostgres } from "./support/postgres.ts";

/** A postgres.js client of one connection, so that session state (advisory locks) stays on it. */
const connect = (url: string) => postgres(url, { max: 1, onnotice: () => {} });

/** Whether anything still accepts a PostgreSQL connection on `port` (its password aside). */
async function answers(port: number): Promise<boolean> {
  const sql = postgres({
    host: "127.0.0.1",
    port,
    user: "nobody",
    password: "x",
    max: 1,
    connect_timeout: 2,
  });
  try {
    await sql`select 1`;
    return true;
  } catch (error) {
    return (error as { code?: string }).code !== "ECONNREFUSED";
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/** Waits up to 10 s for `check` to hold. */
async function eventually(check: () => Promise<boolean> | boolean): Promise<boolean> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
    if (await check()) return true;
  }
  return check();
}

describe("a PostgreSQL server of a test's own", () => {
  let server: PostgresServer;
  const clients: postgres.Sql[] = [];
  const client = (url: string) => {
    const sql = connect(url);
    clients.push(sql);
    return sql;
  };
  after(async () => {
    await Promise.all(clients.map((sql) => sql.end({ timeout: 0 })));
    await server?.stop();
  });

  test("starts on a loopback port with a database, and answers postgres.js", async (t) => {
    const startedAt = performance.now();
    server = await startPostgres();
    t.diagnostic(
      `started in ${Math.round(performance.now() - startedAt)} ms (PostgreSQL ${server.versionNum})`,
    );
    assert.match(
      server.url,
      new RegExp(`^postgres://talkgate:[0-9a-f]+@127\\.0\\.0\\.1:${server.port}/talkgate$`),
    );
    assert.ok(server.versionNum >= 140_000, "SPEC §9 promises PostgreSQL 14 or later");
    const sql = client(server.url);
    const [row] = await sql`select 1 as one, current_database() as db, inet_server_port() as port`;
    assert.deepEqual({ ...row }, { one: 1, db: "talkgate", port: server.port });
  });

  test("asks for the password, and is set up for tests (UTC, UTF-8, no fsync)", async () => {
    const wrong = connect(server.url.replace(/:[0-9a-f]+@/, ":wrong@"));
    clients.push(wrong);
    await assert.rejects(wrong`select 1`, { code: "28P01" });
    const [row] = await client(server.url)`
      select current_setting('TimeZone') as tz, current_setting('server_encoding') as encoding,
             current_setting('fsync') as fsync, current_setting('listen_addresses') as listen`;
    assert.deepEqual({ ...row }, { tz: "UTC", encoding: "UTF8", fsync: "off", listen: "127.0.0.1" });
  });

  test("carries a LISTEN/NOTIFY round trip between two connections", async () => {
    const listener = client(server.url);
    const notifier = client(server.url);
    let heard: (payload: string) => void = () => {};
    const received = new Promise<string>((resolve) => {
      heard = resolve;
    });
    // listen() resolves once LISTEN has run on the listener's own connection.
    await listener.listen("talkgate_harness", (payload) => heard(payload));
    await notifier.notify("talkgate_harness", "new work for 한글 채팅");
    assert.equal(await received, "new work for 한글 채팅");
  });

  test("holds a session advisory lock against another connection until it is released", async () => {
    const a = client(server.url);
    const b = client(server.url);
    const tryLock = async (sql: postgres.Sql) =>
      (await sql`select pg_try_advisory_lock(4242) as got`)[0]?.got as boolean;
    assert.equal(await tryLock(a), true);
    assert.equal(await tryLock(b), false);
    assert.equal((await a`select pg_advisory_unlock(4242) as released`)[0]?.released, true);
    assert.equal(await tryLock(b), true);
  });

  test("makes more databases, each empty and apart", async () => {
    const first = client(await server.createDatabase());
    const second = client(await server.createDatabase());
    await first`create table marks (id int)`;
    const [row] = await second`select count(*)::int as n from pg_tables where tablename = 'marks'`;
    assert.equal(row?.n, 0);
  });

  test("goes down and comes back on the same port with its data (an outage)", async () => {
    const url = await server.createDatabase();
    const before = client(url);
    await before`create table kept (id int)`;
    await before`insert into kept values (7)`;
    await server.down();
    assert.equal(await answers(server.port), false, "down: the port refuses connections");
    await server.up();
    const [row] = await client(url)`select id from kept`;
    assert.equal(row?.id, 7);
  });

  test("stops: the port refuses connections and the folder is gone", async () => {
    await Promise.all(clients.splice(0).map((sql) => sql.end({ timeout: 0 })));
    const { port, dir } = server;
    assert.equal(await answers(port), true);
    await server.stop();
    await server.stop(); // a second stop is harmless
    assert.equal(await answers(port), false);
    assert.equal(existsSync(dir), false);
  });
});

test("two servers start in parallel, each on its own port with its own data", async (t) => {
  const startedAt = performance.now();
  const servers = await Promise.all([startPostgres(), startPostgres({ database: "elsewhere" })]);
  t.diagnostic(`both started in ${Math.round(performance.now() - startedAt)} ms`);
  const [one, two] = servers as [PostgresServer, PostgresServer];
  const a = connect(one.url);
  const b = connect(two.url);
  try {
    assert.notEqual(one.port, two.port);
    await a`create table only_here (id int)`;
    const [row] = await b`select count(*)::int as n from pg_tables where tablename = 'only_here'`;
    assert.equal(row?.n, 0);
    const [where] = await b`select inet_server_port() as port, current_database() as db`;
    assert.deepEqual({ ...where }, { port: two.port, db: "elsewhere" });
  } finally {
    await Promise.all([a.end({ timeout: 0 }), b.end({ timeout: 0 })]);
    await Promise.all(servers.map((server) => server.stop()));
  }
  assert.deepEqual(await Promise.all(servers.map((server) => answers(server.port))), [false, false]);
});

test("a server that cannot start is an error with the server's own words, never a skip", async () => {
  await assert.rejects(startPostgres({ settings: { shared_buffers: "plenty" } }), (error: Error) => {
    assert.match(error.message, /PostgreSQL exited with 1 before accepting connections; its log:/);
    assert.match(error.message, /invalid value for parameter "shared_buffers": "plenty"/);
    return true;
  });
  await assert.rejects(startPostgres({ binDir: "/nonexistent" }), /not in \/nonexistent/);
});

test("the process's shared server and a forgotten one are both gone when the test process ends", async () => {
  // A test process of its own: it takes the shared server twice and starts one it never stops, then ends.
  const harness = new URL("./support/postgres.ts", import.meta.url).href;
  const script = `
    const { sharedPostgres, startPostgres } = await import(${JSON.stringify(harness)});
    const shared = await sharedPostgres();
    const again = await sharedPostgres();
    const forgotten = await startPostgres();
    console.log(JSON.stringify({ same: shared === again, shared: [shared.port, shared.dir], forgotten: [forgotten.port, forgotten.dir] }));`;
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    // The timeout fails the test if a running server kept the process alive.
    execFile(
      process.execPath,
      ["--input-type=module", "-e", script],
      { timeout: 30_000 },
      (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolve({ stdout: out, stderr: err }),
    );
  });
  const seen = JSON.parse(stdout) as { same: boolean; shared: [number, string]; forgotten: [number, string] };
  assert.equal(seen.same, true);
  // The shared one was stopped in good order; the forgotten one is stopped at exit, and said so.
  assert.equal(await answers(seen.shared[0]), false);
  assert.equal(existsSync(seen.shared[1]), false);
  assert.match(stderr, new RegExp(`the server on port ${seen.forgotten[0]} was still running at exit`));
  assert.doesNotMatch(stderr, new RegExp(`port ${seen.shared[0]} `));
  assert.equal(await eventually(async () => !(await answers(seen.forgotten[0]))), true);
  assert.equal(await eventually(() => !existsSync(seen.forgotten[1])), true);
});
