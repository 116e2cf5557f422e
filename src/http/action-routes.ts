// Partner API routes that act through LINE: send, loading, read, user profile and directory, webhook endpoint.
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import {
  type ChatDeps,
  markAsRead,
  setUser,
  setWebhookEndpoint,
  showLoading,
  userProfile,
  webhookEndpoint,
} from "../app/chat-actions.ts";
import { type EraseDeps, eraseUser } from "../app/erase-user.ts";
import type { Metrics } from "../app/ports.ts";
import { type SendDeps, type SendTarget, sendMessage } from "../app/send-message.ts";
import { TalkgateError } from "../core/errors.ts";
import { MAX_MESSAGES } from "../core/line-messages.ts";

const SenderKey = Type.String({ minLength: 1, maxLength: 64, description: "the LINE channel ID" });
const UserKey = Type.String({ minLength: 1, maxLength: 64, description: "the LINE userId (U…)" });

const SendBody = Type.Object(
  {
    sender_key: SenderKey,
    user_key: Type.Optional(UserKey),
    group_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    room_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    serial_number: Type.String({
      minLength: 1,
      maxLength: 30,
      description: "the partner's own unique id of this send",
    }),
    // Checked by validateMessages, which counts text in UTF-16 units as LINE does and names the field.
    messages: Type.Array(Type.Unknown(), {
      minItems: 1,
      maxItems: MAX_MESSAGES,
      description: "1–5 LINE message objects",
    }),
    notification_disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const LoadingBody = Type.Object(
  {
    sender_key: SenderKey,
    user_key: UserKey,
    seconds: Type.Integer({ minimum: 5, maximum: 60, multipleOf: 5 }),
  },
  { additionalProperties: false },
);
const ReadBody = Type.Object(
  { sender_key: SenderKey, serial_number: Type.String({ minLength: 1, maxLength: 30 }) },
  { additionalProperties: false },
);
const ProfileQuery = Type.Object(
  { sender_key: SenderKey, user_key: UserKey },
  { additionalProperties: false },
);
const UserBody = Type.Object(
  {
    sender_key: SenderKey,
    user_key: UserKey,
    e164: Type.Optional(Type.String({ maxLength: 32 })),
    agree_type: Type.Optional(Type.Integer({ minimum: 0, maximum: 9 })),
  },
  { additionalProperties: false },
);
const EraseBody = Type.Object({ sender_key: SenderKey, user_key: UserKey }, { additionalProperties: false });
/** What an erasure deleted (the admin API answers the same, without `code`). */
export const ErasedFields = {
  events: Type.Integer({
    description: "the user's events whose text and content were deleted (the events stay)",
  }),
  attachments: Type.Integer({ description: "attachments deleted, files included" }),
  sends: Type.Integer({ description: "sends to the user whose messages were deleted" }),
  directory: Type.Boolean({ description: "the user's directory entry (e164, agree_type) was deleted" }),
};
const EndpointBody = Type.Object(
  { sender_key: SenderKey, endpoint: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);
const ChannelQuery = Type.Object({ sender_key: SenderKey }, { additionalProperties: false });

const OK = { code: "0" } as const;
const OkAnswer = Type.Object({ code: Type.Literal("0") }, { description: "done" });

const SendAnswer = Type.Object(
  {
    code: Type.Literal("0"),
    method: Type.Union([Type.Literal("reply"), Type.Literal("push")], {
      description: "reply (free, with the conversation's reply token) or push (counted in the monthly quota)",
    }),
    sent_messages: Type.Array(
      Type.Object(
        { id: Type.String(), quoteToken: Type.Optional(Type.String()) },
        { additionalProperties: true, description: "as LINE answered it" },
      ),
      {
        description:
          "LINE's sentMessages: one per message sent (empty when a resumed reply's answer was lost)",
      },
    ),
  },
  { description: "sent (or sent before: a repeat of a serial_number answers the first result)" },
);
const ProfileAnswer = Type.Object({
  code: Type.Literal("0"),
  user_key: Type.String(),
  user_name: Type.String({ description: "the LINE display name" }),
  picture_url: Type.String({ description: '"" when LINE has none' }),
  status_message: Type.String(),
  language: Type.String(),
  e164: Type.String({ description: 'from talkgate\'s user directory; "" when unknown' }),
  agree_type: Type.Integer({ description: "from talkgate's user directory; 0 when unknown" }),
});
const EndpointAnswer = Type.Object({
  code: Type.Literal("0"),
  endpoint: Type.String({ description: 'the webhook URL LINE has for the channel ("" when none)' }),
  active: Type.Boolean(),
});

/** The one target of a send: exactly one of user_key, group_id, room_id. */
function targetOf(body: Static<typeof SendBody>): SendTarget {
  const targets: SendTarget[] = [];
  if (body.user_key) targets.push({ type: "user", id: body.user_key });
  if (body.group_id) targets.push({ type: "group", id: body.group_id });
  if (body.room_id) targets.push({ type: "room", id: body.room_id });
  const [target] = targets;
  if (!target || targets.length > 1)
    throw new TalkgateError("-405", "user_key, group_id, room_id: give exactly one");
  return target;
}

function hostOf(url: string): string | null {
  return URL.canParse(url) ? new URL(url).host : null;
}

/** Registers the action routes in the (already authenticated) partner API scope. */
export function registerActionRoutes(
  api: FastifyInstance,
  deps: ChatDeps & { send: SendDeps; metrics: Metrics; erase: EraseDeps },
): void {
  api.post<{ Body: Static<typeof SendBody> }>(
    "/line/message/send",
    { schema: { body: SendBody, response: { 200: SendAnswer } } },
    async (request) => {
      const { body } = request;
      request.partner.requireChannel(body.sender_key);
      const answer = await sendMessage(deps.send, {
        partnerId: request.partner.partnerId,
        senderKey: body.sender_key,
        target: targetOf(body),
        serialNumber: body.serial_number,
        messages: body.messages,
        notificationDisabled: body.notification_disabled ?? false,
      });
      request.log.info(
        {
          sender_key: body.sender_key,
          serial_number: body.serial_number,
          method: answer.method,
          line_request_id: answer.requestId,
        },
        "send:sent",
      );
      return { code: "0", method: answer.method, sent_messages: answer.sentMessages };
    },
  );

  api.post<{ Body: Static<typeof LoadingBody> }>(
    "/line/chat/loading",
    { schema: { body: LoadingBody, response: { 200: OkAnswer } } },
    async (request) => {
      const { sender_key, user_key, seconds } = request.body;
      request.partner.requireChannel(sender_key);
      await showLoading(deps, sender_key, user_key, seconds);
      return OK;
    },
  );

  api.post<{ Body: Static<typeof ReadBody> }>(
    "/line/chat/read",
    { schema: { body: ReadBody, response: { 200: OkAnswer } } },
    async (request) => {
      const { sender_key, serial_number } = request.body;
      request.partner.requireChannel(sender_key);
      await markAsRead(deps, sender_key, serial_number);
      return OK;
    },
  );

  api.get<{ Querystring: Static<typeof ProfileQuery> }>(
    "/line/user/profile",
    { schema: { querystring: ProfileQuery, response: { 200: ProfileAnswer } } },
    async (request) => {
      const { sender_key, user_key } = request.query;
      request.partner.requireChannel(sender_key);
      const profile = await userProfile(deps, sender_key, user_key);
      return {
        code: "0",
        user_key,
        user_name: profile.displayName,
        picture_url: profile.pictureUrl ?? "",
        status_message: profile.statusMessage ?? "",
        language: profile.language ?? "",
        e164: profile.e164,
        agree_type: profile.agreeType,
      };
    },
  );

  api.post<{ Body: Static<typeof UserBody> }>(
    "/line/user",
    { schema: { body: UserBody, response: { 200: OkAnswer } } },
    async (request) => {
      const { sender_key, user_key, e164, agree_type } = request.body;
      request.partner.requireChannel(sender_key);
      await setUser(deps, sender_key, user_key, { e164, agreeType: agree_type });
      return OK;
    },
  );

  api.post<{ Body: Static<typeof EraseBody> }>(
    "/line/user/erase",
    {
      schema: {
        body: EraseBody,
        response: { 200: Type.Object({ code: Type.Literal("0"), ...ErasedFields }) },
      },
    },
    async (request) => {
      const { sender_key, user_key } = request.body;
      request.partner.requireChannel(sender_key);
      return { ...OK, ...(await eraseUser(deps.erase, sender_key, user_key)) };
    },
  );

  api.post<{ Body: Static<typeof EndpointBody> }>(
    "/line/channel/webhook/endpoint/set",
    { schema: { body: EndpointBody, response: { 200: OkAnswer } } },
    async (request) => {
      const { sender_key, endpoint } = request.body;
      const { partner } = request;
      partner.requireChannel(sender_key);
      if (!partner.allowWebhookEndpointChange) {
        throw new TalkgateError(
          "-403",
          "this partner may not change a channel's webhook URL (partners[].allowWebhookEndpointChange)",
        );
      }
      const { previous } = await setWebhookEndpoint(deps, sender_key, endpoint);
      // Who pointed which channel's webhooks where: hosts only (a URL's path and query may hold secrets).
      request.log.warn(
        {
          partner: partner.partnerId,
          key_id: partner.keyId,
          sender_key,
          from_host: previous ? hostOf(previous) : null,
          to_host: hostOf(endpoint),
        },
        "channel:webhook:changed",
      );
      return OK;
    },
  );

  api.get<{ Querystring: Static<typeof ChannelQuery> }>(
    "/line/channel/webhook/endpoint/info",
    { schema: { querystring: ChannelQuery, response: { 200: EndpointAnswer } } },
    async (request) => {
      const { sender_key } = request.query;
      request.partner.requireChannel(sender_key);
      const info = await webhookEndpoint(deps, sender_key);
      return { code: "0", endpoint: info.endpoint, active: info.active };
    },
  );
}
