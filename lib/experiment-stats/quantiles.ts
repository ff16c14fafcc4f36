/**
 * Percentile estimation with distribution-free confidence intervals (exact
 * binomial order-statistic ranks), and the Wilson interval for proportions.
 */
import { binomialPmf, normalQuantile } from "./math.js";
import { DEFAULT_CONFIDENCE } from "./moments.js";
import type { ConfidenceInterval } from "./moments.js";

/**
 * Sample quantile of ascending data by linear interpolation between order
 * statistics (Hyndman–Fan type 7, the default of R and NumPy).
 *
 * @param sorted ascending values
 * @param q quantile in [0, 1]
 * @returns NaN for empty input
 */
export function quantile(sorted: readonly number[], q: number): number {
  const n = sorted.length;
  if (n === 0 || !(q >= 0 && q <= 1)) return Number.NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo];
  const b = sorted[hi];
  return a + (h - lo) * (b - a);
}

/** A percentile estimate with its confidence interval. */
export interface PercentileEstimate extends ConfidenceInterval {
  /** Quantile level in (0, 1), e.g. 0.99. */
  q: number;
  /** Point estimate (type-7 sample quantile). */
  value: number | null;
}

/**
 * Order-statistic ranks `[l, u]` (1-based) such that `[X(l), X(u)]` covers the
 * population q-quantile with probability ≥ `confidence` for any continuous
 * distribution: the coverage equals `P(l ≤ B ≤ u − 1)` with `B ~ Bin(n, q)`.
 * Each tail gets at most `(1 − confidence) / 2`. A side is `null` when even the
 * extreme order statistic cannot bound it at that level (too few samples).
 *
 * @param n sample size
 * @param q quantile level in (0, 1)
 * @param confidence coverage level
 */
export function quantileRanks(n: number, q: number, confidence = DEFAULT_CONFIDENCE): { lower: number | null; upper: number | null } {
  const tail = (1 - confidence) / 2;
  if (n < 1) return { lower: null, upper: null };
  // Lower rank: largest l ≥ 1 with P(B ≤ l − 1) ≤ tail.
  let lower: number | null = null;
  let cdf = 0;
  for (let k = 0; k < n; k++) {
    cdf += binomialPmf(k, n, q);
    if (cdf > tail) break;
    lower = k + 1;
  }
  // Upper rank: smallest u ≤ n with P(B ≥ u) ≤ tail.
  let upper: number | null = null;
  let sf = 0;
  for (let k = n; k >= 1; k--) {
    sf += binomialPmf(k, n, q);
    if (sf > tail) break;
    upper = k;
  }
  return { lower, upper };
}

/**
 * Percentile estimate with a distribution-free CI from order statistics
 * (see {@link quantileRanks}).
 *
 * @param sorted ascending sample
 * @param q quantile level in (0, 1)
 * @param confidence coverage level (default 0.95)
 */
export function quantileInterval(sorted: readonly number[], q: number, confidence = DEFAULT_CONFIDENCE): PercentileEstimate {
  if (sorted.length === 0) return { q, value: null, lower: null, upper: null };
  const ranks = quantileRanks(sorted.length, q, confidence);
  return {
    q,
    value: quantile(sorted, q),
    lower: ranks.lower === null ? null : (sorted[ranks.lower - 1] ?? null),
    upper: ranks.upper === null ? null : (sorted[ranks.upper - 1] ?? null),
  };
}

/**
 * Label for a quantile level: 0.5 → "p50", 0.999 → "p99.9".
 *
 * @param q quantile level in (0, 1)
 */
export function percentileLabel(q: number): string {
  return `p${Number((q * 100).toPrecision(6))}`;
}

/**
 * Wilson score interval for a binomial proportion (good coverage even near 0 or 1).
 *
 * @param successes number of true outcomes
 * @param count number of trials
 * @param confidence coverage level
 */
export function wilsonInterval(successes: number, count: number, confidence = DEFAULT_CONFIDENCE): ConfidenceInterval {
  if (count <= 0) return { lower: null, upper: null };
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = successes / count;
  const z2n = (z * z) / count;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / count + z2n / (4 * count))) / (1 + z2n);
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}
