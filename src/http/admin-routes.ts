// The admin API under /admin (SPEC §10): sign-in, status, partners, channels, partner keys, signing secrets and
// operator tokens. Operations on deliveries, events, LINE webhook endpoints and the audit log are in
// admin-ops-routes.ts. Secrets go in and never come out.
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { ManageConfig } from "../app/manage-config.ts";
import { type OperatorAccess, SIGN_IN_ACTION } from "../app/operator-access.ts";
import type { ChannelTokenManager } from "../app/renew-channel-tokens.ts";
import type { Channel, Partner } from "../app/runtime-config.ts";
import type { Credential, DeliveryStats } from "../app/store.ts";
import { OPERATOR_NAME_PATTERN, PARTNER_ID_PATTERN, SENDER_KEY_PATTERN } from "../config/config.ts";
import { type AccessTokenCredential, readAccessToken } from "../core/access-token.ts";
import { TalkgateError } from "../core/errors.ts";
import type { PartnerState } from "../core/partner-health.ts";
import { FORWARDABLE_EVENT_TYPES } from "../core/partner-payload.ts";
import { installAdminAuth, SESSION_COOKIE, sessionCookie } from "./admin-auth.ts";
import { type AdminOpsDeps, registerAdminOpsRoutes } from "./admin-ops-routes.ts";
import { ADMIN_API_TAG, ADMIN_OPERATIONS, ErrorAnswer } from "./openapi.ts";
import { installValidation } from "./validation.ts";

export interface AdminApiDeps extends AdminOpsDeps {
  access: OperatorAccess;
  manage: ManageConfig;
  version: string;
  database: "sqlite" | "postgres";
  /** Session cookies are marked Secure when talkgate is reached over https. */
  secureCookies: boolean;
  /** Each channel's token state. */
  tokens: Pick<ChannelTokenManager, "status">;
  /** What a partner's deliveries are doing, as this instance sees them. */
  partnerState(partnerId: string): PartnerState;
}

/** The window of the overview's per-channel traffic figures. */
const OVERVIEW_WINDOW_MS = 60_000;

const Millis = Type.Union([Type.Integer(), Type.Null()], { description: "Unix time (ms); null: never" });
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: "^[^\\u0000-\\u001f]+$" });
const ManagedBy = Type.Union([Type.Literal("file"), Type.Literal("api")], {
  description: "file: from the configuration file, read-only here; api: made through this API",
});
const EventTypes = Type.Array(Type.Union(FORWARDABLE_EVENT_TYPES.map((t) => Type.Literal(t))), {
  uniqueItems: true,
});
const Secret = (description: string) => Type.String({ minLength: 1, maxLength: 1000, description });

// A channel's credential from a body: the static shorthand or an accessToken object (not both); undefined: neither.
function credentialOf(
  channelAccessToken: string | undefined | null,
  accessToken: unknown,
): AccessTokenCredential | undefined {
  if (channelAccessToken != null && accessToken != null)
    throw new TalkgateError("-405", "channelAccessToken: give either it or accessToken, not both");
  if (channelAccessToken != null) return { type: "static", token: channelAccessToken };
  if (accessToken == null) return undefined;
  const read = readAccessToken(accessToken, "accessToken");
  if (!read.ok) throw new TalkgateError("-405", read.problems.join("; "));
  return read.credential;
}

