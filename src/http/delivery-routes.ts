// Deliveries you can operate: GET /line/deliveries (list, filter, page) and POST /line/deliveries/replay.
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { DeliveryFilter, DeliveryRecord, Outbox } from "../app/store.ts";
import { TalkgateError } from "../core/errors.ts";
import type { PartnerState } from "../core/partner-health.ts";

const State = Type.Union([
  Type.Literal("pending"),
  Type.Literal("retrying"),
  Type.Literal("delivered"),
  Type.Literal("dead"),
]);
const Millis = (description: string) => Type.Integer({ minimum: 0, description });

/** Most deliveries one replay call queues again. */
const REPLAY_LIMIT = 10_000;

const ListQuery = Type.Object(
  {
    sender_key: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: "default: every channel of the key" }),
    ),
    state: Type.Optional(State),
    conversation: Type.Optional(
      Type.String({ maxLength: 80, description: "user:<id>, group:<id> or room:<id>" }),
    ),
    from: Type.Optional(Millis("received at or after this Unix time (ms)")),
    to: Type.Optional(Millis("received before this Unix time (ms)")),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(
      Type.String({ pattern: "^[0-9]{1,16}$", description: "the next_cursor of the previous page" }),
    ),
  },
  { additionalProperties: false },
);

const ReplayBody = Type.Object(
  {
    sender_key: Type.String({ minLength: 1, maxLength: 64 }),
    serial_numbers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 30 }), { minItems: 1, maxItems: 1000 }),
    ),
    state: Type.Optional(State),
    from: Type.Optional(Millis("received at or after this Unix time (ms); a range needs from and to")),
    to: Type.Optional(Millis("received before this Unix time (ms)")),
    dry_run: Type.Optional(
      Type.Boolean({ description: "true: only count what matches (`matched`), replay nothing" }),
    ),
  },
  {
    additionalProperties: false,
    description: "Which deliveries to queue again: serial_numbers, or a time range (from and to), or both",
  },
);

const DeliveryAnswer = Type.Object({
  serial_number: Type.String(),
  sender_key: Type.String(),
  conversation: Type.String({ description: "user:<id>, group:<id> or room:<id>" }),
  event_type: Type.String(),
  state: State,
  attempts: Type.Integer({ description: "failed attempts so far" }),
  last_status: Type.Union([Type.Integer(), Type.Null()], { description: "the partner's last HTTP status" }),
  last_error: Type.Union([Type.String(), Type.Null()]),
  received_at: Type.Integer({ description: "Unix time (ms)" }),
  updated_at: Type.Integer({ description: "Unix time (ms)" }),
  next_attempt_at: Type.Integer({ description: "Unix time (ms)" }),
});

const PartnerStateAnswer = Type.Object(
  {
    id: Type.String(),
    state: Type.Union([Type.Literal("delivering"), Type.Literal("paused"), Type.Literal("probing")], {
      description:
        "delivering; paused after repeated failures (nothing is sent until paused_until); probing: one delivery goes to see whether the partner answers again",
    }),
    paused_until: Type.Union([Type.Integer(), Type.Null()], { description: "Unix time (ms) while paused" }),
  },
  { description: "where the key's partner's deliveries stand now" },
);

const ListAnswer = Type.Object({
  code: Type.Literal("0"),
  partner: PartnerStateAnswer,
  deliveries: Type.Array(DeliveryAnswer),
  next_cursor: Type.Union([Type.String(), Type.Null()], {
    description: "pass as cursor for the next page; null on the last page",
  }),
});

const ReplayAnswer = Type.Object({
  code: Type.Literal("0"),
  matched: Type.Integer({ description: "deliveries matching the request" }),
  replayed: Type.Integer({ description: `deliveries queued again (at most ${REPLAY_LIMIT} per call)` }),
  serial_numbers: Type.Array(Type.String(), { description: "the serial_numbers queued again" }),
  not_found: Type.Array(Type.String(), { description: "serial_numbers given that match no delivery" }),
});

function filterOf(
  request: FastifyRequest,
  query: {
    sender_key?: string | undefined;
    state?: DeliveryFilter["state"];
    from?: number | undefined;
    to?: number | undefined;
  },
): DeliveryFilter {
  if (query.sender_key !== undefined) request.partner.requireChannel(query.sender_key);
  return {
    senderKeys: query.sender_key !== undefined ? [query.sender_key] : request.partner.senderKeys,
    state: query.state,
    from: query.from,
    to: query.to,
  };
}

function toAnswer(record: DeliveryRecord) {
  return {
    serial_number: record.serialNumber,
    sender_key: record.senderKey,
    conversation: record.conversation,
    event_type: record.eventType,
    state: record.state,
    attempts: record.attempts,
    last_status: record.lastStatus,
    last_error: record.lastError,
    received_at: record.receivedAt,
    updated_at: record.updatedAt,
    next_attempt_at: record.nextAttemptAt,
  };
}

