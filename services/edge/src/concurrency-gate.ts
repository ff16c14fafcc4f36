import { Code, meshError } from "../../../lib/errors.js";
import type { Generations } from "./openai/generation.js";

/** The OpenAI `code` of a request refused because its key has too many in flight. */
export const CONCURRENCY_LIMIT_REASON = "concurrency_limit_exceeded";

/**
 * Per-key concurrency: how many requests of each key are in flight on this
 * edge, against the key's `limits.max_concurrent` (0 = unlimited). The count
 * is per edge process, so with N edges a key can have up to N × its limit in
 * flight; it needs no call and cannot leak when a request ends abnormally.
 */
export class KeyConcurrency {
  readonly #inFlight = new Map<string, number>();

  /**
   * Takes one slot of `keyId`'s limit, or throws ResourceExhausted
   * (`concurrency_limit_exceeded`, 429 at the edge). Returns the release,
   * which is safe to call more than once.
   */
  acquire(keyId: string, maxConcurrent: number): () => void {
    if (maxConcurrent <= 0) return noop;
    const running = this.#inFlight.get(keyId) ?? 0;
    if (running >= maxConcurrent) {
      throw meshError(Code.ResourceExhausted, `Too many concurrent requests for key ${keyId}: limit ${maxConcurrent}. Wait for one to finish and try again.`, {
        reason: CONCURRENCY_LIMIT_REASON,
      });
    }
    this.#inFlight.set(keyId, running + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(keyId) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(keyId, left);
      else this.#inFlight.delete(keyId);
    };
  }

  /** Requests of `keyId` in flight now. */
  inFlight(keyId: string): number {
    return this.#inFlight.get(keyId) ?? 0;
  }
}

/**
 * Puts every generation (OpenAI chat and completions, the public gRPC
 * service) behind its key's concurrency limit: the slot is taken when the
 * generation starts, before rate-limit admission, and given back when it
 * ends however it ends (finished, failed, or the client went away).
 */
export function limitConcurrency(generations: Generations, concurrency = new KeyConcurrency()): Generations {
  const run = generations.run.bind(generations);
  generations.run = async function* limitedRun(input, ctx) {
    const release = concurrency.acquire(ctx.principal.keyId, ctx.principal.limits?.maxConcurrent ?? 0);
    try {
      yield* run(input, ctx);
    } finally {
      release();
    }
  };
  return generations;
}

function noop(): void {}