const KeyAnswer = Type.Object({
  id: Type.String(),
  name: Type.String(),
  managedBy: ManagedBy,
  createdAt: Millis,
  lastUsedAt: Millis,
});
const PartnerAnswer = Type.Object({
  id: Type.String(),
  receiveUrl: Type.String(),
  allowPrivateNetwork: Type.Boolean(),
  allowWebhookEndpointChange: Type.Boolean(),
  lineEventFields: Type.Boolean(),
  disabled: Type.Boolean(),
  managedBy: ManagedBy,
  createdAt: Millis,
  updatedAt: Millis,
  signingSecrets: Type.Array(Type.Object({ id: Type.String(), addedAt: Type.Integer() }), {
    description: "ids only: a secret is never shown",
  }),
  apiKeys: Type.Array(KeyAnswer, { description: "live keys (ids and names only)" }),
});
const TokenType = Type.Union(["static", "v2.1", "stateless", "shortLived"].map((t) => Type.Literal(t)));
const AccessTokenBody = Type.Object(
  {
    type: TokenType,
    token: Type.Optional(Secret("static: the channel access token (write-only)")),
    kid: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: "v2.1: the key id LINE gave" }),
    ),
    privateKey: Type.Optional(
      Type.Union([Type.Object({}, { additionalProperties: true }), Type.String({ maxLength: 10_000 })], {
        description: "v2.1: the private JWK (or its JSON), write-only",
      }),
    ),
    ttlSeconds: Type.Optional(Type.Integer({ description: "v2.1: each token's lifetime (default 30 days)" })),
  },
  {
    additionalProperties: false,
    description:
      "How the channel calls LINE (SPEC §11): a static token, or tokens talkgate issues and renews (v2.1 with the channel's assertion key, stateless or shortLived with its ID and secret)",
  },
);
const TokenState = Type.Object({
  type: TokenType,
  kid: Type.Optional(Type.String()),
  ttlSeconds: Type.Optional(Type.Integer()),
  state: Type.Union(
    ["valid", "failing", "none"].map((t) => Type.Literal(t)),
    {
      description:
        "valid: a token is in use; failing: LINE refused the last issue (a token may still be valid); none: no usable token (calls answer -407)",
    },
  ),
  issuedAt: Millis,
  expiresAt: Millis,
  renewAt: Millis,
  lastRenewalAt: Millis,
  lastFailureAt: Millis,
  lastFailure: Type.Union([Type.String(), Type.Null()]),
  retiredTokens: Type.Integer({ description: "replaced tokens not yet revoked at LINE" }),
});
const ChannelAnswer = Type.Object({
  senderKey: Type.String(),
  partner: Type.String(),
  forwardEventTypes: Type.Array(Type.String()),
  hasChannelAccessToken: Type.Boolean(),
  accessToken: Type.Union([TokenState, Type.Null()], { description: "null: none configured" }),
  disabled: Type.Boolean(),
  managedBy: ManagedBy,
  createdAt: Millis,
  updatedAt: Millis,
});
const TokenAnswer = Type.Object({
  id: Type.String(),
  operator: Type.String(),
  name: Type.String(),
  createdAt: Type.Integer(),
  createdBy: Type.String(),
  revokedAt: Millis,
  lastUsedAt: Millis,
});
const Done = Type.Null({ description: "done" });

const PartnerIdParams = Type.Object({ id: Type.String({ pattern: PARTNER_ID_PATTERN }) });
const SenderKeyParams = Type.Object({ senderKey: Type.String({ pattern: SENDER_KEY_PATTERN }) });

