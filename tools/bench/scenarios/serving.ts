/**
 * `serving`: the seed's method (vLLM benchmark_serving). The same seeded
 * request list (prompts of exact token lengths, output lengths held with
 * ignore_eos) is sent to each target single-stream and then with gamma
 * arrivals at a sweep of request rates; TTFT, TPOT, ITL, decode speed, e2e,
 * throughput and throughput under decode-speed limits are reported, and two
 * targets side by side as ratios.
 */
import { runLoad } from "../load-generator.js";
import { drawLengths, shapePrompt } from "../lengths.js";
import type { BenchTokenizer } from "../lengths.js";
import { aggregate, DEFAULT_DECODE_LIMITS, maxThroughputUnderLimits } from "../metrics.js";
import type { SweepPoint, ThroughputUnderLimit } from "../metrics.js";
import { closeClientSockets, sendChat } from "../openai-client.js";
import type { ChatJob, ChatTarget } from "../openai-client.js";
import { progressBar } from "../progress.js";
import { seededRandom } from "../random.js";
import { num, ratio, table } from "../report.js";
import type { BenchReport } from "../report.js";
import { barChart, lineChart } from "../../../lib/svg/index.js";
import type { Series } from "../../../lib/svg/index.js";

/** Options of the serving scenario. */
export interface ServingOptions {
  targets: Array<{ name: string; target: ChatTarget }>;
  /** Request rates (req/s; Infinity = all at once). */
  rates: number[];
  singleStream: boolean;
  burstiness: number;
  numPrompts: number;
  /** Requests in the single-stream run (default numPrompts). */
  singleStreamPrompts?: number;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  seed: number;
  maxConcurrency?: number;
  tokenizer: BenchTokenizer;
  /** Decode-speed percentile the limits judge (50 = median stream, 10 = slow streams). */
  speedPercentile: 10 | 50;
  progress: boolean;
}

/** One target's sweep. */
export interface TargetSweep {
  name: string;
  url: string;
  model: string;
  points: SweepPoint[];
  underLimits: ThroughputUnderLimit[];
}

/** Builds the seeded request list every target and rate gets. */
export function buildJobs(options: Pick<ServingOptions, "numPrompts" | "inputLen" | "outputLen" | "rangeRatio" | "seed" | "tokenizer">): {
  jobs: ChatJob[];
  inputTokens: number[];
} {
  const rng = seededRandom(options.seed);
  const inputs = drawLengths(options.numPrompts, options.inputLen, options.rangeRatio, rng);
  const outputs = drawLengths(options.numPrompts, options.outputLen, options.rangeRatio, rng);
  const jobs: ChatJob[] = [];
  const inputTokens: number[] = [];
  for (let i = 0; i < options.numPrompts; i++) {
    const prompt = shapePrompt(options.tokenizer, inputs[i], rng);
    inputTokens.push(prompt.tokens);
    jobs.push({ prompt: prompt.text, maxTokens: outputs[i], stream: true, ignoreEos: true });
  }
  return { jobs, inputTokens };
}

/** Runs the sweep on every target and returns the report. */
export async function runServing(options: ServingOptions, log: (line: string) => void): Promise<BenchReport> {
  const { jobs, inputTokens } = buildJobs(options);
  log(`serving: ${jobs.length} requests, input ~${options.inputLen} (${options.tokenizer.name}), output ~${options.outputLen} tokens, seed ${options.seed}`);
  const sweeps: TargetSweep[] = [];
  for (const { name, target } of options.targets) {
    const points: SweepPoint[] = [];
    if (options.singleStream) {
      const n = Math.min(options.singleStreamPrompts ?? jobs.length, jobs.length);
      const run = await runLoad(
        n,
        { kind: "concurrency", clients: 1 },
        (i, t0) => sendChat(target, jobs[i], t0),
        progressBar(`${name} single-stream`, n, options.progress),
      );
      points.push({ label: "single-stream", rate: NaN, metrics: aggregate(run.results, run.durationS) });
    }
    for (const rate of options.rates) {
      const label = rate === Infinity ? "inf" : String(rate);
      const run = await runLoad(
        jobs.length,
        { kind: "arrivals", process: { rate, burstiness: options.burstiness }, rng: seededRandom(options.seed + 1), maxConcurrency: options.maxConcurrency },
        (i, t0) => sendChat(target, jobs[i], t0),
        progressBar(`${name} rate ${label}`, jobs.length, options.progress),
      );
      points.push({ label, rate, metrics: aggregate(run.results, run.durationS) });
    }
    closeClientSockets();
    for (const p of points) if (p.metrics.failed > 0) log(`  ${name} ${p.label}: ${p.metrics.failed} failed (${p.metrics.errors.join("; ")})`);
    sweeps.push({
      name,
      url: target.url,
      model: target.model,
      points,
      underLimits: maxThroughputUnderLimits(points, DEFAULT_DECODE_LIMITS, options.speedPercentile),
    });
  }
  const meanInput = inputTokens.reduce((a, b) => a + b, 0) / Math.max(1, inputTokens.length);
  const { tokenizer, targets: _targets, ...settings } = options;
  return {
    scenario: "serving",
    data: { settings: { ...settings, tokenizer: tokenizer.name, tokenizerExact: tokenizer.exact, meanInputTokens: meanInput }, targets: sweeps },
    markdown: servingMarkdown(sweeps, options, meanInput),
    plots: servingPlots(sweeps),
  };
}

