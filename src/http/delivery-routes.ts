// Deliveries you can operate: GET /line/deliveries (list, filter, page) and POST /line/deliveries/replay.
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { DeliveryFilter, DeliveryRecord, Store } from "../app/ports.ts";
import { TalkgateError } from "../core/errors.ts";

const State = Type.Union([
  Type.Literal("pending"),
  Type.Literal("retrying"),
  Type.Literal("delivered"),
  Type.Literal("dead"),
]);
const Millis = Type.Integer({ minimum: 0, description: "Unix time in ms (the event's receive time)" });

const ListQuery = Type.Object(
  {
    sender_key: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: "default: every channel of the key" }),
    ),
    state: Type.Optional(State),
    conversation: Type.Optional(
      Type.String({ maxLength: 80, description: "user:<id>, group:<id> or room:<id>" }),
    ),
    from: Type.Optional(Millis),
    to: Type.Optional(Millis),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(
      Type.String({ pattern: "^[0-9]{1,16}$", description: "next_cursor of the previous page" }),
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
    from: Type.Optional(Millis),
    to: Type.Optional(Millis),
  },
  { additionalProperties: false },
);

/** Most deliveries one replay call queues again. */
const REPLAY_LIMIT = 10_000;

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

/** Registers the delivery routes in the (authenticated) partner API scope. */
export function registerDeliveryRoutes(
  api: FastifyInstance,
  deps: { store: Store; now: () => number },
): void {
  api.get<{ Querystring: Static<typeof ListQuery> }>(
    "/line/deliveries",
    { schema: { querystring: ListQuery } },
    async (request) => {
      const { conversation, limit = 100, cursor } = request.query;
      const filter = { ...filterOf(request, request.query), conversation };
      const page = await deps.store.listDeliveries(filter, { after: Number(cursor ?? 0), limit });
      const last = page.at(-1);
      return {
        code: "0",
        deliveries: page.map(toAnswer),
        next_cursor: page.length === limit && last ? String(last.eventId) : null,
      };
    },
  );

  api.post<{ Body: Static<typeof ReplayBody> }>(
    "/line/deliveries/replay",
    { schema: { body: ReplayBody } },
    async (request) => {
      const { body } = request;
      if (!body.serial_numbers && body.from === undefined && body.to === undefined) {
        throw new TalkgateError("-405", "serial_numbers, from, to: give serial_numbers or a time range");
      }
      const filter = { ...filterOf(request, body), serialNumbers: body.serial_numbers };
      const replayed = await deps.store.replayDeliveries(filter, deps.now(), REPLAY_LIMIT);
      request.log.info({ sender_key: body.sender_key, replayed: replayed.length }, "delivery:replayed");
      const missing = body.serial_numbers?.filter((serial) => !replayed.includes(serial)) ?? [];
      return { code: "0", replayed: replayed.length, serial_numbers: replayed, not_found: missing };
    },
  );
}
