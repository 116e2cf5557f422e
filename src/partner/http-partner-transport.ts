// Delivers payloads to partners over HTTP: keep-alive, bounded time, no redirects, Standard Webhooks signatures.
import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { Agent, request } from "undici";
import type { AttemptResult, Clock, PartnerTransport } from "../app/ports.ts";
import { standardWebhookKey, standardWebhookSignature } from "../core/signature.ts";
import { isPrivateAddress, publicOnlyLookup } from "../net/address-policy.ts";

/** A partner as the transport sees it. */
export interface PartnerEndpoint {
  id: string;
  receiveUrl: string;
  signingSecret?: string | undefined;
  allowPrivateNetwork: boolean;
}

interface Route {
  url: URL;
  signingKey: KeyObject | undefined;
  agent: Agent;
  privateLiteral: boolean;
}

/** The {@link PartnerTransport} over HTTP(S). Any 2xx is an ack; everything else is a failed attempt. */
export class HttpPartnerTransport implements PartnerTransport {
  readonly #routes = new Map<string, Route>();
  readonly #agents: Agent[];
  readonly #timeoutMs: number;
  readonly #clock: Clock;

  constructor(partners: readonly PartnerEndpoint[], options: { timeoutMs: number; clock: Clock }) {
    this.#timeoutMs = options.timeoutMs;
    this.#clock = options.clock;
    const agentOptions = {
      connect: { timeout: options.timeoutMs },
      keepAliveTimeout: 30_000,
      connections: 128,
    };
    const open = new Agent(agentOptions);
    const guarded = new Agent({
      ...agentOptions,
      connect: { ...agentOptions.connect, lookup: publicOnlyLookup },
    });
    this.#agents = [open, guarded];
    for (const partner of partners) {
      const url = new URL(`${partner.receiveUrl.replace(/\/+$/, "")}/message`);
      const host = url.hostname.replace(/^\[|\]$/g, "");
      this.#routes.set(partner.id, {
        url,
        signingKey: partner.signingSecret ? standardWebhookKey(partner.signingSecret) : undefined,
        agent: partner.allowPrivateNetwork ? open : guarded,
        // IP literals never reach the DNS lookup, so they are checked here.
        privateLiteral: !partner.allowPrivateNetwork && isIP(host) !== 0 && isPrivateAddress(host),
      });
    }
  }

  async send(partnerId: string, idempotencyKey: string, body: string): Promise<AttemptResult> {
    const route = this.#routes.get(partnerId);
    if (!route) return { ok: false, status: null, reason: `no partner ${partnerId} configured` };
    if (route.privateLiteral) return { ok: false, status: null, reason: "destination is a private address" };

    const headers: Record<string, string> = {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "talkgate",
      "webhook-id": idempotencyKey,
    };
    if (route.signingKey) {
      const timestamp = Math.floor(this.#clock.now() / 1000);
      headers["webhook-timestamp"] = String(timestamp);
      headers["webhook-signature"] = standardWebhookSignature(
        route.signingKey,
        idempotencyKey,
        timestamp,
        body,
      );
    }
    try {
      const response = await request(route.url, {
        method: "POST",
        headers,
        body,
        dispatcher: route.agent,
        // undici's own timers: cheaper per request than an AbortSignal.timeout.
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      // The body is not read, only drained so the connection can be reused.
      await response.body.dump();
      const status = response.statusCode;
      return status >= 200 && status < 300
        ? { ok: true, status }
        : { ok: false, status, reason: `HTTP ${status}` };
    } catch (error) {
      return { ok: false, status: null, reason: describe(error) };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#agents.map((agent) => agent.close()));
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "HeadersTimeoutError" || error.name === "BodyTimeoutError") return "timed out";
    const code = (error as { code?: unknown }).code;
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    return typeof code === "string" ? code : typeof cause === "string" ? cause : error.message;
  }
  return String(error);
}
