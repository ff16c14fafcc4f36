import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeTinyModel } from "../lib/gguf/index.js";
import { writeReport } from "../tools/bench/report.js";
import type { BenchReport } from "../tools/bench/report.js";
import { runBatching } from "../tools/bench/scenarios/batching.js";
import { runOverhead } from "../tools/bench/scenarios/overhead.js";
import { runServing } from "../tools/bench/scenarios/serving.js";
import { runStream } from "../tools/bench/scenarios/stream.js";
import { llamaServerBinary, startLlamaServer, threadsLikeTheEngine } from "../tools/bench/llama-server.js";
import { startMesh, stopAllTargets } from "../tools/bench/targets.js";
import type { RunningTarget } from "../tools/bench/targets.js";
import { openTokenizer } from "../tools/bench/tokenizers.js";
import { intFlag, parseCommandArgs, presetFlag, UsageError } from "./args.js";

export const BENCH_USAGE = `llm-mesh bench <serving|overhead|stream|batching> [options]

Benchmarks with vLLM benchmark_serving's definitions (TTFT, TPOT, ITL, goodput).
Writes result.json, report.md and SVG plots under --out (default bench-results/).
  common     --out DIR  --no-progress  --smoke (tiny sizes, for CI)  --seed N (0)
  serving    --url URL/v1 --model M [--api-key K] [--name A]   (no --url: starts the mesh on the tiny model, --threads N,
             --runtime node-llama-cpp|llama-server: the llama.cpp backend's runtime, see docs/models.md)
             [--url2 URL/v1 --model2 M --api-key2 K --name2 B]  second target, compared as ratios
             --rates 1,2,4,inf  --burstiness 1 (Poisson)  --num-prompts 50  --single-stream-prompts N
             --no-single-stream  --input-len 700  --output-len 550  --range-ratio 0.1
             --tokenizer FILE.gguf (exact prompt lengths)  --max-concurrency N  --speed-percentile 50|10
  overhead   fake engine direct vs mesh vs Portkey: --requests 200 --warmup 20 --concurrency 1,16
             --output-tokens 16 --no-portkey
  stream     tokens/s through the edge: --concurrency 1,16,64 --rounds 4 --tokens 512
             --peer llama-server   also start llama.cpp's own llama-server (built once from node-llama-cpp's
             llama.cpp source, cached in ~/.cache/llm-mesh) on the same GGUF, slots and threads
  batching   llama.cpp direct vs mesh vs mesh on the llama-server runtime vs llama-server: --preset bench|tiny | --model FILE.gguf  --streams 1,2,4,8
             --input-len 32 --output-len 128 --rounds 2 --threads N (default: measured at start) --no-llama-server`;

const OPTIONS = {
  out: { type: "string" },
  "no-progress": { type: "boolean" },
  smoke: { type: "boolean" },
  seed: { type: "string" },
  url: { type: "string" },
  model: { type: "string" },
  "api-key": { type: "string" },
  name: { type: "string" },
  url2: { type: "string" },
  model2: { type: "string" },
  "api-key2": { type: "string" },
  name2: { type: "string" },
  rates: { type: "string" },
  burstiness: { type: "string" },
  "num-prompts": { type: "string" },
  "single-stream-prompts": { type: "string" },
  "no-single-stream": { type: "boolean" },
  "input-len": { type: "string" },
  "output-len": { type: "string" },
  "range-ratio": { type: "string" },
  tokenizer: { type: "string" },
  "max-concurrency": { type: "string" },
  "speed-percentile": { type: "string" },
  requests: { type: "string" },
  warmup: { type: "string" },
  concurrency: { type: "string" },
  "output-tokens": { type: "string" },
  "no-portkey": { type: "boolean" },
  rounds: { type: "string" },
  tokens: { type: "string" },
  preset: { type: "string" },
  streams: { type: "string" },
  threads: { type: "string" },
  peer: { type: "string" },
  runtime: { type: "string" },
  "no-llama-server": { type: "boolean" },
} as const;

