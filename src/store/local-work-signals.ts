// Work signals within one process: a store that one process owns tells its own workers directly.
import type { Work, WorkSignals } from "../app/store.ts";

/** {@link WorkSignals} as plain callbacks; `signal` is called by the store once a write is durable. */
export class LocalWorkSignals implements WorkSignals {
  readonly #listeners = new Map<Work, Array<() => void>>();

  onWork(work: Work, wake: () => void): void {
    this.#listeners.set(work, [...(this.#listeners.get(work) ?? []), wake]);
  }

  signal(work: Work): void {
    for (const wake of this.#listeners.get(work) ?? []) wake();
  }
}
