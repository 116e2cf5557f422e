// The loop shared by background workers: claim due work up to a concurrency bound, process it, sleep until due.
import type { Logger } from "pino";
import type { Clock } from "./ports.ts";

export interface WorkLoopOptions<T> {
  /** Names the worker in log lines (`<name>:claim:failed`). */
  name: string;
  /** Items processed at the same time. */
  concurrency: number;
  /** A lower cap for now, asked before each claim (while more urgent work is going on). */
  limit?: () => number;
  /** Longest sleep when idle; wake() ends a sleep at once. */
  pollMs: number;
  clock: Clock;
  logger: Logger;
  /** Claims up to `limit` due items. */
  claim(limit: number): Promise<T[]>;
  /** Processes one claimed item; must record its outcome itself and not throw. */
  process(item: T): Promise<void>;
  /** When the next item becomes due, or null when none waits. */
  nextDueAt(): Promise<number | null>;
}

/** Runs {@link WorkLoopOptions.process} on claimed items, never more than `concurrency` at once. */
export class WorkLoop<T> {
  readonly #options: WorkLoopOptions<T>;
  readonly #inFlight = new Set<Promise<void>>();
  #running = false;
  #woken = false;
  #wakeUp: (() => void) | null = null;
  #loop: Promise<void> = Promise.resolve();

  constructor(options: WorkLoopOptions<T>) {
    this.#options = options;
  }

  /** False once stop() was called: long-running items should wind up. */
  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Tells the loop there may be new work. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /** Stops claiming and waits for the items in flight. */
  async stop(): Promise<void> {
    this.#running = false;
    this.wake();
    await this.#loop;
    await Promise.all(this.#inFlight);
  }

  async #run(): Promise<void> {
    const { logger, name } = this.#options;
    while (this.#running) {
      this.#woken = false;
      const { concurrency, limit } = this.#options;
      const free = Math.min(concurrency, limit?.() ?? concurrency) - this.#inFlight.size;
      if (free > 0) {
        let items: T[] = [];
        try {
          items = await this.#options.claim(free);
        } catch (error) {
          logger.error({ err: error }, `${name}:claim:failed`);
        }
        for (const item of items) this.#track(item);
        if (items.length > 0 && items.length === free) continue;
      }
      const delay = free > 0 ? await this.#idleDelay() : this.#options.pollMs;
      // A wake-up that came while the claim or the delay were being worked out is not lost.
      if (!this.#woken && this.#running) await this.#sleep(delay);
    }
  }

  #track(item: T): void {
    const work = this.#options.process(item).catch((error: unknown) => {
      this.#options.logger.error({ err: error }, `${this.#options.name}:process:failed`);
    });
    this.#inFlight.add(work);
    void work.finally(() => {
      this.#inFlight.delete(work);
      this.wake();
    });
  }

  async #idleDelay(): Promise<number> {
    const next = await this.#options.nextDueAt().catch(() => null);
    const poll = this.#options.pollMs;
    return next === null ? poll : Math.max(0, Math.min(poll, next - this.#options.clock.now()));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeUp = done;
    });
  }
}
