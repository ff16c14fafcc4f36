/**
 * Streaming per-arm statistics for router experiments.
 *
 * - {@link RunningMoments}: count / mean / variance by Welford's algorithm
 *   (numerically stable, mergeable across replicas with Chan's formula).
 * - {@link Reservoir}: a bounded uniform sample of the stream (Vitter's
 *   algorithm R with a seeded PRNG, so replays are reproducible).
 * - {@link quantileInterval}: percentile point estimates with distribution-free
 *   95 % confidence intervals from order statistics (exact binomial ranks).
 * - {@link ProportionAccumulator}: boolean metrics with a Wilson score interval.
 * - {@link ArmStats} / {@link ExperimentStats}: everything above, per arm and metric,
 *   plus error counts by type; all JSON-serializable (`toJSON` / `fromJSON`).
 *
 * Pure in-memory logic; no I/O, no clocks.
 */
import { binomialPmf, normalQuantile, seededRandom } from "./math.js";
import type { SeededRandom } from "./math.js";

/** A two-sided interval; `null` marks an unbounded side (not enough data to bound it). */
export interface ConfidenceInterval {
  lower: number | null;
  upper: number | null;
}

/** The minimal summary the sequential test needs: count, mean and sample variance. */
export interface SampleSummary {
  count: number;
  mean: number;
  /** Unbiased sample variance (divides by n − 1); 0 when count < 2. */
  variance: number;
}

/** Default confidence level for every interval in this module. */
export const DEFAULT_CONFIDENCE = 0.95;
/** Default reservoir capacity per arm and metric (exact percentile CIs stay cheap at this size). */
export const DEFAULT_RESERVOIR_SIZE = 4096;
/** Default percentiles reported for numeric metrics. */
export const DEFAULT_PERCENTILES: readonly number[] = [0.5, 0.9, 0.99];
/** Name of the built-in boolean metric recording whether a request failed. */
export const ERROR_RATE_METRIC = "error_rate";

/** Serialized state of {@link RunningMoments}. */
export interface MomentsSnapshot {
  count: number;
  mean: number;
  m2: number;
  min: number | null;
  max: number | null;
}

