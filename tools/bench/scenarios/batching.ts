/**
 * `batching`: the llama.cpp engine at 1/2/4/8 concurrent streams, through
 * the mesh and with node-llama-cpp called directly in this process, on the
 * same GGUF (by default the compute-bound "bench" preset). Aggregate and
 * per-stream tokens/s and the ratio to one stream; TTFT at one stream gives
 * the mesh's share of first-token latency.
 */
import { existsSync, mkdirSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeTinyModel } from "../../../lib/gguf/index.js";
import type { TinyModelPresetName } from "../../../lib/gguf/index.js";
import { runLoad } from "../load-generator.js";
import { shapePrompt } from "../lengths.js";
import { aggregate } from "../metrics.js";
import type { RequestResult, RunMetrics } from "../metrics.js";
import { closeClientSockets, sendChat } from "../openai-client.js";
import { progressBar } from "../progress.js";
import { seededRandom } from "../random.js";
import { num, ratio, table } from "../report.js";
import type { BenchReport } from "../report.js";
import { lineChart } from "../svg-plot.js";
import { startMesh } from "../targets.js";
import { ggufTokenizer } from "../tokenizers.js";

/** Options of the batching scenario. */
export interface BatchingOptions {
  preset: TinyModelPresetName;
  /** A GGUF to use instead of writing the preset. */
  model?: string;
  /** Where written models are cached. */
  cacheDir: string;
  streams: number[];
  inputLen: number;
  outputLen: number;
  /** Rounds of `streams` concurrent requests per level. */
  rounds: number;
  threads: number;
  seed: number;
  progress: boolean;
}

/** One system at one stream count. */
export interface BatchingCell {
  target: "direct" | "mesh";
  streams: number;
  metrics: RunMetrics;
}

/** Runs both systems at every stream count and returns the report. */
export async function runBatching(o: BatchingOptions, log: (line: string) => void): Promise<BenchReport> {
  const modelPath = o.model ?? (await cachedModel(o.cacheDir, o.preset, log));
  const tokenizer = await ggufTokenizer(modelPath);
  const maxStreams = Math.max(...o.streams);
  const rng = seededRandom(o.seed);
  const prompts = Array.from({ length: maxStreams * o.rounds }, () => shapePrompt(tokenizer, o.inputLen, rng).text);
  await tokenizer.dispose();
  const cells: BatchingCell[] = [];
  log(`batching: ${path.basename(modelPath)}, ${o.threads} threads, prompts ${o.inputLen} tokens, ${o.outputLen} output tokens`);
  // Direct first, then release it, so the two never share the cores.
  const direct = await DirectLlama.open(modelPath, maxStreams, o.threads);
  try {
    for (const n of o.streams) {
      const total = n * o.rounds;
      await runLoad(n, { kind: "concurrency", clients: n }, (i, t0) => direct.generate(i, prompts[i]!, 4, t0));
      const run = await runLoad(total, { kind: "concurrency", clients: n }, (i, t0) => direct.generate(i % n, prompts[i]!, o.outputLen, t0), progressBar(`direct ${n} streams`, total, o.progress));
      cells.push({ target: "direct", streams: n, metrics: aggregate(run.results, run.durationS) });
    }
  } finally {
    await direct.close();
  }
  const mesh = await startMesh(path.basename(modelPath, ".gguf"), { engine: "llama.cpp", model: modelPath, sequences: maxStreams, threads: o.threads, gpu: false });
  try {
    for (const n of o.streams) {
      const total = n * o.rounds;
      const job = (i: number, max: number) => ({ prompt: prompts[i]!, maxTokens: max, stream: true, ignoreEos: true });
      await runLoad(n, { kind: "concurrency", clients: n }, (i, t0) => sendChat(mesh.target, job(i, 4), t0));
      const run = await runLoad(total, { kind: "concurrency", clients: n }, (i, t0) => sendChat(mesh.target, job(i, o.outputLen), t0), progressBar(`mesh ${n} streams`, total, o.progress));
      const metrics = aggregate(run.results, run.durationS);
      if (metrics.failed) log(`  mesh ${n} streams: ${metrics.failed} failed (${metrics.errors.join("; ").slice(0, 300)})`);
      cells.push({ target: "mesh", streams: n, metrics });
    }
  } finally {
    closeClientSockets();
    await mesh.stop();
  }
  return { scenario: "batching", data: { settings: { ...o, model: modelPath }, cells }, markdown: batchingMarkdown(cells, o, modelPath), plots: batchingPlots(cells) };
}

async function cachedModel(cacheDir: string, preset: TinyModelPresetName, log: (line: string) => void): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `tiny-llama-${preset}.gguf`);
  if (!existsSync(file)) {
    log(`writing the ${preset} model to ${file}`);
    await writeTinyModel(file, { preset });
  }
  return file;
}

