/**
 * Aggregate and per-stream tokens/s of the llama.cpp engine (called
 * directly, no RPC) at 1/2/4/8 concurrent streams on the `bench` preset
 * model, for each batch order. Prints numbers, asserts nothing.
 *   npx tsc -p tsconfig.json && node dist/services/model-shard/bench/llama-batching.js
 * env: BENCH_TOKENS (64 per stream), BENCH_ORDERS ("arrival,sequence"), BENCH_THREADS.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { catalogSchema } from "../../../lib/catalog/index.js";
import type { LlamaCppBackend } from "../../../lib/catalog/index.js";
import { writeTinyModel } from "../../../lib/gguf/index.js";
import { SamplingParamsSchema } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { LlamaCppEngine } from "../src/engines/llama-cpp-engine.js";

const TOKENS = Number(process.env.BENCH_TOKENS ?? 64);
const STREAMS = [1, 2, 4, 8];

async function stream(engine: LlamaCppEngine, i: number): Promise<number> {
  const gen = engine.generate(
    {
      requestId: `b${i}`,
      promptTokenIds: [1, 300 + (i % 20), 301, 302],
      messages: [],
      prompt: "",
      sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens: TOKENS, ignoreEos: true }),
    },
    new AbortController().signal,
  );
  let n = 0;
  for (;;) {
    const next = await gen.next();
    if (next.done) return n;
    n += next.value.tokenIds.length;
  }
}

async function benchBatching(order: "sequence" | "arrival", modelPath: string): Promise<void> {
  const backend = catalogSchema.parse({
    models: [
      {
        name: "b",
        backends: [
          {
            name: "l",
            engine: "llama.cpp",
            model: modelPath,
            sequences: 8,
            gpu: false,
            batch_order: order,
            context_size: 8 * 256,
            threads: process.env.BENCH_THREADS ? Number(process.env.BENCH_THREADS) : undefined,
          },
        ],
      },
    ],
  }).models[0].backends[0] as LlamaCppBackend;
  const engine = await LlamaCppEngine.create("b", backend);
  await stream(engine, 0); // warm-up
  let single = 0;
  for (const n of STREAMS) {
    const before = { ...engine.batchStats };
    const started = performance.now();
    const counts = await Promise.all(Array.from({ length: n }, (_, i) => stream(engine, i)));
    const s = (performance.now() - started) / 1000;
    const total = counts.reduce((a, b) => a + b, 0);
    const agg = total / s;
    if (n === 1) single = agg;
    console.log(
      `order=${order} streams=${n} aggregate=${agg.toFixed(1)} tok/s per-stream=${(agg / n).toFixed(1)} tok/s ratio=${(agg / single).toFixed(2)}x` +
        (order === "sequence"
          ? ` mean-batch=${((engine.batchStats.items - before.items) / Math.max(1, engine.batchStats.batches - before.batches)).toFixed(2)}`
          : ""),
    );
  }
  await engine.close();
}

const dir = mkdtempSync(path.join(tmpdir(), "bench-batching-"));
const modelPath = path.join(dir, "bench.gguf");
await writeTinyModel(modelPath, { preset: "bench" });
for (const order of (process.env.BENCH_ORDERS ?? "arrival,sequence").split(",") as Array<"sequence" | "arrival">) await benchBatching(order, modelPath);
rmSync(dir, { recursive: true, force: true });
