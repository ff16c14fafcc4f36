import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSchema } from "../../lib/catalog/index.js";
import type { LlamaCppBackend } from "../../lib/catalog/index.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { SamplingParamsSchema } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { LlamaCppEngine } from "../../services/model-shard/src/engines/llama-cpp-engine.js";

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
    { requestId: "t", promptTokenIds: prompt, messages: [], prompt: "", sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens, ignoreEos: true }) },
    new AbortController().signal,
  );
  const ids: number[] = [];
  for (;;) {
    const next = await gen.next();
    if (next.done) return ids;
    ids.push(...next.value.tokenIds);
  }
}

function backendFor(model: string, extra: Record<string, unknown>): LlamaCppBackend {
  return catalogSchema.parse({ models: [{ name: "t", backends: [{ name: "l", engine: "llama.cpp", model, gpu: false, threads: 1, ...extra }] }] }).models[0]!
    .backends[0] as LlamaCppBackend;
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
      const engine = await LlamaCppEngine.create("t", backendFor(modelPath, { sequences: 8, context_size: 8 * 128, batch_order: order }));
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
    const engine = await LlamaCppEngine.create("t", backendFor(modelPath, { sequences: 2, context_size: 256 }));
    try {
      const expected = await generate(engine, PROMPTS[0]!, 40);
      const late = await generate(engine, PROMPTS[1]!, 8);
      const first = generate(engine, PROMPTS[0]!, 40);
      await new Promise((r) => setTimeout(r, 5));
      const joined = generate(engine, PROMPTS[1]!, 8);
      expect(await Promise.all([first, joined])).toEqual([expected, late]);
    } finally {
      await engine.close();
    }
  });
});