/** Registers the admin API; every route but sign-in needs an operator token or a session. */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminApiDeps): void {
  void app.register(async (admin) => {
    admin.addHook("onRoute", (route) => {
      route.schema = {
        ...route.schema,
        tags: [ADMIN_API_TAG],
        ...ADMIN_OPERATIONS[`${[route.method].flat()[0]} ${route.url}`],
        security: route.config?.public ? [] : [{ operatorToken: [] }, { operatorSession: [] }],
        response: {
          "4xx": ErrorAnswer,
          "5xx": ErrorAnswer,
          ...(route.schema?.response as object | undefined),
        },
      };
    });
    installAdminAuth(admin, { access: deps.access, audit: deps.store, now: deps.now });
    installValidation(admin);

    admin.post<{ Body: { name: string; password: string } }>(
      "/admin/sign-in",
      {
        config: { public: true, audit: SIGN_IN_ACTION },
        schema: {
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 100 }),
              password: Type.String({ minLength: 1, maxLength: 1000 }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              operator: Type.Object({ name: Type.String(), role: Type.String() }),
              csrfToken: Type.String({
                description: "send as x-csrf-token with every change made with this session",
              }),
              expiresAt: Type.Integer(),
            }),
          },
        },
      },
      async (request, reply) => {
        const { name, password } = request.body;
        request.audit.actor = name;
        request.audit.target = name;
        try {
          const signedIn = await deps.access.signIn(name, password);
          const maxAge = Math.floor((signedIn.expiresAt - deps.now()) / 1000);
          void reply.header(
            "set-cookie",
            `${SESSION_COOKIE}=${signedIn.session}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${deps.secureCookies ? "; Secure" : ""}`,
          );
          return {
            operator: { name: signedIn.operator.name, role: signedIn.operator.role },
            csrfToken: signedIn.csrfToken,
            expiresAt: signedIn.expiresAt,
          };
        } catch (error) {
          const retryAfterS = (error as { retryAfterS?: number }).retryAfterS;
          if (retryAfterS !== undefined) void reply.header("retry-after", retryAfterS);
          throw error;
        }
      },
    );

    admin.post(
      "/admin/sign-out",
      { config: { audit: "operator.sign-out" }, schema: { response: { 204: Done } } },
      async (request, reply) => {
        const session = sessionCookie(request);
        if (session !== undefined) await deps.access.signOut(session);
        return reply
          .header("set-cookie", `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`)
          .status(204)
          .send();
      },
    );

    admin.get(
      "/admin/me",
      {
        schema: {
          response: { 200: Type.Object({ name: Type.String(), role: Type.String(), via: Type.String() }) },
        },
      },
      async (request) => ({
        name: request.operator.name,
        role: request.operator.role,
        via: request.operator.credentialId === null ? "session" : "token",
      }),
    );

    admin.get(
      "/admin/status",
      {
        schema: {
          response: {
            200: Type.Object({
              version: Type.String(),
              database: Type.String(),
              configVersion: Type.Integer(),
              partners: Type.Integer(),
              channels: Type.Integer(),
              deliveries: Type.Object({
                pending: Type.Integer(),
                retrying: Type.Integer(),
                dead: Type.Integer(),
                oldestWaitingAt: Millis,
              }),
            }),
          },
        },
      },
      async () => {
        const { snapshot } = deps.runtime;
        const deliveries: DeliveryStats = await deps.store.deliveryStats();
        return {
          version: deps.version,
          database: deps.database,
          configVersion: snapshot.version,
          partners: snapshot.partners.size,
          channels: snapshot.channels.size,
          deliveries,
        };
      },
    );

    admin.get(
      "/admin/overview",
      {
        schema: {
          response: {
            200: Type.Object({
              at: Type.Integer({ description: "Unix time (ms) of the figures" }),
              windowMs: Type.Integer({ description: "received and delivered count this window, up to at" }),
              channels: Type.Array(
                Type.Object({
                  senderKey: Type.String(),
                  partner: Type.String(),
                  disabled: Type.Boolean(),
                  partnerState: Type.Union(
                    ["delivering", "paused", "probing", "disabled"].map((s) => Type.Literal(s)),
                    { description: "the partner's deliveries as this instance sees them" },
                  ),
                  received: Type.Integer({ description: "webhook events received in the window" }),
                  delivered: Type.Integer({
                    description: "deliveries that reached the partner in the window",
                  }),
                  lastReceivedAt: Millis,
                  pending: Type.Integer(),
                  retrying: Type.Integer(),
                  dead: Type.Integer(),
                  oldestWaitingAt: Millis,
                  token: Type.Union([
                    Type.Object({
                      type: Type.String(),
                      state: Type.Union([
                        Type.Literal("valid"),
                        Type.Literal("failing"),
                        Type.Literal("none"),
                      ]),
                      expiresAt: Millis,
                    }),
                    Type.Null(),
                  ]),
                }),
              ),
            }),
          },
        },
      },
      async () => {
        const { channels, partners } = deps.runtime.snapshot;
        const at = deps.now();
        const activity = await deps.store.channelActivity([...channels.keys()], at - OVERVIEW_WINDOW_MS);
        return {
          at,
          windowMs: OVERVIEW_WINDOW_MS,
          channels: activity.map((figures) => {
            const channel = channels.get(figures.senderKey) as Channel;
            const token = deps.tokens.status(figures.senderKey);
            return {
              ...figures,
              partner: channel.partner,
              disabled: channel.disabled,
              partnerState: partners.get(channel.partner)?.disabled
                ? "disabled"
                : deps.partnerState(channel.partner).state,
              token: token && { type: token.type, state: token.state, expiresAt: token.expiresAt },
            };
          }),
        };
      },
    );

    // Partners.
    const partnerAnswer = async (partner: Partner) => {
      const keys =
        partner.managedBy === "file"
          ? [...deps.runtime.snapshot.keys.values()].filter((k) => k.partnerId === partner.id)
          : (await deps.store.listCredentials("partner-key"))
              .filter((k) => k.owner === partner.id && k.revokedAt === null)
              .map((k) => ({ ...k, managedBy: "api" as const }));
      return {
        id: partner.id,
        receiveUrl: partner.receiveUrl,
        allowPrivateNetwork: partner.allowPrivateNetwork,
        allowWebhookEndpointChange: partner.allowWebhookEndpointChange,
        lineEventFields: partner.lineEventFields,
        disabled: partner.disabled,
        managedBy: partner.managedBy,
        createdAt: partner.createdAt,
        updatedAt: partner.updatedAt,
        signingSecrets: partner.signingSecrets.map((s) => ({ id: s.id, addedAt: s.addedAt })),
        apiKeys: keys.map((k) => ({
          id: k.id,
          name: k.name,
          managedBy: k.managedBy,
          createdAt: k.createdAt,
          lastUsedAt: k.lastUsedAt,
        })),
      };
    };
    const PartnerFlags = {
      allowPrivateNetwork: Type.Optional(Type.Boolean()),
      allowWebhookEndpointChange: Type.Optional(Type.Boolean()),
      lineEventFields: Type.Optional(Type.Boolean()),
    };

    admin.get(
      "/admin/partners",
      { schema: { response: { 200: Type.Object({ partners: Type.Array(PartnerAnswer) }) } } },
      async () => ({
        partners: await Promise.all([...deps.runtime.snapshot.partners.values()].map(partnerAnswer)),
      }),
    );
    admin.post<{
      Body: { id: string; receiveUrl: string; signingSecret?: string } & Record<string, boolean | undefined>;
    }>(
      "/admin/partners",
      {
        config: { audit: "partner.create" },
        schema: {
          body: Type.Object(
            {
              id: Type.String({ pattern: PARTNER_ID_PATTERN }),
              receiveUrl: Type.String({ minLength: 1, maxLength: 2000 }),
              signingSecret: Type.Optional(
                Secret("whsec_… (talkgate secrets signing makes one); write-only"),
              ),
              ...PartnerFlags,
            },
            { additionalProperties: false },
          ),
          response: { 201: PartnerAnswer },
        },
      },
      async (request, reply) => {
        request.audit.target = request.body.id;
        const partner = await deps.manage.createPartner(request.body);
        return reply.status(201).send(await partnerAnswer(partner));
      },
    );
    admin.get<{ Params: { id: string } }>(
      "/admin/partners/:id",
      { schema: { params: PartnerIdParams, response: { 200: PartnerAnswer } } },
      async (request) => partnerAnswer(deps.manage.partner(request.params.id)),
    );
    admin.patch<{ Params: { id: string }; Body: { receiveUrl?: string } & Record<string, unknown> }>(
      "/admin/partners/:id",
      {
        config: { audit: "partner.update" },
        schema: {
          params: PartnerIdParams,
          body: Type.Object(
            {
              receiveUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
              disabled: Type.Optional(
                Type.Boolean({ description: "true: its keys are refused, its deliveries wait" }),
              ),
              ...PartnerFlags,
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: PartnerAnswer },
        },
      },
      async (request) => partnerAnswer(await deps.manage.updatePartner(request.params.id, request.body)),
    );
    admin.delete<{ Params: { id: string } }>(
      "/admin/partners/:id",
      { config: { audit: "partner.delete" }, schema: { params: PartnerIdParams, response: { 204: Done } } },
      async (request, reply) => {
        await deps.manage.deletePartner(request.params.id);
        return reply.status(204).send();
      },
    );

    admin.post<{ Params: { id: string }; Body: { name: string } }>(
      "/admin/partners/:id/keys",
      {
        config: { audit: "partner.key.create" },
        schema: {
          params: PartnerIdParams,
          body: Type.Object({ name: Name }, { additionalProperties: false }),
          response: {
            201: Type.Object({
              id: Type.String(),
              name: Type.String(),
              key: Type.String({ description: "the key itself: shown this once, give it to the partner" }),
            }),
          },
        },
      },
      async (request, reply) => {
        const { id, key } = await deps.manage.createPartnerKey(
          request.params.id,
          request.body.name,
          request.operator.name,
        );
        request.audit.target = `${request.params.id}/keys/${id}`;
        return reply.status(201).send({ id, name: request.body.name, key });
      },
    );
    admin.delete<{ Params: { id: string; keyId: string } }>(
      "/admin/partners/:id/keys/:keyId",
      {
        config: { audit: "partner.key.revoke" },
        schema: {
          params: Type.Object({
            id: PartnerIdParams.properties.id,
            keyId: Type.String({ pattern: "^[0-9a-f]{16}$" }),
          }),
          response: { 204: Done },
        },
      },
      async (request, reply) => {
        await deps.manage.revokePartnerKey(request.params.id, request.params.keyId);
        return reply.status(204).send();
      },
    );
    admin.post<{ Params: { id: string }; Body: { secret: string } }>(
      "/admin/partners/:id/signing-secrets",
      {
        config: { audit: "partner.signing-secret.add" },
        schema: {
          params: PartnerIdParams,
          body: Type.Object(
            { secret: Secret("whsec_… (talkgate secrets signing makes one); write-only") },
            { additionalProperties: false },
          ),
          response: { 201: PartnerAnswer },
        },
      },
      async (request, reply) => {
        const partner = await deps.manage.addSigningSecret(request.params.id, request.body.secret);
        return reply.status(201).send(await partnerAnswer(partner));
      },
    );
    admin.delete<{ Params: { id: string; secretId: string } }>(
      "/admin/partners/:id/signing-secrets/:secretId",
      {
        config: { audit: "partner.signing-secret.retire" },
        schema: {
          params: Type.Object({
            id: PartnerIdParams.properties.id,
            secretId: Type.String({ pattern: "^[0-9a-f]{8}$" }),
          }),
          response: { 200: PartnerAnswer },
        },
      },
      async (request) =>
        partnerAnswer(await deps.manage.retireSigningSecret(request.params.id, request.params.secretId)),
    );

    // Channels.
    const tokenState = ({ senderKey, accessToken }: Channel) => {
      const status = deps.tokens.status(senderKey);
      if (!accessToken || !status) return null;
      const { retired, ...times } = status;
      const key =
        accessToken.type === "v2.1" ? { kid: accessToken.kid, ttlSeconds: accessToken.ttlSeconds } : {};
      return { ...key, ...times, retiredTokens: retired };
    };
    const channelAnswer = (channel: Channel) => ({
      senderKey: channel.senderKey,
      partner: channel.partner,
      forwardEventTypes: [...channel.forwardEventTypes],
      hasChannelAccessToken: channel.accessToken !== undefined,
      accessToken: tokenState(channel),
      disabled: channel.disabled,
      managedBy: channel.managedBy,
      createdAt: channel.createdAt,
      updatedAt: channel.updatedAt,
    });
    admin.get(
      "/admin/channels",
      { schema: { response: { 200: Type.Object({ channels: Type.Array(ChannelAnswer) }) } } },
      async () => ({ channels: [...deps.runtime.snapshot.channels.values()].map(channelAnswer) }),
    );
    admin.post<{
      Body: {
        senderKey: string;
        partner: string;
        channelSecret: string;
        channelAccessToken?: string;
        accessToken?: unknown;
        forwardEventTypes?: string[];
      };
    }>(
      "/admin/channels",
      {
        config: { audit: "channel.create" },
        schema: {
          body: Type.Object(
            {
              senderKey: Type.String({ pattern: SENDER_KEY_PATTERN, description: "the LINE channel ID" }),
              partner: Type.String({ pattern: PARTNER_ID_PATTERN }),
              channelSecret: Secret("write-only"),
              channelAccessToken: Type.Optional(Secret("write-only: a static token (or give accessToken)")),
              accessToken: Type.Optional(AccessTokenBody),
              forwardEventTypes: Type.Optional(EventTypes),
            },
            { additionalProperties: false },
          ),
          response: { 201: ChannelAnswer },
        },
      },
      async (request, reply) => {
        const { channelAccessToken, accessToken, ...body } = request.body;
        request.audit.target = body.senderKey;
        const credential = credentialOf(channelAccessToken, accessToken) ?? undefined;
        return reply
          .status(201)
          .send(channelAnswer(await deps.manage.createChannel({ ...body, accessToken: credential })));
      },
    );
    admin.get<{ Params: { senderKey: string } }>(
      "/admin/channels/:senderKey",
      { schema: { params: SenderKeyParams, response: { 200: ChannelAnswer } } },
      async (request) => channelAnswer(deps.manage.channel(request.params.senderKey)),
    );
    admin.patch<{
      Params: { senderKey: string };
      Body: {
        partner?: string;
        channelSecret?: string;
        channelAccessToken?: string | null;
        accessToken?: unknown;
        forwardEventTypes?: string[];
        disabled?: boolean;
      };
    }>(
      "/admin/channels/:senderKey",
      {
        config: { audit: "channel.update" },
        schema: {
          params: SenderKeyParams,
          body: Type.Object(
            {
              partner: Type.Optional(Type.String({ pattern: PARTNER_ID_PATTERN })),
              channelSecret: Type.Optional(Secret("write-only")),
              channelAccessToken: Type.Optional(
                Type.Union([Secret("write-only: a static token"), Type.Null()], {
                  description: "null removes it",
                }),
              ),
              accessToken: Type.Optional(
                Type.Union([AccessTokenBody, Type.Null()], { description: "null removes it" }),
              ),
              forwardEventTypes: Type.Optional(EventTypes),
              disabled: Type.Optional(Type.Boolean({ description: "true: its webhooks are refused" })),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: ChannelAnswer },
        },
      },
      async (request) => {
        const { channelAccessToken, accessToken, ...change } = request.body;
        const credential =
          channelAccessToken === null || accessToken === null
            ? null
            : credentialOf(channelAccessToken, accessToken);
        return channelAnswer(
          await deps.manage.updateChannel(request.params.senderKey, {
            ...change,
            ...(credential === undefined ? {} : { accessToken: credential }),
          }),
        );
      },
    );
    admin.delete<{ Params: { senderKey: string } }>(
      "/admin/channels/:senderKey",
      { config: { audit: "channel.delete" }, schema: { params: SenderKeyParams, response: { 204: Done } } },
      async (request, reply) => {
        await deps.manage.deleteChannel(request.params.senderKey);
        return reply.status(204).send();
      },
    );

    // Operator tokens.
    const tokenAnswer = (t: Credential) => ({
      id: t.id,
      operator: t.owner,
      name: t.name,
      createdAt: t.createdAt,
      createdBy: t.createdBy,
      revokedAt: t.revokedAt,
      lastUsedAt: t.lastUsedAt,
    });
    admin.get(
      "/admin/tokens",
      { schema: { response: { 200: Type.Object({ tokens: Type.Array(TokenAnswer) }) } } },
      async () => ({ tokens: (await deps.access.listTokens()).map(tokenAnswer) }),
    );
    admin.post<{ Body: { operator: string; name: string } }>(
      "/admin/tokens",
      {
        config: { audit: "operator.token.create" },
        schema: {
          body: Type.Object(
            { operator: Type.String({ pattern: OPERATOR_NAME_PATTERN }), name: Name },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              id: Type.String(),
              operator: Type.String(),
              name: Type.String(),
              token: Type.String({ description: "the token itself: shown this once" }),
            }),
          },
        },
      },
      async (request, reply) => {
        const { operator, name } = request.body;
        const { id, token } = await deps.access.createToken(operator, name, request.operator.name);
        request.audit.target = `${operator}/tokens/${id}`;
        return reply.status(201).send({ id, operator, name, token });
      },
    );
    admin.delete<{ Params: { id: string } }>(
      "/admin/tokens/:id",
      {
        config: { audit: "operator.token.revoke" },
        schema: {
          params: Type.Object({ id: Type.String({ pattern: "^[0-9a-f]{16}$" }) }),
          response: { 204: Done },
        },
      },
      async (request, reply) => {
        await deps.access.revokeToken(request.params.id);
        return reply.status(204).send();
      },
    );

    registerAdminOpsRoutes(admin, deps);
  });
}
