/** Percentiles and summaries of latency samples. */
import { quantile } from "../../lib/experiment-stats/index.js";

/**
 * The p-th percentile (0–100) of the values with linear interpolation between
 * closest ranks (numpy's default, which vLLM's benchmark uses). NaN when empty.
 * The experiments' `quantile` (q in 0–1) computes it: one definition.
 */
export function percentile(values: readonly number[], p: number, sorted = false): number {
  if (values.length === 0) return NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  return quantile(sorted ? values : [...values].sort((a, b) => a - b), p / 100);
}

/** Mean; NaN when empty. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Mean, p50/p90/p99, min and max of a sample. */
export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

/** Summarizes a sample (NaNs everywhere when empty). */
export function summarize(values: readonly number[]): Summary {
  const xs = [...values].sort((a, b) => a - b);
  return {
    n: xs.length,
    mean: mean(xs),
    p50: percentile(xs, 50, true),
    p90: percentile(xs, 90, true),
    p99: percentile(xs, 99, true),
    min: xs.length ? xs[0] : NaN,
    max: xs.length ? xs[xs.length - 1] : NaN,
  };
}
