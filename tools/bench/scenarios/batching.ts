/**
 * `batching`: llama.cpp at 1/2/4/8 concurrent streams four ways on the same
 * GGUF (by default the compute-bound "bench" preset): node-llama-cpp called
 * directly in this process, the mesh (its llama.cpp engine behind every
 * hop), the mesh with that engine on the llama-server runtime, and
 * llama.cpp's own llama-server with as many slots and the same
 * threads. Aggregate and per-stream tokens/s, the ratio to one stream and
 * to the others; TTFT at one stream gives the mesh's share of first-token
 * latency. Each system runs alone on the cores.
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
import { lineChart } from "../../../lib/svg/index.js";
import { llamaServerBinary, startLlamaServer } from "../llama-server.js";
import { batchThreadsFor } from "../../../lib/llama-server/index.js";
import { startMesh } from "../targets.js";
import type { RunningTarget } from "../targets.js";
import { availableCores, measureThreads, threadCandidates } from "../../../services/model-shard/src/engines/llama-threads.js";
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
  /** llama.cpp threads for all three; undefined: the engine's default (measured at start), which llama-server then gets too. */
  threads?: number;
  /** Also run llama-server (built once if needed). */
  llamaServer: boolean;
  seed: number;
  progress: boolean;
}

/** The systems compared. */
export type BatchingTarget = "direct" | "mesh" | "mesh-llama-server" | "llama-server";
const TARGETS: readonly BatchingTarget[] = ["direct", "mesh", "mesh-llama-server", "llama-server"];

/** One system at one stream count. */
export interface BatchingCell {
  target: BatchingTarget;
  streams: number;
  /** llama.cpp threads it ran with ("auto" when the mesh measured its own; "1, batch 2" for llama-server's `-t` and `-tb`). */
  threads: number | string;
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
  const binary = o.llamaServer ? await llamaServerBinary(log) : undefined;
  // Direct first, then release it, so no two systems share the cores.
  const direct = await DirectLlama.open(modelPath, maxStreams, o.threads);
  const threads = direct.threads;
  log(
    `batching: ${path.basename(modelPath)}, threads ${o.threads ?? `auto → ${threads} (decode tok/s by threads: ${JSON.stringify(direct.measured)})`}, prompts ${o.inputLen} tokens, ${o.outputLen} output tokens`,
  );
  try {
    for (const n of o.streams) {
      const total = n * o.rounds;
      await runLoad(n, { kind: "concurrency", clients: n }, (i, t0) => direct.generate(prompts[i], 4, t0));
      const run = await runLoad(
        total,
        { kind: "concurrency", clients: n },
        (i, t0) => direct.generate(prompts[i], o.outputLen, t0),
        progressBar(`direct ${n} streams`, total, o.progress),
      );
      cells.push({ target: "direct", streams: n, threads, metrics: aggregate(run.results, run.durationS) });
    }
  } finally {
    await direct.close();
  }
  const name = path.basename(modelPath, ".gguf");
  const contextSize = Math.min(TRAIN_CONTEXT_TOKENS * maxStreams, 16_384);
  const job = (i: number, max: number) => ({ prompt: prompts[i], maxTokens: max, stream: true, ignoreEos: true });
  // The mesh's llama-server runtime picks the same -tb itself; the peer gets it here.
  const threadsBatch = await batchThreadsFor(modelPath, threads);
  const serverThreads = `${threads}, batch ${threadsBatch}`;
  const servers: Array<{ target: BatchingTarget; threads: number | string; start: () => Promise<RunningTarget> }> = [
    {
      target: "mesh",
      threads: o.threads ?? "auto",
      start: () => startMesh(name, { engine: "llama.cpp", model: modelPath, sequences: maxStreams, threads: o.threads, gpu: false }),
    },
  ];
  if (binary)
    servers.push(
      {
        // The mesh with its llama.cpp backend on the llama-server runtime (the shard runs the same binary as a child).
        target: "mesh-llama-server",
        threads: serverThreads,
        start: () => startMesh(name, { engine: "llama.cpp", runtime: "llama-server", model: modelPath, sequences: maxStreams, threads, gpu: false }),
      },
      {
        target: "llama-server",
        threads: serverThreads,
        start: () => startLlamaServer({ binary, model: modelPath, name, slots: maxStreams, threads, threadsBatch, contextSize }),
      },
    );
  for (const server of servers) {
    const running = await server.start();
    try {
      for (const n of o.streams) {
        const total = n * o.rounds;
        await runLoad(n, { kind: "concurrency", clients: n }, (i, t0) => sendChat(running.target, job(i, 4), t0));
        const run = await runLoad(
          total,
          { kind: "concurrency", clients: n },
          (i, t0) => sendChat(running.target, job(i, o.outputLen), t0),
          progressBar(`${server.target} ${n} streams`, total, o.progress),
        );
        const metrics = aggregate(run.results, run.durationS);
        if (metrics.failed) log(`  ${server.target} ${n} streams: ${metrics.failed} failed (${metrics.errors.join("; ").slice(0, 300)})`);
        cells.push({ target: server.target, streams: n, threads: server.threads, metrics });
      }
    } finally {
      closeClientSockets();
      await running.stop();
    }
  }
  return {
    scenario: "batching",
    data: { settings: { ...o, model: modelPath, threadsUsed: threads }, cells },
    markdown: batchingMarkdown(cells, o, modelPath),
    plots: batchingPlots(cells),
  };
}

