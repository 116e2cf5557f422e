// GET /healthz (the process is alive) and GET /readyz (the store answers).
import type { FastifyInstance } from "fastify";
import type { Store } from "../app/store.ts";
import { TalkgateError } from "../core/errors.ts";

export function registerHealthRoutes(app: FastifyInstance, store: Pick<Store, "ping">): void {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async () => {
    try {
      await store.ping();
    } catch (error) {
      throw new TalkgateError("-600", "store not reachable", { cause: error });
    }
    return { status: "ready" };
  });
}
