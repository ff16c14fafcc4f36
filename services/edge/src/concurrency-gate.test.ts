import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { meshError } from "../../../lib/errors.js";
import { KeyConcurrency, limitConcurrency } from "./concurrency-gate.js";
import { toHttpError } from "./openai/errors.js";
import type { Generations, GenerationInput, RequestContext } from "./openai/generation.js";

const ctx = (keyId: string, maxConcurrent: number) => ({ principal: { keyId, limits: { maxConcurrent } } }) as unknown as RequestContext;

/** Generations whose run yields one event, then fails or finishes as told. */
function fakeGenerations(fail = false): Generations {
  return {
    async *run() {
      yield { type: "started" };
      if (fail) throw meshError(Code.Unavailable, "shard gone");
    },
  } as unknown as Generations;
}

describe("per-key concurrency", () => {
  it("holds a slot while a generation runs and gives it back when it finishes, fails or is abandoned", async () => {
    const concurrency = new KeyConcurrency();
    for (const fail of [false, true]) {
      const generations = limitConcurrency(fakeGenerations(fail), concurrency);
      const run = generations.run({} as GenerationInput, ctx("k", 1));
      await run.next();
      expect(concurrency.inFlight("k")).toBe(1);
      const second = generations.run({} as GenerationInput, ctx("k", 1));
      await expect(second.next()).rejects.toMatchObject({ code: Code.ResourceExhausted });
      await run.next().catch(() => undefined);
      await run.next().catch(() => undefined);
      expect(concurrency.inFlight("k")).toBe(0);
    }
    const abandoned = limitConcurrency(fakeGenerations(), concurrency).run({} as GenerationInput, ctx("k", 1));
    await abandoned.next();
    await abandoned.return(undefined);
    expect(concurrency.inFlight("k")).toBe(0);
  });

  it("counts keys separately and leaves keys without a limit uncounted", () => {
    const concurrency = new KeyConcurrency();
    concurrency.acquire("a", 1);
    expect(() => concurrency.acquire("b", 1)).not.toThrow();
    for (let i = 0; i < 100; i++) concurrency.acquire("free", 0);
    expect(concurrency.inFlight("free")).toBe(0);
  });

  it("answers over the limit with 429 concurrency_limit_exceeded, and overloaded with 503 and retry-after", () => {
    const concurrency = new KeyConcurrency();
    concurrency.acquire("k", 1);
    let refused: unknown;
    try {
      concurrency.acquire("k", 1);
    } catch (err) {
      refused = err;
    }
    const limit = toHttpError(refused, "req-1");
    expect([limit.status, limit.code, limit.type]).toEqual([429, "concurrency_limit_exceeded", "requests"]);
    const overloaded = toHttpError(meshError(Code.ResourceExhausted, 'model "m" is overloaded', { reason: "overloaded" }), "req-2");
    expect([overloaded.status, overloaded.code]).toEqual([503, "overloaded"]);
    expect(overloaded.headers["retry-after"]).toBe("1");
    // A plain rate limit stays 429.
    expect(toHttpError(new ConnectError("Rate limit reached", Code.ResourceExhausted), "req-3").status).toBe(429);
  });
});
