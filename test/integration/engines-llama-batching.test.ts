import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { SamplingParamsSchema } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { LlamaCppEngine } from "../../services/model-shard/src/engines/llama-cpp-engine.js";
import { PREFILL_CHUNK_TOKENS } from "../../services/model-shard/src/engines/llama-batching.js";
import { measureThreads } from "../../services/model-shard/src/engines/llama-threads.js";
import { llamaBackend } from "../support/llama-backend.js";

const PROMPTS = [
  [1, 300, 301, 302],
  [1, 303, 304],
  [1, 305, 306, 307, 308],
  [1, 309],
  [1, 310, 311, 312],
  [1, 313, 314],
  [1, 315, 316, 317, 318, 319],
  [1, 300, 310],
];

async function generate(engine: LlamaCppEngine, prompt: number[], maxTokens = 24): Promise<number[]> {
  const gen = engine.generate(
    {
      requestId: "t",
      promptTokenIds: prompt,
      messages: [],
      prompt: "",
      sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens, ignoreEos: true }),
    },
    new AbortController().signal,
  );
  const ids: number[] = [];
  for (;;) {
    const next = await gen.next();
    if (next.done) return ids;
    ids.push(...next.value.tokenIds);
  }
}

describe("llama.cpp engine: continuous batching", () => {
  let dir: string;
  let modelPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-batching-"));
    modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const order of ["sequence", "arrival"] as const) {
    it(`8 concurrent requests each equal the same request alone (temperature 0, batch_order ${order})`, async () => {
      const engine = await LlamaCppEngine.create("t", llamaBackend(modelPath, { sequences: 8, context_size: 8 * 128, batch_order: order }));
      try {
        expect(engine.info.maxSequences).toBe(8);
        expect(engine.info.contextLength).toBe(128);
        const alone: number[][] = [];
        for (const prompt of PROMPTS) alone.push(await generate(engine, prompt));
        const together = await Promise.all(PROMPTS.map((prompt) => generate(engine, prompt)));
        expect(together).toEqual(alone);
        expect(alone.every((ids) => ids.length === 24)).toBe(true);
        // Not all the same: the prompts matter, so equality above is not trivial.
        expect(new Set(alone.map((ids) => ids.join(","))).size).toBeGreaterThan(1);
      } finally {
        await engine.close();
      }
    });
  }

  it("lets a request join while others decode, and reuses a shared prompt prefix", async () => {
    const engine = await LlamaCppEngine.create("t", llamaBackend(modelPath, { sequences: 2, context_size: 256 }));
    try {
      const expected = await generate(engine, PROMPTS[0], 40);
      const late = await generate(engine, PROMPTS[1], 8);
      const first = generate(engine, PROMPTS[0], 40);
      await new Promise((r) => setTimeout(r, 5));
      const joined = generate(engine, PROMPTS[1], 8);
      expect(await Promise.all([first, joined])).toEqual([expected, late]);
    } finally {
      await engine.close();
    }
  });

  it("puts concurrent decodes into shared batches", async () => {
    const engine = await LlamaCppEngine.create("t", llamaBackend(modelPath, { sequences: 8, context_size: 8 * 128 }));
    try {
      await Promise.all(PROMPTS.map((prompt) => generate(engine, prompt, 32)));
      const { batches, items } = engine.batchStats;
      expect(items / batches).toBeGreaterThanOrEqual(4); // 8 streams: most steps hold most of them
    } finally {
      await engine.close();
    }
  });

  it("keeps a running stream decoding while a long prompt is evaluated in chunks", async () => {
    const engine = await LlamaCppEngine.create("t", llamaBackend(modelPath, { sequences: 2, context_size: 2 * 1024 }));
    try {
      const longPrompt = [1, ...Array.from({ length: 6 * PREFILL_CHUNK_TOKENS }, (_, i) => 300 + (i % 20))];
      const expectedLong = await generate(engine, longPrompt, 4);
      let running = 0;
      let tokensBeforeFirstOfLong = -1;
      const runningStream = (async () => {
        const gen = engine.generate(
          {
            requestId: "r",
            promptTokenIds: PROMPTS[0],
            messages: [],
            prompt: "",
            sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens: 400, ignoreEos: true }),
          },
          new AbortController().signal,
        );
        for (;;) {
          const next = await gen.next();
          if (next.done) return;
          running += next.value.tokenIds.length;
        }
      })();
      while (running < 8) await new Promise((r) => setImmediate(r));
      const startedAt = running;
      const gen = engine.generate(
        {
          requestId: "l",
          promptTokenIds: longPrompt,
          messages: [],
          prompt: "",
          sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens: 4, ignoreEos: true }),
        },
        new AbortController().signal,
      );
      const long: number[] = [];
      for (;;) {
        const next = await gen.next();
        if (next.done) break;
        if (tokensBeforeFirstOfLong < 0) tokensBeforeFirstOfLong = running - startedAt;
        long.push(...next.value.tokenIds);
      }
      await runningStream;
      expect(long).toEqual(expectedLong);
      // Six chunks of prompt: the running stream got a token beside (nearly) each of them.
      expect(tokensBeforeFirstOfLong).toBeGreaterThanOrEqual(4);
    } finally {
      await engine.close();
    }
  });

  it("measures decode speed per candidate thread count and picks one of them", async () => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: 2, logLevel: LlamaLogLevel.error, progressLogs: false });
    const model = await llama.loadModel({ modelPath });
    try {
      const choice = await measureThreads(model, [1, 2]);
      expect(Object.keys(choice.tokensPerSecond).map(Number)).toEqual([1, 2]);
      expect(Object.values(choice.tokensPerSecond).every((v) => v > 0)).toBe(true);
      expect([1, 2]).toContain(choice.threads);
    } finally {
      await model.dispose();
    }
  });
});
