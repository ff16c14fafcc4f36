/**
 * Per-request and per-run metrics with vLLM benchmark_serving's definitions:
 * TTFT = time to the first streamed content chunk; TPOT = (e2e − TTFT) /
 * (output tokens − 1); ITL = gaps between content chunks; decode speed per
 * stream = 1 / TPOT; goodput = requests per second that meet the SLO.
 */
import { percentile, summarize } from "./stats.js";
import type { Summary } from "./stats.js";

/** What the client saw of one request (times in ms). */
export interface RequestResult {
  ok: boolean;
  error?: string;
  /** When it was sent, ms from the start of the run. */
  startMs: number;
  /** Time to the first non-empty content chunk (= e2e for non-stream). */
  ttftMs: number;
  e2eMs: number;
  /** Completion tokens (server usage when given, else content chunks). */
  outputTokens: number;
  /** Prompt tokens as the server counted them (0 when unknown). */
  promptTokens: number;
  /** Gaps between consecutive content chunks. */
  itlMs: number[];
}

/** TPOT in ms; undefined when there is no second token to time. */
export function tpotMs(r: RequestResult): number | undefined {
  if (!r.ok || r.outputTokens < 2) return undefined;
  return (r.e2eMs - r.ttftMs) / (r.outputTokens - 1);
}

/** Per-stream decode speed in tokens/s (1 / TPOT); undefined like {@link tpotMs}. */
export function decodeSpeed(r: RequestResult): number | undefined {
  const t = tpotMs(r);
  if (t === undefined) return undefined;
  return t > 0 ? 1000 / t : Infinity;
}

/** Aggregates of one run (one request rate or concurrency). */
export interface RunMetrics {
  completed: number;
  failed: number;
  /** Wall time of the run, s. */
  durationS: number;
  requestThroughput: number;
  /** Output tokens/s over the run. */
  outputThroughput: number;
  /** Prompt + output tokens/s. */
  totalTokenThroughput: number;
  meanPromptTokens: number;
  meanOutputTokens: number;
  ttftMs: Summary;
  tpotMs: Summary;
  itlMs: Summary;
  e2eMs: Summary;
  /** Per-stream decode speed (tokens/s), one value per request. */
  decodeSpeed: Summary;
  /** 10th percentile of decode speed: the slow streams. */
  decodeSpeedP10: number;
  /** vLLM goodput: requests/s whose decode speed ≥ limit, keyed by limit. */
  goodput: Record<string, number>;
  /** First few error messages. */
  errors: string[];
}

/** Decode-speed limits (tokens/s per stream) the seed reports throughput under. */
export const DEFAULT_DECODE_LIMITS = [20, 40, 60, 80] as const;

/** Turns one run's request results into its metrics. */
export function aggregate(results: readonly RequestResult[], durationS: number, limits: readonly number[] = DEFAULT_DECODE_LIMITS): RunMetrics {
  const ok = results.filter((r) => r.ok);
  const speeds: number[] = [];
  const tpots: number[] = [];
  for (const r of ok) {
    const t = tpotMs(r);
    if (t !== undefined) tpots.push(t);
    const s = decodeSpeed(r);
    if (s !== undefined) speeds.push(s);
  }
  const outTokens = ok.reduce((a, r) => a + r.outputTokens, 0);
  const inTokens = ok.reduce((a, r) => a + r.promptTokens, 0);
  const d = durationS > 0 ? durationS : NaN;
  return {
    completed: ok.length,
    failed: results.length - ok.length,
    durationS,
    requestThroughput: ok.length / d,
    outputThroughput: outTokens / d,
    totalTokenThroughput: (outTokens + inTokens) / d,
    meanPromptTokens: ok.length ? inTokens / ok.length : NaN,
    meanOutputTokens: ok.length ? outTokens / ok.length : NaN,
    ttftMs: summarize(ok.map((r) => r.ttftMs)),
    tpotMs: summarize(tpots),
    itlMs: summarize(ok.flatMap((r) => r.itlMs)),
    e2eMs: summarize(ok.map((r) => r.e2eMs)),
    decodeSpeed: summarize(speeds),
    decodeSpeedP10: percentile(speeds, 10),
    goodput: goodput(ok, durationS, limits),
    errors: [...new Set(results.filter((r) => !r.ok).map((r) => r.error ?? "unknown error"))].slice(0, 5),
  };
}

/**
 * vLLM's goodput for each decode-speed limit: successful requests whose
 * decode speed is at least the limit, per second of the run. Requests with a
 * single output token have no decode speed and never count.
 */
export function goodput(results: readonly RequestResult[], durationS: number, limits: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const limit of limits) {
    const good = results.filter((r) => {
      const s = decodeSpeed(r);
      return s !== undefined && s >= limit;
    }).length;
    out[String(limit)] = durationS > 0 ? good / durationS : 0;
  }
  return out;
}

/** One point of a request-rate sweep. */
export interface SweepPoint {
  /** Label: "single-stream" or the rate. */
  label: string;
  rate: number;
  metrics: RunMetrics;
}

/** The best throughput that kept decode speed at or above a limit. */
export interface ThroughputUnderLimit {
  limit: number;
  /** Sweep point that achieved it; null when no point met the limit. */
  label: string | null;
  requestThroughput: number;
  outputThroughput: number;
}

/**
 * The seed's headline: for each decode-speed limit, the highest output
 * throughput among sweep points whose per-stream decode speed, at the given
 * percentile (50 = the median stream; 10 = nine streams in ten at least
 * this fast), stays at or above the limit.
 */
export function maxThroughputUnderLimits(
  points: readonly SweepPoint[],
  limits: readonly number[] = DEFAULT_DECODE_LIMITS,
  speedPercentile: 10 | 50 = 50,
): ThroughputUnderLimit[] {
  return limits.map((limit) => {
    let best: ThroughputUnderLimit = { limit, label: null, requestThroughput: 0, outputThroughput: 0 };
    for (const p of points) {
      const speed = speedAtPercentile(p.metrics, speedPercentile);
      if (!(speed >= limit) || p.metrics.completed === 0) continue;
      if (p.metrics.outputThroughput > best.outputThroughput) {
        best = { limit, label: p.label, requestThroughput: p.metrics.requestThroughput, outputThroughput: p.metrics.outputThroughput };
      }
    }
    return best;
  });
}

function speedAtPercentile(m: RunMetrics, p: 10 | 50): number {
  return p === 50 ? m.decodeSpeed.p50 : m.decodeSpeedP10;
}