/** Sequences of the mesh (and slots of llama-server) the serving scenario starts. */
const SERVING_SLOTS = 4;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>["values"];

/** A comma-separated list of positive numbers ("inf" allowed where `allowInf`). */
export function numberList(name: string, value: string | undefined, fallback: number[], allowInf = false): number[] {
  if (value === undefined) return fallback;
  return value.split(",").map((s) => {
    const v = s.trim().toLowerCase();
    const n = allowInf && (v === "inf" || v === "infinity") ? Infinity : Number(v);
    if (!(n > 0)) throw new UsageError(`--${name} must be a comma-separated list of positive numbers${allowInf ? " or inf" : ""}, got "${value}"`);
    return n;
  });
}

function positiveFloat(name: string, value: string | undefined, fallback: number, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(n >= 0) || n > max) throw new UsageError(`--${name} must be a number within 0..${max}, got "${value}"`);
  return n;
}

/** `llm-mesh bench <scenario>`: runs a benchmark and writes its report. */
export async function benchCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS);
  const scenario = positionals[0];
  if (positionals.length !== 1 || !scenario) throw new UsageError("give exactly one scenario: serving, overhead, stream or batching");
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const progress = !values["no-progress"];
  const smoke = values.smoke === true;
  const interrupted = (signal: string) => {
    log(`\nbench: ${signal}, stopping what it started...`);
    void stopAllTargets().then(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  let report: BenchReport;
  switch (scenario) {
    case "serving":
      report = await serving(values, smoke, progress, log);
      break;
    case "overhead":
      report = await runOverhead(
        {
          requests: intFlag("requests", values.requests, smoke ? 5 : 200),
          warmup: intFlag("warmup", values.warmup, smoke ? 1 : 20),
          concurrencies: numberList("concurrency", values.concurrency, smoke ? [1, 2] : [1, 16]),
          outputTokens: intFlag("output-tokens", values["output-tokens"], smoke ? 4 : 16),
          portkey: !values["no-portkey"],
          progress,
        },
        log,
      );
      break;
    case "stream":
      report = await runStream(
        {
          concurrencies: numberList("concurrency", values.concurrency, smoke ? [1, 2] : [1, 16, 64]),
          rounds: intFlag("rounds", values.rounds, smoke ? 1 : 4),
          tokensPerStream: intFlag("tokens", values.tokens, smoke ? 8 : 512),
          progress,
        },
        log,
      );
      break;
    case "batching":
      report = await runBatching(
        {
          preset: presetFlag(values.preset, smoke ? "tiny" : "bench"),
          model: values.model,
          cacheDir: path.resolve(values.out ?? "bench-results", ".models"),
          streams: numberList("streams", values.streams, smoke ? [1, 2] : [1, 2, 4, 8]),
          inputLen: intFlag("input-len", values["input-len"], smoke ? 8 : 32),
          outputLen: intFlag("output-len", values["output-len"], smoke ? 4 : 128),
          rounds: intFlag("rounds", values.rounds, smoke ? 1 : 2),
          threads: values.threads === undefined ? undefined : intFlag("threads", values.threads, 1),
          llamaServer: !values["no-llama-server"] && !smoke,
          seed: intFlag("seed", values.seed, 0),
          progress,
        },
        log,
      );
      break;
    default:
      throw new UsageError(`unknown scenario "${scenario}"`);
  }
  const dir = await writeReport(values.out ?? "bench-results", report);
  process.stdout.write(`${report.markdown}\nresults: ${dir}\n`);
}

async function serving(values: Values, smoke: boolean, progress: boolean, log: (line: string) => void): Promise<BenchReport> {
  const started: RunningTarget[] = [];
  let tmp: string | undefined;
  let tokenizerFile = values.tokenizer;
  const targets = [];
  try {
    if (values.url) {
      if (!values.model) throw new UsageError("--url needs --model");
      targets.push({
        name: values.name ?? "target",
        target: { url: values.url, model: values.model, apiKey: values["api-key"] ?? process.env.OPENAI_API_KEY },
      });
    } else {
      tmp = mkdtempSync(path.join(os.tmpdir(), "mesh-bench-serving-"));
      const modelFile = path.join(tmp, "tiny-llama.gguf");
      await writeTinyModel(modelFile);
      tokenizerFile ??= modelFile;
      const threads = values.threads === undefined ? undefined : intFlag("threads", values.threads, 1);
      const runtime = values.runtime ?? "node-llama-cpp";
      if (runtime !== "node-llama-cpp" && runtime !== "llama-server")
        throw new UsageError(`--runtime must be node-llama-cpp or llama-server, got "${runtime}"`);
      if (runtime === "llama-server") await llamaServerBinary(log);
      log(`no --url: starting the mesh on the tiny model (llama.cpp on ${runtime}, CPU, ${SERVING_SLOTS} sequences, threads ${threads ?? "default"})`);
      const mesh = await startMesh("tiny-llama", { engine: "llama.cpp", runtime, model: modelFile, sequences: SERVING_SLOTS, threads, gpu: false });
      started.push(mesh);
      targets.push({ name: values.name ?? "mesh", target: mesh.target });
      if (values.peer === "llama-server") {
        const binary = await llamaServerBinary(log);
        const peerThreads = threads ?? (await threadsLikeTheEngine(modelFile));
        const server = await startLlamaServer({
          binary,
          model: modelFile,
          name: "tiny-llama",
          slots: SERVING_SLOTS,
          threads: peerThreads,
          contextSize: SERVING_SLOTS * 4096,
        });
        log(`llama-server: ${SERVING_SLOTS} slots, ${peerThreads} threads (${server.args.join(" ")})`);
        started.push(server);
        targets.push({ name: "llama-server", target: server.target });
      }
    }
    if (values.peer !== undefined && values.peer !== "llama-server") throw new UsageError(`--peer must be llama-server, got "${values.peer}"`);
    if (values.peer && values.url) throw new UsageError("--peer starts llama-server beside the mesh the bench starts: leave out --url");
    if (values.url2) {
      if (!values.model2 && !values.model) throw new UsageError("--url2 needs --model2");
      targets.push({
        name: values.name2 ?? "target2",
        target: { url: values.url2, model: values.model2 ?? values.model!, apiKey: values["api-key2"] ?? values["api-key"] ?? process.env.OPENAI_API_KEY },
      });
    }
    const tokenizer = await openTokenizer(tokenizerFile);
    try {
      const speed = intFlag("speed-percentile", values["speed-percentile"], 50);
      if (speed !== 50 && speed !== 10) throw new UsageError("--speed-percentile must be 50 or 10");
      const numPrompts = intFlag("num-prompts", values["num-prompts"], smoke ? 3 : 50);
      return await runServing(
        {
          targets,
          rates: numberList("rates", values.rates, smoke ? [4] : [1, 2, 4, Infinity], true),
          singleStream: !values["no-single-stream"],
          singleStreamPrompts: values["single-stream-prompts"] ? intFlag("single-stream-prompts", values["single-stream-prompts"], numPrompts) : undefined,
          burstiness: positiveFloat("burstiness", values.burstiness, 1) || 1,
          numPrompts,
          inputLen: intFlag("input-len", values["input-len"], smoke ? 16 : 700),
          outputLen: intFlag("output-len", values["output-len"], smoke ? 8 : 550),
          rangeRatio: positiveFloat("range-ratio", values["range-ratio"], 0.1, 0.99),
          seed: intFlag("seed", values.seed, 0),
          maxConcurrency: values["max-concurrency"] ? intFlag("max-concurrency", values["max-concurrency"], 0) : undefined,
          tokenizer,
          speedPercentile: speed,
          progress,
        },
        log,
      );
    } finally {
      await tokenizer.dispose();
    }
  } finally {
    for (const t of started) await t.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
