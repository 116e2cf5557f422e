// Statements as tagged templates over node-postgres (`pg`): every `${value}` a bound parameter, a statement
// nested in another one inlined as a fragment, nothing ever concatenated into SQL. A transaction is one checked-
// out client: a connection lost mid-transaction fails its statements; it is never reused for anything else.
import pg from "pg";

/** A row as a statement answers it. */
export type Row = Record<string, unknown>;

/** A value sent as one `jsonb` parameter (see {@link Sql.json}). */
class Json {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/**
 * A statement (or a fragment of one): runs when awaited, or is inlined where it appears inside another
 * statement's template.
 */
export class Statement<T = Row[]> implements PromiseLike<T> {
  readonly #strings: readonly string[];
  readonly #values: readonly unknown[];
  readonly #run: (text: string, values: unknown[]) => Promise<T>;

  constructor(
    strings: readonly string[],
    values: readonly unknown[],
    run: (text: string, values: unknown[]) => Promise<T>,
  ) {
    this.#strings = strings;
    this.#values = values;
    this.#run = run;
  }

  /** The SQL text and its parameters' values, appended to `values` (a fragment shares its statement's). */
  compile(values: unknown[] = []): { text: string; values: unknown[] } {
    let text = this.#strings[0] ?? "";
    for (const [i, value] of this.#values.entries()) {
      if (value instanceof Statement) {
        text += value.compile(values).text;
      } else {
        values.push(value instanceof Json ? value.text : value);
        text += `$${values.length}${value instanceof Json ? "::jsonb" : ""}`;
      }
      text += this.#strings[i + 1] ?? "";
    }
    return { text, values };
  }

  // biome-ignore lint/suspicious/noThenProperty: a statement runs when awaited, as a promise would
  then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    const { text, values } = this.compile();
    return this.#run(text, values).then(onFulfilled, onRejected);
  }
}

/** Runs statements written as tagged templates. */
export interface Sql {
  <T = Row[]>(strings: TemplateStringsArray, ...values: unknown[]): Statement<T>;
  /** `value` as one `jsonb` parameter: many rows in one round trip, read back with `jsonb_to_recordset`. */
  json(value: unknown): unknown;
  /** Runs SQL text with no parameters, several statements allowed (migration files). */
  unsafe(text: string): Promise<void>;
}

/** The statements of one transaction. */
export type Tx = Sql;

/** A pool of connections. */
export interface Pool extends Sql {
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  begin<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Calls `onPayload` with each notification on `channel`, on a connection of its own that reconnects. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<void>;
  end(): Promise<void>;
}

/** Where a pool connects and how long it waits. */
export interface ConnectOptions {
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Told of errors on idle connections and of the listener losing its connection (it reconnects). */
  onError(error: Error): void;
}

// bigint columns (times in ms, ids, counts) come back as numbers: they all fit in 53 bits.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function runner(query: (text: string, values: unknown[]) => Promise<pg.QueryResult>): Sql {
  const sql = (<T = Row[]>(strings: TemplateStringsArray, ...values: unknown[]) =>
    new Statement<T>(strings, values, async (text, params) => (await query(text, params)).rows as T)) as Sql;
  sql.json = (value) => new Json(JSON.stringify(value));
  sql.unsafe = async (text) => {
    await query(text, []);
  };
  return sql;
}

/** A pool on `url`. Connections are made when first needed; none is made here. */
export function createPool(url: string, options: ConnectOptions): Pool {
  const settings: pg.PoolConfig = {
    connectionString: url,
    max: options.max,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 60_000,
    allowExitOnIdle: true,
    statement_timeout: options.statementTimeoutMs,
    // A server that stops answering (not just refusing) fails the statement too, shortly after the server's own limit.
    query_timeout: options.statementTimeoutMs + 1_000,
    application_name: "talkgate",
    types,
  };
  const pool = new pg.Pool(settings);
  pool.on("error", options.onError); // an idle connection lost: the pool drops it
  // A connection handed from the pool to a waiter has no listener until the waiter's code runs (a microtask
  // later), yet the parser may already be reading the next message of the same packet: the server's FATAL as it
  // shuts down. Unheard, that 'error' event would end the process; heard here, the client is no longer queryable,
  // so its user's first statement fails and the client is dropped as any broken one.
  pool.on("connect", (client) => client.on("error", () => {}));
  let listener: pg.Client | undefined;
  let ended = false;
  const sql = runner((text, values) => pool.query(text, values));
  return Object.assign(sql, {
    async begin<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // Lost while checked out: its statements fail, and it is destroyed when released, never reused.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const result = await work(runner((text, values) => client.query(text, values)));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        if (!broken) await client.query("ROLLBACK").catch((rollback: Error) => (broken = rollback));
        throw error;
      } finally {
        client.off("error", onError);
        client.release(broken ?? false);
      }
    },

    async listen(channel: string, onPayload: (payload: string) => void) {
      // The first connection must work (a start fails otherwise); a lost one is made again, every second,
      // until it works: meanwhile the workers' polling finds the work.
      const attach = async (): Promise<void> => {
        const client = new pg.Client({ ...settings, query_timeout: undefined, statement_timeout: undefined });
        let lost = false;
        const lose = (error: Error) => {
          if (lost) return;
          lost = true;
          options.onError(error);
          if (listener === client) listener = undefined;
          client.end().catch(() => {});
          if (!ended) setTimeout(() => attach().catch(() => {}), 1_000).unref();
        };
        client.on("notification", (message) => onPayload(message.payload ?? ""));
        client.on("error", lose);
        try {
          await client.connect();
          await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
          listener = client;
        } catch (error) {
          lose(error as Error);
          throw error;
        }
      };
      await attach();
    },

    async end() {
      ended = true;
      await listener?.end().catch(() => {});
      await pool.end();
    },
  }) as Pool;
}
