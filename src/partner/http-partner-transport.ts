// Delivers payloads to partners over HTTP: keep-alive, bounded time, no redirects, Standard Webhooks signatures.
import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";
import type { Dispatcher } from "undici";
// The Agent alone: undici's index also loads fetch, WebSocket, caches and mocks (~110 modules in all, ~5 MB of heap).
import Agent from "undici/lib/dispatcher/agent.js";
import type { AttemptResult, Clock, PartnerTransport } from "../app/ports.ts";
import { standardWebhookKey, standardWebhookSignature } from "../core/signature.ts";
import { isPrivateAddress, publicOnlyLookup } from "../net/address-policy.ts";

/** A partner as the transport sees it. */
export interface PartnerEndpoint {
  id: string;
  receiveUrl: string;
  signingSecret?: string | undefined;
  /** Every active signing secret: each delivery carries one signature per secret (a rotation has two). */
  signingSecrets?: readonly string[] | undefined;
  allowPrivateNetwork: boolean;
}

interface Route {
  origin: string;
  path: string;
  signingKeys: KeyObject[];
  agent: Agent;
  privateLiteral: boolean;
}

/** The {@link PartnerTransport} over HTTP(S). Any 2xx is an ack; everything else is a failed attempt. */
export class HttpPartnerTransport implements PartnerTransport {
  readonly #routes = new Map<string, Route>();
  readonly #agents: [open: Agent, guarded: Agent];
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
    this.setPartners(partners);
  }

  /** Where deliveries go from now on (attempts under way finish where they were going). */
  setPartners(partners: readonly PartnerEndpoint[]): void {
    const [open, guarded] = this.#agents;
    this.#routes.clear();
    for (const partner of partners) {
      const url = new URL(`${partner.receiveUrl.replace(/\/+$/, "")}/message`);
      const host = url.hostname.replace(/^\[|\]$/g, "");
      const secrets = [
        ...(partner.signingSecrets ?? []),
        ...(partner.signingSecret ? [partner.signingSecret] : []),
      ];
      this.#routes.set(partner.id, {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        signingKeys: secrets.map(standardWebhookKey),
        agent: partner.allowPrivateNetwork ? open : guarded,
        // IP literals never reach the DNS lookup, so they are checked here.
        privateLiteral: !partner.allowPrivateNetwork && isIP(host) !== 0 && isPrivateAddress(host),
      });
    }
  }

  send(partnerId: string, webhookId: string, body: string): Promise<AttemptResult> {
    const route = this.#routes.get(partnerId);
    if (!route)
      return Promise.resolve({ ok: false, status: null, reason: `no partner ${partnerId} configured` });
    if (route.privateLiteral)
      return Promise.resolve({ ok: false, status: null, reason: "destination is a private address" });

    const headers = [
      "content-type",
      "application/json; charset=utf-8",
      "user-agent",
      "talkgate",
      "webhook-id",
      webhookId,
    ];
    if (route.signingKeys.length > 0) {
      const timestamp = Math.floor(this.#clock.now() / 1000);
      // During a rotation the partner may verify with either secret: one signature each, space-separated.
      const signature = route.signingKeys
        .map((key) => standardWebhookSignature(key, webhookId, timestamp, body))
        .join(" ");
      headers.push("webhook-timestamp", String(timestamp), "webhook-signature", signature);
    }
    // The dispatcher's own handler API rather than request(): the answer's body is never read, so no
    // stream is made for it (a third of undici's cost per delivery). undici's timeouts bound each wait;
    // the attempt's own deadline bounds the whole of it (a partner trickling its answer a byte at a time
    // resets bodyTimeout for ever), and aborting ends it then.
    return new Promise((resolve) => {
      const handler = new AttemptHandler(resolve, this.#timeoutMs);
      try {
        route.agent.dispatch(
          {
            origin: route.origin,
            path: route.path,
            method: "POST",
            headers,
            body,
            headersTimeout: this.#timeoutMs,
            bodyTimeout: this.#timeoutMs,
          },
          handler,
        );
      } catch (error) {
        handler.onResponseError(null, error);
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#agents.map((agent) => agent.close()));
  }
}

// Most of an answer's body read (and dropped) to keep its connection; a longer one closes it.
const MAX_DRAINED_BYTES = 128 * 1024;

/**
 * Turns one dispatch into an {@link AttemptResult}. The status decides; the answer's body is dropped as
 * it comes and waited for, so that the connection is free again for the conversation's next event.
 */
class AttemptHandler implements Dispatcher.DispatchHandler {
  readonly #resolve: (result: AttemptResult) => void;
  readonly #deadline: NodeJS.Timeout;
  #controller: Dispatcher.DispatchController | null = null;
  #status: number | null = null;
  #drained = 0;
  #settled = false;

  constructor(resolve: (result: AttemptResult) => void, timeoutMs: number) {
    this.#resolve = resolve;
    // Connecting, waiting in the pool, sending, the headers and the whole body: all within timeoutMs.
    this.#deadline = setTimeout(() => {
      const overdue = new DeadlineError();
      this.#controller?.abort(overdue);
      this.#settle(overdue);
    }, timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // A request that only leaves the pool after its deadline never goes out.
    if (this.#settled) controller.abort(new DeadlineError());
    else this.#controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.#status = statusCode;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#drained += chunk.length;
    if (this.#drained > MAX_DRAINED_BYTES) controller.abort(new Error("answer too long to drain"));
  }

  onResponseEnd(): void {
    this.#settle(null);
  }

  // Once the status line has come the answer counts, even if its body is cut off, too long or too slow.
  onResponseError(_controller: Dispatcher.DispatchController | null, error: unknown): void {
    this.#settle(error);
  }

  #settle(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#deadline);
    const status = this.#status;
    if (status === null) this.#resolve({ ok: false, status: null, reason: describe(error) });
    else if (status >= 200 && status < 300) this.#resolve({ ok: true, status });
    else this.#resolve({ ok: false, status, reason: `HTTP ${status}` });
  }
}

/** An attempt that did not end within delivery.timeoutMs. */
class DeadlineError extends Error {
  constructor() {
    super("timed out");
    this.name = "DeadlineError";
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (/^(Deadline|HeadersTimeout|BodyTimeout)Error$/.test(error.name)) return "timed out";
    const code = (error as { code?: unknown }).code;
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    return typeof code === "string" ? code : typeof cause === "string" ? cause : error.message;
  }
  return String(error);
}