function servingMarkdown(sweeps: TargetSweep[], o: ServingOptions, meanInput: number): string {
  const parts: string[] = [
    `Requests: ${o.numPrompts}, input ${o.inputLen} ±${o.rangeRatio * 100}% tokens (built with ${o.tokenizer.name}${o.tokenizer.exact ? "" : ", an estimate"}; mean ${num(meanInput)}), output ${o.outputLen} ±${o.rangeRatio * 100}% (ignore_eos), arrivals gamma(burstiness ${o.burstiness}), seed ${o.seed}.`,
    "",
  ];
  for (const s of sweeps) {
    parts.push(`## ${s.name} (${s.url}, model ${s.model})`, "");
    parts.push(
      table(
        [
          "rate",
          "ok/fail",
          "req/s",
          "out tok/s",
          "TTFT p50/p90/p99 ms",
          "TPOT p50/p90/p99 ms",
          "ITL p50/p99 ms",
          "e2e p50/p99 ms",
          "decode tok/s p50 (p10)",
          ...DEFAULT_DECODE_LIMITS.map((l) => `goodput≥${l}`),
        ],
        s.points.map((p) => {
          const m = p.metrics;
          return [
            p.label,
            `${m.completed}/${m.failed}`,
            m.requestThroughput,
            m.outputThroughput,
            `${num(m.ttftMs.p50)} / ${num(m.ttftMs.p90)} / ${num(m.ttftMs.p99)}`,
            `${num(m.tpotMs.p50)} / ${num(m.tpotMs.p90)} / ${num(m.tpotMs.p99)}`,
            `${num(m.itlMs.p50)} / ${num(m.itlMs.p99)}`,
            `${num(m.e2eMs.p50)} / ${num(m.e2eMs.p99)}`,
            `${num(m.decodeSpeed.p50)} (${num(m.decodeSpeedP10)})`,
            ...DEFAULT_DECODE_LIMITS.map((l) => m.goodput[String(l)] ?? NaN),
          ];
        }),
      ),
      "",
      `Maximum throughput with per-stream decode speed (p${o.speedPercentile}) ≥ limit:`,
      "",
      table(
        ["limit tok/s", "at", "req/s", "out tok/s"],
        s.underLimits.map((u) => [String(u.limit), u.label ?? "none", u.requestThroughput, u.outputThroughput]),
      ),
      "",
    );
  }
  if (sweeps.length === 2) {
    const [a, b] = sweeps as [TargetSweep, TargetSweep];
    parts.push(`## ${b.name} relative to ${a.name}`, "", "Latency ratios below 1× and throughput ratios above 1× favour " + b.name + ".", "");
    parts.push(
      table(
        ["rate", "TTFT p50", "TTFT p99", "TPOT p50", "e2e p50", "out tok/s"],
        a.points.map((pa, i) => {
          const pb = b.points[i];
          if (!pb) return [pa.label, "–", "–", "–", "–", "–"];
          const [ma, mb] = [pa.metrics, pb.metrics];
          return [
            pa.label,
            ratio(ma.ttftMs.p50, mb.ttftMs.p50),
            ratio(ma.ttftMs.p99, mb.ttftMs.p99),
            ratio(ma.tpotMs.p50, mb.tpotMs.p50),
            ratio(ma.e2eMs.p50, mb.e2eMs.p50),
            ratio(ma.outputThroughput, mb.outputThroughput),
          ];
        }),
      ),
      "",
      table(
        ["decode limit", `${a.name} out tok/s`, `${b.name} out tok/s`, "ratio"],
        a.underLimits.map((ua, i) => [
          String(ua.limit),
          ua.outputThroughput,
          b.underLimits[i].outputThroughput,
          ratio(ua.outputThroughput, b.underLimits[i].outputThroughput),
        ]),
      ),
      "",
    );
  }
  return parts.join("\n");
}

function servingPlots(sweeps: TargetSweep[]): Record<string, string> {
  const x = (p: SweepPoint) => p.metrics.requestThroughput;
  const lines = (pick: (p: SweepPoint) => number, suffix: string, dashed = false): Series[] =>
    sweeps.map((s) => ({ name: `${s.name} ${suffix}`, dashed, points: s.points.map((p): [number, number] => [x(p), pick(p)]) }));
  return {
    ttft: lineChart("TTFT against request throughput", "requests/s (achieved)", "TTFT ms", [
      ...lines((p) => p.metrics.ttftMs.p50, "p50"),
      ...lines((p) => p.metrics.ttftMs.p99, "p99", true),
    ]),
    "decode-speed": lineChart("Per-stream decode speed against request throughput", "requests/s (achieved)", "tokens/s per stream", [
      ...lines((p) => p.metrics.decodeSpeed.p50, "p50"),
      ...lines((p) => p.metrics.decodeSpeedP10, "p10", true),
    ]),
    "throughput-under-limits": barChart(
      "Max output throughput with decode speed ≥ limit",
      "decode-speed limit (tokens/s per stream)",
      "output tokens/s",
      DEFAULT_DECODE_LIMITS.map(String),
      sweeps.map((s) => ({ name: s.name, values: s.underLimits.map((u) => u.outputThroughput) })),
    ),
  };
}
