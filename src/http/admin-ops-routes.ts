// The admin API's operations: deliveries across channels (search, replay), event lookup (text masked unless
// revealed, and the reveal audited), a channel's LINE webhook endpoint (info, set, test), a user's erasure and the
// audit log.
import { Readable } from "node:stream";
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { type EraseDeps, eraseUser } from "../app/erase-user.ts";
import { lineValue, requireToken } from "../app/line-answers.ts";
import type { LineApi } from "../app/ports.ts";
import type { RuntimeConfig } from "../app/runtime-config.ts";
import type {
  AuditEntry,
  DeliveryFilter,
  EventLog,
  EventRecord,
  OperatorData,
  Outbox,
  Sends,
} from "../app/store.ts";
import { TalkgateError } from "../core/errors.ts";
import { asObject } from "../core/line-event.ts";
import { maskEvent, maskMessage } from "../core/mask-event.ts";
import { ErasedFields } from "./action-routes.ts";

export interface AdminOpsDeps {
  erase: EraseDeps;
  store: EventLog & Outbox & OperatorData & Pick<Sends, "listSends">;
  runtime: RuntimeConfig;
  line: LineApi;
  now: () => number;
}

const Millis = (description: string) => Type.Integer({ minimum: 0, description });
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const State = Type.Union([
  Type.Literal("pending"),
  Type.Literal("retrying"),
  Type.Literal("delivered"),
  Type.Literal("dead"),
]);
const SenderKey = Type.String({ minLength: 1, maxLength: 64 });
/** Most deliveries one admin replay queues again. */
const REPLAY_LIMIT = 10_000;

const DeliveryQuery = Type.Object(
  {
    senderKey: Type.Optional(SenderKey),
    state: Type.Optional(State),
    conversation: Type.Optional(Type.String({ maxLength: 80 })),
    from: Type.Optional(Millis("received at or after (Unix ms)")),
    to: Type.Optional(Millis("received before (Unix ms)")),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,16}$" })),
  },
  { additionalProperties: false },
);
const DeliveryAnswer = Type.Object({
  senderKey: Type.String(),
  serialNumber: Type.String(),
  conversation: Type.String(),
  eventType: Type.String(),
  state: State,
  attempts: Type.Integer(),
  lastStatus: NullableInt,
  lastError: Type.Union([Type.String(), Type.Null()]),
  receivedAt: Type.Integer(),
  updatedAt: Type.Integer(),
  nextAttemptAt: Type.Integer(),
});
const ReplayBody = Type.Object(
  {
    senderKey: Type.Optional(SenderKey),
    serialNumbers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 30 }), { minItems: 1, maxItems: 1000 }),
    ),
    state: Type.Optional(State),
    from: Type.Optional(Millis("received at or after (Unix ms)")),
    to: Type.Optional(Millis("received before (Unix ms)")),
    dryRun: Type.Optional(Type.Boolean({ description: "only count what matches" })),
  },
  { additionalProperties: false, description: "serialNumbers (with senderKey), or a range (from and to)" },
);
const EventQuerySchema = Type.Object(
  {
    senderKey: Type.Optional(SenderKey),
    serialNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 30 })),
    messageId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    userId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    from: Type.Optional(Millis("received at or after (Unix ms)")),
    to: Type.Optional(Millis("received before (Unix ms)")),
    reveal: Type.Optional(Type.Boolean({ description: "true: show message text (audited)" })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,16}$" })),
  },
  { additionalProperties: false },
);
const AuditQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ maxLength: 100 })),
    action: Type.Optional(Type.String({ maxLength: 100 })),
    target: Type.Optional(Type.String({ maxLength: 200 })),
    outcome: Type.Optional(Type.String({ maxLength: 20 })),
    from: Type.Optional(Millis("at or after (Unix ms)")),
    to: Type.Optional(Millis("before (Unix ms)")),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,16}$" })),
  },
  { additionalProperties: false },
);
const AuditAnswer = Type.Object({
  id: Type.Integer(),
  at: Type.Integer(),
  actorKind: Type.String(),
  actor: Type.String(),
  credentialId: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.String(),
  requestId: Type.Union([Type.String(), Type.Null()]),
});
const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: "pass as cursor for the next page",
});
const SenderKeyParams = Type.Object({ senderKey: SenderKey });