// A replay names its deliveries: by serial_number, or by a whole time range (a missing end would
// silently mean "since the beginning" or "until now").
function checkRange(body: Static<typeof ReplayBody>): void {
  const { serial_numbers, from, to } = body;
  if (!serial_numbers && from === undefined && to === undefined)
    throw new TalkgateError(
      "-405",
      "serial_numbers, from, to: give serial_numbers, or a time range with from and to",
    );
  if (from !== undefined && to === undefined)
    throw new TalkgateError("-405", "to: missing (a range needs from and to)");
  if (to !== undefined && from === undefined)
    throw new TalkgateError("-405", "from: missing (a range needs from and to)");
  if (from !== undefined && to !== undefined && to <= from)
    throw new TalkgateError("-405", "to: must be later than from");
}

export interface DeliveryRouteDeps {
  store: Outbox;
  now: () => number;
  partnerState(partnerId: string): PartnerState;
  /** Deliveries one partner may replay per window (partnerApi.replayMax per partnerApi.replayWindowMs). */
  replayBudget: { max: number; windowMs: number };
}

/** Registers the delivery routes in the (authenticated) partner API scope. */
export function registerDeliveryRoutes(api: FastifyInstance, deps: DeliveryRouteDeps): void {
  const budgets = new ReplayBudgets(deps.replayBudget);
  api.get<{ Querystring: Static<typeof ListQuery> }>(
    "/line/deliveries",
    { schema: { querystring: ListQuery, response: { 200: ListAnswer } } },
    async (request) => {
      const { conversation, limit = 100, cursor } = request.query;
      const filter = { ...filterOf(request, request.query), conversation };
      const page = await deps.store.listDeliveries(filter, { after: Number(cursor ?? 0), limit });
      const last = page.at(-1);
      const { partnerId } = request.partner;
      const state = deps.partnerState(partnerId);
      return {
        code: "0",
        partner: {
          id: partnerId,
          state: state.state,
          paused_until: state.state === "paused" ? state.until : null,
        },
        deliveries: page.map(toAnswer),
        next_cursor: page.length === limit && last ? String(last.eventId) : null,
      };
    },
  );

  api.post<{ Body: Static<typeof ReplayBody> }>(
    "/line/deliveries/replay",
    { schema: { body: ReplayBody, response: { 200: ReplayAnswer } } },
    async (request, reply) => {
      const { body } = request;
      checkRange(body);
      const filter = { ...filterOf(request, body), serialNumbers: body.serial_numbers };
      const matched = await deps.store.countDeliveries(filter);
      let replayed: string[] = [];
      let found: readonly string[] = [];
      if (body.dry_run) {
        if (body.serial_numbers) {
          const page = { after: 0, limit: body.serial_numbers.length };
          found = (await deps.store.listDeliveries(filter, page)).map((record) => record.serialNumber);
        }
      } else {
        // Replays go through the same fair queue as everything else, and a partner may replay only so
        // many deliveries per window: a flood of them is its own backlog, not anyone else's.
        const { partnerId } = request.partner;
        const allowed = budgets.left(partnerId, deps.now());
        if (allowed <= 0) {
          const retry = Math.ceil(budgets.resetIn(partnerId, deps.now()) / 1000);
          void reply.header("retry-after", retry);
          throw new TalkgateError(
            "-429",
            `replay budget used up: at most ${deps.replayBudget.max} deliveries per ` +
              `${deps.replayBudget.windowMs / 1000} s for this partner; retry in ${retry} s`,
          );
        }
        replayed = await deps.store.replayDeliveries(filter, deps.now(), Math.min(REPLAY_LIMIT, allowed));
        budgets.spend(partnerId, replayed.length, deps.now());
        found = replayed;
        request.log.info({ sender_key: body.sender_key, replayed: replayed.length }, "delivery:replayed");
      }
      const known = new Set(found);
      const missing = body.serial_numbers?.filter((serial) => !known.has(serial)) ?? [];
      return { code: "0", matched, replayed: replayed.length, serial_numbers: replayed, not_found: missing };
    },
  );
}

/** Each partner's replays in the current fixed window. */
class ReplayBudgets {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #spent = new Map<string, { since: number; count: number }>();

  constructor(options: { max: number; windowMs: number }) {
    this.#max = options.max;
    this.#windowMs = options.windowMs;
  }

  /** Deliveries the partner may still replay in this window. */
  left(partnerId: string, now: number): number {
    return this.#max - this.#current(partnerId, now).count;
  }

  /** Milliseconds until the partner's window starts over. */
  resetIn(partnerId: string, now: number): number {
    return this.#current(partnerId, now).since + this.#windowMs - now;
  }

  spend(partnerId: string, count: number, now: number): void {
    this.#current(partnerId, now).count += count;
  }

  #current(partnerId: string, now: number) {
    let window = this.#spent.get(partnerId);
    if (!window || now - window.since >= this.#windowMs) {
      window = { since: now, count: 0 };
      this.#spent.set(partnerId, window);
    }
    return window;
  }
}
