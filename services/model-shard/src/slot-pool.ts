import { Code } from "@connectrpc/connect";
import { meshError } from "../../../lib/errors.js";

/** Running, queued and free counts, as load reports carry them. */
export interface Load {
  running: number;
  queued: number;
  freeSlots: number;
}

/**
 * A fixed number of generation slots with a bounded FIFO wait queue in
 * front. A full queue answers ResourceExhausted at once (never queue
 * without bound); a waiter whose caller left is dropped from the queue.
 */
export class SlotPool {
  #running = 0;
  readonly #queue: Array<{ grant: () => void }> = [];
  readonly #listeners = new Set<(load: Load) => void>();

  constructor(
    readonly slots: number,
    readonly maxQueue: number,
  ) {}

  get load(): Load {
    return { running: this.#running, queued: this.#queue.length, freeSlots: this.slots - this.#running };
  }

  /** Subscribes to load changes; returns the unsubscribe function. */
  onChange(listener: (load: Load) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Waits for a slot; the returned function releases it (call it once). */
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) throw meshError(Code.Canceled, "cancelled before a slot was free");
    if (this.#running < this.slots && this.#queue.length === 0) {
      this.#running++;
      this.#changed();
      return this.#releaser();
    }
    if (this.#queue.length >= this.maxQueue) {
      throw meshError(Code.ResourceExhausted, `overloaded: ${this.#running} running and ${this.#queue.length} queued`);
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        this.#changed();
        reject(meshError(Code.Canceled, "cancelled while queued"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
      this.#changed();
    });
    return this.#releaser();
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next) next.grant();
      else this.#running--;
      this.#changed();
    };
  }

  #changed(): void {
    const load = this.load;
    for (const listener of this.#listeners) listener(load);
  }
}