/** A stored event as operators see it: its message text masked unless revealed. */
const StoredEventAnswer = Type.Object({
  senderKey: Type.String(),
  serialNumber: Type.String(),
  type: Type.String(),
  conversation: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()]),
  messageId: Type.Union([Type.String(), Type.Null()]),
  receivedAt: Type.Integer(),
  unsent: Type.Boolean(),
  event: Type.Object({}, { additionalProperties: true, description: "the LINE event as stored" }),
  delivery: Type.Union([
    Type.Object({
      state: State,
      attempts: Type.Integer(),
      lastStatus: NullableInt,
      lastError: Type.Union([Type.String(), Type.Null()]),
      updatedAt: Type.Integer(),
    }),
    Type.Null(),
  ]),
});

const TimelineQuery = Type.Object(
  {
    senderKey: SenderKey,
    conversation: Type.String({
      pattern: "^(channel|(user|group|room):[A-Za-z0-9]{1,64})$",
      description: "user:U…, group:C…, room:R… (as deliveries name it), or channel",
    }),
    reveal: Type.Optional(Type.Boolean({ description: "texts unmasked; audited as event.reveal" })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  },
  { additionalProperties: false },
);

/** A partner's send in a conversation's timeline: its messages' texts masked unless revealed. */
const SendItem = Type.Object({
  kind: Type.Literal("send"),
  at: Millis("when the partner sent it"),
  serialNumber: Type.String(),
  partner: Type.String(),
  state: Type.String({ description: "sending, sent, failed or unknown" }),
  method: Type.Union([Type.Literal("reply"), Type.Literal("push"), Type.Null()]),
  attempts: Type.Integer(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  lineRequestId: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.Integer(),
  messages: Type.Array(Type.Unknown(), {
    description: "the LINE messages sent ([] once the user was erased)",
  }),
});

// A stored event as operators see it, its text masked unless revealed.
function eventAnswer({ eventId: _id, body, ...record }: EventRecord, reveal: boolean) {
  const event = asObject(JSON.parse(body)) ?? {};
  return { ...record, event: reveal ? event : maskEvent(event) };
}

/** Registers the operations routes in the (authenticated) admin scope. */
export function registerAdminOpsRoutes(admin: FastifyInstance, deps: AdminOpsDeps): void {
  const allChannels = () => [...deps.runtime.snapshot.channels.keys()];
  const channels = (senderKey: string | undefined): string[] => {
    if (senderKey === undefined) return allChannels();
    if (!deps.runtime.snapshot.channels.has(senderKey))
      throw new TalkgateError("-804", `no channel ${JSON.stringify(senderKey)}`);
    return [senderKey];
  };

  admin.get<{ Querystring: Static<typeof DeliveryQuery> }>(
    "/admin/deliveries",
    {
      schema: {
        querystring: DeliveryQuery,
        response: { 200: Type.Object({ deliveries: Type.Array(DeliveryAnswer), nextCursor: NextCursor }) },
      },
    },
    async (request) => {
      const { senderKey, state, conversation, from, to, limit = 100, cursor } = request.query;
      const filter: DeliveryFilter = { senderKeys: channels(senderKey), state, conversation, from, to };
      const page = await deps.store.listDeliveries(filter, { after: Number(cursor ?? 0), limit });
      const last = page.at(-1);
      return {
        deliveries: page.map(({ eventId: _id, ...record }) => record),
        nextCursor: page.length === limit && last ? String(last.eventId) : null,
      };
    },
  );

  admin.post<{ Body: Static<typeof ReplayBody> }>(
    "/admin/deliveries/replay",
    {
      config: { audit: "deliveries.replay" },
      schema: {
        body: ReplayBody,
        response: {
          200: Type.Object({
            matched: Type.Integer(),
            replayed: Type.Integer(),
            serialNumbers: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const { senderKey, serialNumbers, state, from, to, dryRun } = request.body;
      if (serialNumbers && senderKey === undefined)
        throw new TalkgateError("-405", "senderKey: needed with serialNumbers (they are unique per channel)");
      if (!serialNumbers && (from === undefined || to === undefined))
        throw new TalkgateError("-405", "from, to: give serialNumbers, or a time range with from and to");
      if (from !== undefined && to !== undefined && to <= from)
        throw new TalkgateError("-405", "to: must be later than from");
      const filter: DeliveryFilter = { senderKeys: channels(senderKey), serialNumbers, state, from, to };
      request.audit.target = senderKey ?? "*";
      if (dryRun) request.audit.action = "deliveries.replay.count";
      const matched = await deps.store.countDeliveries(filter);
      const replayed = dryRun ? [] : await deps.store.replayDeliveries(filter, deps.now(), REPLAY_LIMIT);
      return { matched, replayed: replayed.length, serialNumbers: replayed };
    },
  );

  admin.get<{ Querystring: Static<typeof EventQuerySchema> }>(
    "/admin/events",
    {
      schema: {
        querystring: EventQuerySchema,
        response: {
          200: Type.Object({
            events: Type.Array(StoredEventAnswer),
            nextCursor: NextCursor,
          }),
        },
      },
    },
    async (request) => {
      const {
        senderKey,
        serialNumber,
        messageId,
        userId,
        from,
        to,
        reveal,
        limit = 50,
        cursor,
      } = request.query;
      if (serialNumber !== undefined && senderKey === undefined)
        throw new TalkgateError("-405", "senderKey: needed with serialNumber (it is unique per channel)");
      if (reveal) {
        // Who read whose messages is recorded, whether they found any or not.
        request.audit.action = "event.reveal";
        request.audit.target = [senderKey ?? "*", serialNumber ?? messageId ?? userId ?? "*"].join("/");
      }
      const found = await deps.store.findEvents({
        senderKeys: channels(senderKey),
        serialNumber,
        messageId,
        userId,
        from,
        to,
        before: cursor === undefined ? undefined : Number(cursor),
        limit,
      });
      const last = found.at(-1);
      return {
        events: found.map((record) => eventAnswer(record, reveal === true)),
        nextCursor: found.length === limit && last ? String(last.eventId) : null,
      };
    },
  );

  admin.get<{ Querystring: Static<typeof TimelineQuery> }>(
    "/admin/timeline",
    {
      schema: {
        querystring: TimelineQuery,
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Union([
                Type.Composite([
                  Type.Object({ kind: Type.Literal("event"), at: Millis("when it was received") }),
                  StoredEventAnswer,
                ]),
                SendItem,
              ]),
              { description: "newest first" },
            ),
            complete: Type.Boolean({ description: "false: older items were left out (limit)" }),
          }),
        },
      },
    },
    async (request) => {
      const { senderKey, conversation, reveal = false, limit = 100 } = request.query;
      channels(senderKey);
      if (reveal) {
        request.audit.action = "event.reveal";
        request.audit.target = `${senderKey}/${conversation}`;
      }
      // One more of each than asked: whether older items were left out.
      const [events, sends] = await Promise.all([
        deps.store.findEvents({ senderKeys: [senderKey], conversation, limit: limit + 1 }),
        deps.store.listSends(senderKey, conversation, limit + 1),
      ]);
      const items = [
        ...events.map((record) => ({
          kind: "event" as const,
          at: record.receivedAt,
          ...eventAnswer(record, reveal),
        })),
        ...sends.map(({ partnerId, createdAt, messages, ...send }) => ({
          kind: "send" as const,
          at: createdAt,
          partner: partnerId,
          ...send,
          messages: reveal ? JSON.parse(messages) : maskMessage(JSON.parse(messages)),
        })),
      ].sort((a, b) => b.at - a.at);
      return { items: items.slice(0, limit), complete: items.length <= limit };
    },
  );

  admin.post<{ Params: { senderKey: string; userId: string } }>(
    "/admin/channels/:senderKey/users/:userId/erase",
    {
      config: { audit: "user.erase" },
      schema: {
        params: Type.Object({
          senderKey: SenderKey,
          userId: Type.String({ minLength: 1, maxLength: 64, description: "the LINE userId (U…)" }),
        }),
        response: { 200: Type.Object(ErasedFields) },
      },
    },
    async (request) => {
      const { senderKey, userId } = request.params;
      channels(senderKey);
      return eraseUser(deps.erase, senderKey, userId);
    },
  );

  admin.get<{ Params: { senderKey: string } }>(
    "/admin/channels/:senderKey/webhook-endpoint",
    {
      schema: {
        params: SenderKeyParams,
        response: { 200: Type.Object({ endpoint: Type.String(), active: Type.Boolean() }) },
      },
    },
    async (request) => {
      const { senderKey } = request.params;
      channels(senderKey);
      requireToken(deps.line, senderKey);
      return lineValue(await deps.line.getWebhookEndpoint(senderKey));
    },
  );
  admin.put<{ Params: { senderKey: string }; Body: { endpoint: string } }>(
    "/admin/channels/:senderKey/webhook-endpoint",
    {
      config: { audit: "channel.webhook-endpoint.set" },
      schema: {
        params: SenderKeyParams,
        body: Type.Object(
          {
            endpoint: Type.String({
              pattern: "^https://",
              maxLength: 500,
              description: "https only (LINE's rule)",
            }),
          },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { senderKey } = request.params;
      channels(senderKey);
      requireToken(deps.line, senderKey);
      lineValue(await deps.line.setWebhookEndpoint(senderKey, request.body.endpoint));
      return reply.status(204).send();
    },
  );
  admin.post<{ Params: { senderKey: string }; Body: { endpoint?: string } | undefined }>(
    "/admin/channels/:senderKey/webhook-endpoint/test",
    {
      config: { audit: "channel.webhook-endpoint.test" },
      schema: {
        params: SenderKeyParams,
        body: Type.Optional(
          Type.Object(
            { endpoint: Type.Optional(Type.String({ pattern: "^https?://", maxLength: 500 })) },
            { additionalProperties: false },
          ),
        ),
        response: {
          200: Type.Object({
            success: Type.Boolean(),
            timestamp: Type.String(),
            statusCode: Type.Integer(),
            reason: Type.String(),
            detail: Type.String(),
          }),
        },
      },
    },
    async (request) => {
      const { senderKey } = request.params;
      channels(senderKey);
      requireToken(deps.line, senderKey);
      return lineValue(await deps.line.testWebhookEndpoint(senderKey, request.body?.endpoint));
    },
  );

  const auditFilter = (query: Static<typeof AuditQuery>) => ({
    actor: query.actor,
    action: query.action,
    target: query.target,
    outcome: query.outcome,
    from: query.from,
    to: query.to,
    before: query.cursor === undefined ? undefined : Number(query.cursor),
  });
  admin.get<{ Querystring: Static<typeof AuditQuery> }>(
    "/admin/audit",
    {
      schema: {
        querystring: AuditQuery,
        response: { 200: Type.Object({ entries: Type.Array(AuditAnswer), nextCursor: NextCursor }) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const entries = await deps.store.listAudit({ ...auditFilter(request.query), limit });
      const last = entries.at(-1);
      return { entries, nextCursor: entries.length === limit && last ? String(last.id) : null };
    },
  );
  admin.get<{ Querystring: Static<typeof AuditQuery> }>(
    "/admin/audit/export",
    {
      schema: {
        querystring: AuditQuery,
        response: {
          200: {
            description: "every matching entry, newest first, one JSON object per line",
            content: { "application/x-ndjson": { schema: { type: "string" } } },
          },
        },
      },
    },
    async (request, reply) => {
      // Read page by page: an export of the whole log never holds it in memory at once.
      const filter = auditFilter(request.query);
      async function* lines(): AsyncGenerator<string> {
        let before = filter.before;
        for (;;) {
          const page: AuditEntry[] = await deps.store.listAudit({ ...filter, before, limit: 500 });
          for (const entry of page) yield `${JSON.stringify(entry)}\n`;
          const last = page.at(-1);
          if (page.length < 500 || !last) return;
          before = last.id;
        }
      }
      return reply.type("application/x-ndjson").send(Readable.from(lines()));
    },
  );
}
