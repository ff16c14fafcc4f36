import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { catalogSchema, SIM_SYSTEM_FINGERPRINT } from "../../../../lib/catalog/index.js";
import type { SimBackend } from "../../../../lib/catalog/index.js";
import { SamplingParamsSchema } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { EngineChunk } from "../engine.js";
import { SimEngine, SimLatencyModel } from "./sim-engine.js";

function simBackend(extra: Partial<SimBackend> = {}): SimBackend {
  return catalogSchema.parse({ models: [{ name: "s", backends: [{ name: "sim", engine: "sim", ...extra }] }] }).models[0].backends[0] as SimBackend;
}

async function run(engine: SimEngine, promptTokens: number, maxTokens: number, options: { ignoreEos?: boolean; signal?: AbortSignal } = {}) {
  const gen = engine.generate(
    {
      requestId: "r",
      promptTokenIds: Array.from({ length: promptTokens }, (_, i) => i),
      messages: [],
      prompt: "",
      sampling: create(SamplingParamsSchema, { maxTokens, ignoreEos: options.ignoreEos ?? false }),
    },
    options.signal ?? new AbortController().signal,
  );
  const chunks: EngineChunk[] = [];
  for (;;) {
    const next = await gen.next();
    if (next.done) return { chunks, result: next.value };
    chunks.push(next.value);
  }
}

const model = fc
  .record({
    prefill: fc.double({ min: 1, max: 1e6, noNaN: true }),
    perToken: fc.double({ min: 0, max: 1000, noNaN: true }),
    perExtra: fc.double({ min: 0, max: 100, noNaN: true }),
    maxBatch: fc.integer({ min: 1, max: 512 }),
  })
  .map((m) => new SimLatencyModel(m.prefill, m.perToken, m.perExtra, m.maxBatch));

describe("sim latency model", () => {
  it("prefill time grows linearly with prompt tokens", () => {
    fc.assert(
      fc.property(model, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), (m, a, b) => {
        expect(m.prefillMs(a + b)).toBeCloseTo(m.prefillMs(a) + m.prefillMs(b), 6);
        if (a <= b) expect(m.prefillMs(a)).toBeLessThanOrEqual(m.prefillMs(b));
      }),
    );
  });

  it("decode steps never get faster as more sequences run, and stop growing at the maximum batch", () => {
    fc.assert(
      fc.property(model, fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1, max: 1024 }), (m, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(m.decodeStepMs(lo)).toBeLessThanOrEqual(m.decodeStepMs(hi));
        expect(m.perStreamTokensPerS(lo)).toBeGreaterThanOrEqual(m.perStreamTokensPerS(hi));
        expect(m.decodeStepMs(m.maxBatch + a)).toBe(m.decodeStepMs(m.maxBatch));
        expect(m.decodeStepMs(1)).toBe(m.decodeMsPerToken);
      }),
    );
  });

  it("a request takes its prefill plus one decode step per output token", () => {
    fc.assert(
      fc.property(model, fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 1, max: 64 }), (m, p, n, running) => {
        expect(m.requestMs(p, n, running)).toBeCloseTo(m.prefillMs(p) + n * m.decodeStepMs(running), 6);
      }),
    );
  });
});

describe("sim engine", () => {
  it("says it is a simulator and admits at most max_batch sequences", () => {
    const engine = new SimEngine("s", simBackend({ max_batch: 7 }));
    expect(engine.info.systemFingerprint).toBe(SIM_SYSTEM_FINGERPRINT);
    expect(engine.info.engine).toBe("sim");
    expect(engine.info.maxSequences).toBe(7);
  });

  it("emits exactly max_tokens placeholder tokens, however they are grouped", async () => {
    const engine = new SimEngine("s", simBackend({ decode_ms_per_token: 0, prefill_tokens_per_s: 1e9 }));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 50 }), async (maxTokens, promptTokens) => {
        const { chunks, result } = await run(engine, promptTokens, maxTokens);
        const ids = chunks.flatMap((c) => c.tokenIds);
        expect(ids).toHaveLength(maxTokens);
        expect(chunks.map((c) => c.text).join("")).toBe(" sim".repeat(maxTokens));
        expect(result).toEqual({ finishReason: "length", promptTokens, completionTokens: maxTokens });
      }),
      { numRuns: 30 },
    );
    expect(engine.running).toBe(0);
  });

  it("stops at eos_after_tokens unless ignore_eos", async () => {
    const engine = new SimEngine("s", simBackend({ decode_ms_per_token: 0, eos_after_tokens: 5 }));
    expect((await run(engine, 3, 100)).result).toMatchObject({ finishReason: "stop", completionTokens: 5 });
    expect((await run(engine, 3, 100, { ignoreEos: true })).result).toMatchObject({ finishReason: "length", completionTokens: 100 });
  });

  it("stops promptly when cancelled and frees its place in the batch", async () => {
    const engine = new SimEngine("s", simBackend({ decode_ms_per_token: 5 }));
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(), 30);
    const { result } = await run(engine, 3, 10_000, { signal: cancel.signal });
    expect(result.finishReason).toBe("cancelled");
    expect(result.completionTokens).toBeLessThan(10_000);
    expect(engine.running).toBe(0);
  });

  it("refuses a request longer than its context", async () => {
    const engine = new SimEngine("s", simBackend({ context_length: 100 }));
    await expect(run(engine, 90, 20)).rejects.toMatchObject({ code: 3 });
  });

  it("refuses logprobs (a latency model has no token probabilities) with InvalidArgument naming logprobs", async () => {
    const engine = new SimEngine("s", simBackend({ decode_ms_per_token: 0 }));
    const gen = engine.generate(
      { requestId: "r", promptTokenIds: [1], messages: [], prompt: "", sampling: create(SamplingParamsSchema, { maxTokens: 2, logprobs: true }) },
      new AbortController().signal,
    );
    await expect(gen.next()).rejects.toMatchObject({ code: 3, message: expect.stringContaining("no token probabilities") });
  });
});