/** Welford accumulator for count, mean, variance, min and max of a numeric stream. */
export class RunningMoments implements SampleSummary {
  count = 0;
  mean = 0;
  /** Sum of squared deviations from the running mean. */
  m2 = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  /** Add one observation; non-finite values are ignored. */
  push(x: number): void {
    if (!Number.isFinite(x)) return;
    this.count += 1;
    const delta = x - this.mean;
    this.mean += delta / this.count;
    this.m2 += delta * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  /** Fold another accumulator into this one (Chan et al. parallel update). */
  merge(other: RunningMoments): void {
    if (other.count === 0) return;
    if (this.count === 0) {
      Object.assign(this, { count: other.count, mean: other.mean, m2: other.m2, min: other.min, max: other.max });
      return;
    }
    const n = this.count + other.count;
    const delta = other.mean - this.mean;
    this.m2 += other.m2 + (delta * delta * this.count * other.count) / n;
    this.mean += (delta * other.count) / n;
    this.count = n;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  /** Unbiased sample variance; 0 with fewer than two observations. */
  get variance(): number {
    return this.count < 2 ? 0 : this.m2 / (this.count - 1);
  }

  /** Sample standard deviation. */
  get stddev(): number {
    return Math.sqrt(this.variance);
  }

  /** Standard error of the mean. */
  get standardError(): number {
    return this.count === 0 ? Number.NaN : Math.sqrt(this.variance / this.count);
  }

  /**
   * Fixed-horizon normal-approximation CI for the mean (mean ± z·SE).
   * Unbounded (nulls) with fewer than two observations.
   */
  meanInterval(confidence = DEFAULT_CONFIDENCE): ConfidenceInterval {
    if (this.count < 2) return { lower: null, upper: null };
    const half = normalQuantile(1 - (1 - confidence) / 2) * this.standardError;
    return { lower: this.mean - half, upper: this.mean + half };
  }

  /** JSON-serializable state. */
  toJSON(): MomentsSnapshot {
    return {
      count: this.count,
      mean: this.mean,
      m2: this.m2,
      min: this.count > 0 ? this.min : null,
      max: this.count > 0 ? this.max : null,
    };
  }

  /** Restore from {@link RunningMoments.toJSON} output. */
  static fromJSON(s: MomentsSnapshot): RunningMoments {
    const m = new RunningMoments();
    m.count = s.count;
    m.mean = s.mean;
    m.m2 = s.m2;
    m.min = s.min ?? Number.POSITIVE_INFINITY;
    m.max = s.max ?? Number.NEGATIVE_INFINITY;
    return m;
  }
}

/** Serialized state of {@link Reservoir}. */
export interface ReservoirSnapshot {
  capacity: number;
  seen: number;
  values: number[];
  rngState: number;
}

/**
 * Fixed-capacity uniform random sample of a stream (algorithm R). After `seen`
 * pushes each value is in the sample with probability `capacity / seen`, so order
 * statistics of the sample estimate quantiles of the whole stream.
 */
export class Reservoir {
  readonly capacity: number;
  private readonly values: number[] = [];
  private seenCount = 0;
  private rng: SeededRandom;
  private sortedCache: number[] | null = null;

  /**
   * @param capacity maximum number of retained values (≥ 1)
   * @param seed PRNG seed for replacement decisions (deterministic replays)
   */
  constructor(capacity = DEFAULT_RESERVOIR_SIZE, seed = 0x2545f491) {
    if (!(capacity >= 1)) throw new Error(`reservoir capacity must be ≥ 1, got ${capacity}`);
    this.capacity = Math.floor(capacity);
    this.rng = seededRandom(seed);
  }

  /** Offer one value; non-finite values are ignored. */
  push(x: number): void {
    if (!Number.isFinite(x)) return;
    this.seenCount += 1;
    if (this.values.length < this.capacity) {
      this.values.push(x);
      this.sortedCache = null;
      return;
    }
    const j = Math.floor(this.rng() * this.seenCount);
    if (j < this.capacity) {
      this.values[j] = x;
      this.sortedCache = null;
    }
  }

  /** Number of values offered so far. */
  get seen(): number {
    return this.seenCount;
  }

  /** Number of values retained. */
  get size(): number {
    return this.values.length;
  }

  /** The retained values in ascending order (cached until the next change). */
  sorted(): readonly number[] {
    if (this.sortedCache === null) this.sortedCache = [...this.values].sort((a, b) => a - b);
    return this.sortedCache;
  }

  /** JSON-serializable state (includes the PRNG state so sampling resumes identically). */
  toJSON(): ReservoirSnapshot {
    return { capacity: this.capacity, seen: this.seenCount, values: [...this.values], rngState: this.rng.state() };
  }

  /** Restore from {@link Reservoir.toJSON} output. */
  static fromJSON(s: ReservoirSnapshot): Reservoir {
    const r = new Reservoir(s.capacity);
    r.values.push(...s.values.slice(0, r.capacity));
    r.seenCount = s.seen;
    r.rng = seededRandom(s.rngState);
    return r;
  }
}

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
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
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

/** Summary of a numeric metric for one arm. */
export interface MetricSummary {
  count: number;
  mean: number | null;
  stddev: number | null;
  min: number | null;
  max: number | null;
  /** Fixed-horizon 95 % CI of the mean (normal approximation). */
  meanCI: ConfidenceInterval;
  /** Percentiles keyed by label ("p50", "p90", "p99"), each with a 95 % CI. */
  percentiles: Record<string, PercentileEstimate>;
  /** Number of values the percentiles were computed from (reservoir size). */
  percentileSampleSize: number;
}

/** Serialized state of {@link MetricAccumulator}. */
export interface MetricSnapshot {
  moments: MomentsSnapshot;
  reservoir: ReservoirSnapshot;
}

/** Exact moments plus a bounded sample for percentiles of one numeric metric. */
export class MetricAccumulator {
  readonly moments: RunningMoments;
  readonly reservoir: Reservoir;

  /**
   * @param reservoirSize capacity of the percentile sample
   * @param seed PRNG seed of the reservoir
   */
  constructor(reservoirSize = DEFAULT_RESERVOIR_SIZE, seed?: number, state?: MetricSnapshot) {
    this.moments = state ? RunningMoments.fromJSON(state.moments) : new RunningMoments();
    this.reservoir = state ? Reservoir.fromJSON(state.reservoir) : new Reservoir(reservoirSize, seed);
  }

  /** Add one observation; non-finite values are ignored. */
  push(x: number): void {
    if (!Number.isFinite(x)) return;
    this.moments.push(x);
    this.reservoir.push(x);
  }

  /**
   * Summarize: mean with CI, and percentiles with order-statistic CIs.
   *
   * @param percentiles quantile levels, default p50/p90/p99
   * @param confidence coverage of every interval
   */
  summary(percentiles: readonly number[] = DEFAULT_PERCENTILES, confidence = DEFAULT_CONFIDENCE): MetricSummary {
    const m = this.moments;
    const sorted = this.reservoir.sorted();
    const pct: Record<string, PercentileEstimate> = {};
    for (const q of percentiles) pct[percentileLabel(q)] = quantileInterval(sorted, q, confidence);
    const empty = m.count === 0;
    return {
      count: m.count,
      mean: empty ? null : m.mean,
      stddev: empty ? null : m.stddev,
      min: empty ? null : m.min,
      max: empty ? null : m.max,
      meanCI: m.meanInterval(confidence),
      percentiles: pct,
      percentileSampleSize: sorted.length,
    };
  }

  /** JSON-serializable state. */
  toJSON(): MetricSnapshot {
    return { moments: this.moments.toJSON(), reservoir: this.reservoir.toJSON() };
  }

  /** Restore from {@link MetricAccumulator.toJSON} output. */
  static fromJSON(s: MetricSnapshot): MetricAccumulator {
    return new MetricAccumulator(s.reservoir.capacity, undefined, s);
  }
}

/** Summary of a boolean metric for one arm. */
export interface ProportionSummary {
  count: number;
  successes: number;
  rate: number | null;
  /** Wilson 95 % interval for the rate. */
  rateCI: ConfidenceInterval;
}

/** Serialized state of {@link ProportionAccumulator}. */
export interface ProportionSnapshot {
  count: number;
  successes: number;
}

/** Counter for a boolean metric (success rate, thumbs-up rate, error rate). */
export class ProportionAccumulator {
  count = 0;
  successes = 0;

  /** Add one outcome. */
  push(value: boolean): void {
    this.count += 1;
    if (value) this.successes += 1;
  }

  /** Observed rate, NaN when empty. */
  get rate(): number {
    return this.count === 0 ? Number.NaN : this.successes / this.count;
  }

  /** Count, mean and unbiased variance of the 0/1 outcomes (for the sequential test). */
  asSample(): SampleSummary {
    const n = this.count;
    if (n === 0) return { count: 0, mean: 0, variance: 0 };
    const p = this.successes / n;
    return { count: n, mean: p, variance: n < 2 ? 0 : (p * (1 - p) * n) / (n - 1) };
  }

  /** Rate with a Wilson interval. */
  summary(confidence = DEFAULT_CONFIDENCE): ProportionSummary {
    return {
      count: this.count,
      successes: this.successes,
      rate: this.count === 0 ? null : this.rate,
      rateCI: wilsonInterval(this.successes, this.count, confidence),
    };
  }

  /** JSON-serializable state. */
  toJSON(): ProportionSnapshot {
    return { count: this.count, successes: this.successes };
  }

  /** Restore from {@link ProportionAccumulator.toJSON} output. */
  static fromJSON(s: ProportionSnapshot): ProportionAccumulator {
    const p = new ProportionAccumulator();
    p.count = s.count;
    p.successes = s.successes;
    return p;
  }
}

/** One completed request (or feedback event) as seen by the experiment. */
export interface Observation {
  /** Numeric metrics, e.g. `{ ttft_ms: 182, tpot_ms: 21.5, e2e_ms: 2410 }`; missing / non-finite are skipped. */
  metrics?: Readonly<Record<string, number | null | undefined>>;
  /** Boolean metrics, e.g. `{ thumbs_up: true }`; missing values are skipped. */
  flags?: Readonly<Record<string, boolean | null | undefined>>;
  /** Error type when the request failed (e.g. `"timeout"`, `"http_503"`). */
  error?: string | null;
}

/** Serialized state of {@link ArmStats}. */
export interface ArmStatsSnapshot {
  arm: string;
  requests: number;
  errors: Record<string, number>;
  metrics: Record<string, MetricSnapshot>;
  proportions: Record<string, ProportionSnapshot>;
}

/** FNV-1a 32-bit hash, used to derive stable per-(arm, metric) reservoir seeds. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** All accumulators of one arm: request count, errors by type, numeric and boolean metrics. */
export class ArmStats {
  readonly arm: string;
  readonly reservoirSize: number;
  requests = 0;
  readonly errors = new Map<string, number>();
  readonly metrics = new Map<string, MetricAccumulator>();
  readonly proportions = new Map<string, ProportionAccumulator>();

  /**
   * @param arm backend name of the arm
   * @param reservoirSize per-metric percentile sample capacity
   */
  constructor(arm: string, reservoirSize = DEFAULT_RESERVOIR_SIZE) {
    this.arm = arm;
    this.reservoirSize = reservoirSize;
  }

  /**
   * Record one request: increments the request count, the error counters and the
   * built-in `error_rate` proportion, and every metric / flag present.
   */
  record(observation: Observation): void {
    this.requests += 1;
    const error = observation.error ?? null;
    if (error !== null) this.errors.set(error, (this.errors.get(error) ?? 0) + 1);
    this.proportion(ERROR_RATE_METRIC).push(error !== null);
    for (const [name, value] of Object.entries(observation.metrics ?? {})) {
      if (typeof value === "number") this.recordMetric(name, value);
    }
    for (const [name, value] of Object.entries(observation.flags ?? {})) {
      if (typeof value === "boolean") this.recordFlag(name, value);
    }
  }

  /** Record a numeric metric without counting a request (e.g. late feedback scores). */
  recordMetric(name: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let acc = this.metrics.get(name);
    if (acc === undefined) {
      acc = new MetricAccumulator(this.reservoirSize, fnv1a(`${this.arm}\u0000${name}`));
      this.metrics.set(name, acc);
    }
    acc.push(value);
  }

  /** Record a boolean metric without counting a request (e.g. thumbs up / down). */
  recordFlag(name: string, value: boolean): void {
    this.proportion(name).push(value);
  }

  private proportion(name: string): ProportionAccumulator {
    let acc = this.proportions.get(name);
    if (acc === undefined) {
      acc = new ProportionAccumulator();
      this.proportions.set(name, acc);
    }
    return acc;
  }

  /** Total failed requests. */
  get errorCount(): number {
    let total = 0;
    for (const n of this.errors.values()) total += n;
    return total;
  }

  /** JSON-serializable state (includes reservoirs, so it can be persisted and restored). */
  toJSON(): ArmStatsSnapshot {
    const metrics: Record<string, MetricSnapshot> = {};
    for (const [k, v] of this.metrics) metrics[k] = v.toJSON();
    const proportions: Record<string, ProportionSnapshot> = {};
    for (const [k, v] of this.proportions) proportions[k] = v.toJSON();
    return { arm: this.arm, requests: this.requests, errors: Object.fromEntries(this.errors), metrics, proportions };
  }

  /** Restore from {@link ArmStats.toJSON} output. */
  static fromJSON(s: ArmStatsSnapshot): ArmStats {
    const first = Object.values(s.metrics)[0];
    const a = new ArmStats(s.arm, first?.reservoir.capacity ?? DEFAULT_RESERVOIR_SIZE);
    a.requests = s.requests;
    for (const [k, v] of Object.entries(s.errors)) a.errors.set(k, v);
    for (const [k, v] of Object.entries(s.metrics)) a.metrics.set(k, MetricAccumulator.fromJSON(v));
    for (const [k, v] of Object.entries(s.proportions)) a.proportions.set(k, ProportionAccumulator.fromJSON(v));
    return a;
  }
}

/** Serialized state of {@link ExperimentStats}. */
export interface ExperimentStatsSnapshot {
  arms: ArmStatsSnapshot[];
}

/** Per-arm statistics of one experiment, created lazily as arms receive traffic. */
export class ExperimentStats {
  readonly arms = new Map<string, ArmStats>();
  readonly reservoirSize: number;

  /** @param reservoirSize per-metric percentile sample capacity */
  constructor(reservoirSize = DEFAULT_RESERVOIR_SIZE) {
    this.reservoirSize = reservoirSize;
  }

  /** Get (creating if needed) the accumulators of an arm. */
  arm(name: string): ArmStats {
    let a = this.arms.get(name);
    if (a === undefined) {
      a = new ArmStats(name, this.reservoirSize);
      this.arms.set(name, a);
    }
    return a;
  }

  /** Record one request for an arm (see {@link ArmStats.record}). */
  record(arm: string, observation: Observation): void {
    this.arm(arm).record(observation);
  }

  /** JSON-serializable state. */
  toJSON(): ExperimentStatsSnapshot {
    return { arms: [...this.arms.values()].map((a) => a.toJSON()) };
  }

  /** Restore from {@link ExperimentStats.toJSON} output. */
  static fromJSON(s: ExperimentStatsSnapshot): ExperimentStats {
    const e = new ExperimentStats();
    for (const a of s.arms) e.arms.set(a.arm, ArmStats.fromJSON(a));
    return e;
  }
}