/** The presets' training context (lib/gguf), as the engine's default context uses it. */
const TRAIN_CONTEXT_TOKENS = 4096;

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
    /** Threads in use, and what each candidate decoded at when measured. */
    readonly threads: number,
    readonly measured: Record<number, number>,
    private readonly dispose: () => Promise<void>,
    private readonly sequences: Array<import("node-llama-cpp").LlamaContextSequence>,
    private readonly tokenize: (text: string) => import("node-llama-cpp").Token[],
  ) {}

  /** `threads` undefined: measured at start as the engine does (llama-threads.ts). */
  static async open(modelPath: string, sequences: number, fixedThreads: number | undefined): Promise<DirectLlama> {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const candidates = fixedThreads ? [fixedThreads] : threadCandidates(availableCores());
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: Math.max(...candidates), logLevel: LlamaLogLevel.error, progressLogs: false });
    const model = await llama.loadModel({ modelPath });
    const { threads, tokensPerSecond } = await measureThreads(model, candidates);
    const context = await model.createContext({
      sequences,
      contextSize: Math.min(model.trainContextSize * sequences, 16_384),
      threads,
      batchSize: Math.max(512, sequences * 16),
    });
    const seqs = Array.from({ length: sequences }, () => context.getSequence());
    return new DirectLlama(
      threads,
      tokensPerSecond,
      async () => {
        await context.dispose();
        await model.dispose();
        await llama.dispose();
      },
      seqs,
      (text) => model.tokenize(text),
    );
  }

  /** Generates `maxTokens` tokens on a free sequence (EOS ignored), timed like a streamed request. */
  async generate(prompt: string, maxTokens: number, t0: number): Promise<RequestResult> {
    // A request takes whichever sequence is free (a client that finishes early must not share one).
    const sequence = this.sequences.pop();
    if (!sequence) throw new Error("more concurrent direct requests than sequences");
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
    this.sequences.push(sequence);
    return result;
  }

  close(): Promise<void> {
    return this.dispose();
  }
}

function batchingMarkdown(cells: BatchingCell[], o: BatchingOptions, modelPath: string): string {
  const at = (target: BatchingTarget, streams: number) => cells.find((x) => x.target === target && x.streams === streams);
  const rows = cells.map((c) => {
    const one = at(c.target, Math.min(...o.streams));
    const direct = at("direct", c.streams);
    const server = at("llama-server", c.streams);
    return [
      c.target,
      String(c.threads),
      String(c.streams),
      `${c.metrics.completed}/${c.metrics.failed}`,
      c.metrics.outputThroughput,
      c.metrics.decodeSpeed.p50,
      ratio(one?.metrics.outputThroughput ?? NaN, c.metrics.outputThroughput),
      c.metrics.ttftMs.p50,
      c.metrics.tpotMs.p50,
      c.target === "direct" ? "–" : ratio(direct?.metrics.outputThroughput ?? NaN, c.metrics.outputThroughput),
      c.target === "llama-server" || !server ? "–" : ratio(server.metrics.outputThroughput, c.metrics.outputThroughput),
    ];
  });
  const d1 = at("direct", 1);
  const m1 = at("mesh", 1);
  const share =
    d1 && m1 && m1.metrics.completed > 0
      ? `At one stream, TTFT p50 is ${num(m1.metrics.ttftMs.p50)} ms through the mesh and ${num(d1.metrics.ttftMs.p50)} ms direct: the mesh's share is ${num(m1.metrics.ttftMs.p50 - d1.metrics.ttftMs.p50)} ms (${num(((m1.metrics.ttftMs.p50 - d1.metrics.ttftMs.p50) / m1.metrics.ttftMs.p50) * 100)}% of TTFT).`
      : "";
  return [
    `Model ${path.basename(modelPath)}, CPU (${os.availableParallelism()} cores here), threads ${o.threads ?? "auto (measured at start; llama-server gets the direct run's choice)"}, prompt ${o.inputLen} tokens, ${o.outputLen} output tokens (EOS ignored), ${o.rounds} round(s) of N concurrent requests per level. Direct is node-llama-cpp in the bench process (raw prompt, no chat template); mesh, mesh-llama-server (the mesh with its llama.cpp backend on the llama-server runtime) and llama-server get the same chat request.`,
    "",
    table(
      [
        "system",
        "threads",
        "streams",
        "ok/fail",
        "aggregate tok/s",
        "per-stream tok/s p50",
        "× one stream",
        "TTFT p50 ms",
        "TPOT p50 ms",
        "/ direct",
        "/ llama-server",
      ],
      rows,
    ),
    "",
    share,
    "",
  ].join("\n");
}

function batchingPlots(cells: BatchingCell[]): Record<string, string> {
  const series = TARGETS.filter((t) => cells.some((c) => c.target === t)).flatMap((t) => [
    { name: `${t} aggregate`, points: cells.filter((c) => c.target === t).map((c): [number, number] => [c.streams, c.metrics.outputThroughput]) },
    { name: `${t} per stream`, dashed: true, points: cells.filter((c) => c.target === t).map((c): [number, number] => [c.streams, c.metrics.decodeSpeed.p50]) },
  ]);
  return { "tokens-per-second": lineChart("llama.cpp tokens/s against concurrent streams", "concurrent streams", "tokens/s", series) };
}