/** node-llama-cpp in this process: one context, one sequence per stream, as the engine sets it up. */
class DirectLlama {
  private constructor(
    private readonly dispose: () => Promise<void>,
    private readonly sequences: Array<import("node-llama-cpp").LlamaContextSequence>,
    private readonly tokenize: (text: string) => import("node-llama-cpp").Token[],
  ) {}

  static async open(modelPath: string, sequences: number, threads: number): Promise<DirectLlama> {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error, progressLogs: false });
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({ sequences, contextSize: Math.min(model.trainContextSize * sequences, 16_384), threads, batchSize: Math.max(512, sequences * 16) });
    const seqs = Array.from({ length: sequences }, () => context.getSequence());
    return new DirectLlama(
      async () => {
        await context.dispose();
        await model.dispose();
        await llama.dispose();
      },
      seqs,
      (text) => model.tokenize(text),
    );
  }

  /** Generates `maxTokens` tokens on sequence `slot` (EOS ignored), timed like a streamed request. */
  async generate(slot: number, prompt: string, maxTokens: number, t0: number): Promise<RequestResult> {
    const sequence = this.sequences[slot]!;
    const started = performance.now();
    const result: RequestResult = { ok: false, startMs: started - t0, ttftMs: NaN, e2eMs: NaN, outputTokens: 0, promptTokens: 0, itlMs: [] };
    try {
      await sequence.clearHistory();
      const tokens = this.tokenize(prompt);
      result.promptTokens = tokens.length;
      let last = started;
      for await (const _token of sequence.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
        const now = performance.now();
        if (result.outputTokens === 0) result.ttftMs = now - started;
        else result.itlMs.push(now - last);
        last = now;
        if (++result.outputTokens >= maxTokens) break;
      }
      result.ok = true;
    } catch (err) {
      result.error = (err as Error).message;
    }
    result.e2eMs = performance.now() - started;
    return result;
  }

  close(): Promise<void> {
    return this.dispose();
  }
}

function batchingMarkdown(cells: BatchingCell[], o: BatchingOptions, modelPath: string): string {
  const rows = cells.map((c) => {
    const one = cells.find((x) => x.target === c.target && x.streams === Math.min(...o.streams));
    const direct = cells.find((x) => x.target === "direct" && x.streams === c.streams);
    return [
      c.target,
      String(c.streams),
      `${c.metrics.completed}/${c.metrics.failed}`,
      c.metrics.outputThroughput,
      c.metrics.decodeSpeed.p50,
      ratio(one?.metrics.outputThroughput ?? NaN, c.metrics.outputThroughput),
      c.metrics.ttftMs.p50,
      c.metrics.tpotMs.p50,
      c.target === "mesh" ? ratio(direct?.metrics.outputThroughput ?? NaN, c.metrics.outputThroughput) : "–",
    ];
  });
  const d1 = cells.find((c) => c.target === "direct" && c.streams === 1);
  const m1 = cells.find((c) => c.target === "mesh" && c.streams === 1);
  const share =
    d1 && m1 && m1.metrics.completed > 0
      ? `At one stream, TTFT p50 is ${num(m1.metrics.ttftMs.p50)} ms through the mesh and ${num(d1.metrics.ttftMs.p50)} ms direct: the mesh's share is ${num(m1.metrics.ttftMs.p50 - d1.metrics.ttftMs.p50)} ms (${num(((m1.metrics.ttftMs.p50 - d1.metrics.ttftMs.p50) / m1.metrics.ttftMs.p50) * 100)}% of TTFT).`
      : "";
  return [
    `Model ${path.basename(modelPath)}, CPU, ${o.threads} threads (${os.availableParallelism()} cores here), prompt ${o.inputLen} tokens, ${o.outputLen} output tokens (EOS ignored), ${o.rounds} round(s) of N concurrent requests per level.`,
    "",
    table(["system", "streams", "ok/fail", "aggregate tok/s", "per-stream tok/s p50", "× one stream", "TTFT p50 ms", "TPOT p50 ms", "mesh / direct"], rows),
    "",
    share,
    "",
    "For reference (FACTS.md, same machine type): node-llama-cpp alone reached 1.3–1.7× at 8 streams (2.0–2.7× with batches ordered by sequence id); llama.cpp's own `llama-server -np 8` 1.6–2.3× and `llama-batched-bench` 1.9–3.5× on the larger model.",
    "",
  ].join("\n");
}

function batchingPlots(cells: BatchingCell[]): Record<string, string> {
  const series = (["direct", "mesh"] as const).flatMap((t) => [
    { name: `${t} aggregate`, points: cells.filter((c) => c.target === t).map((c): [number, number] => [c.streams, c.metrics.outputThroughput]) },
    { name: `${t} per stream`, dashed: true, points: cells.filter((c) => c.target === t).map((c): [number, number] => [c.streams, c.metrics.decodeSpeed.p50]) },
  ]);
  return { "tokens-per-second": lineChart("llama.cpp tokens/s against concurrent streams", "concurrent streams", "tokens/s", series) };
}
