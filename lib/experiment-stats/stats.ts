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
 * `RunningMoments` and `Reservoir` live in `moments.ts`, the quantile and Wilson
 * interval functions in `quantiles.ts`; both are re-exported from here.
 * Pure in-memory logic; no I/O, no clocks.
 */
import { DEFAULT_CONFIDENCE, DEFAULT_RESERVOIR_SIZE, Reservoir, RunningMoments } from "./moments.js";
import type { ConfidenceInterval, MomentsSnapshot, ReservoirSnapshot, SampleSummary } from "./moments.js";
import { percentileLabel, quantileInterval, wilsonInterval } from "./quantiles.js";
import type { PercentileEstimate } from "./quantiles.js";

export { DEFAULT_CONFIDENCE, DEFAULT_RESERVOIR_SIZE, Reservoir, RunningMoments } from "./moments.js";
export type { ConfidenceInterval, MomentsSnapshot, ReservoirSnapshot, SampleSummary } from "./moments.js";
export { percentileLabel, quantile, quantileInterval, quantileRanks, wilsonInterval } from "./quantiles.js";
export type { PercentileEstimate } from "./quantiles.js";

/** Default percentiles reported for numeric metrics. */
export const DEFAULT_PERCENTILES: readonly number[] = [0.5, 0.9, 0.99];
/** Name of the built-in boolean metric recording whether a request failed. */
export const ERROR_RATE_METRIC = "error_rate";

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

  /** Fold another accumulator of the same metric into this one (another router's). */
  merge(other: MetricAccumulator): void {
    this.moments.merge(other.moments);
    this.reservoir.merge(other.reservoir);
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

  /** Adds another counter of the same metric. */
  merge(other: ProportionAccumulator): void {
    this.count += other.count;
    this.successes += other.successes;
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
  /** Reservoir capacity for metrics first seen after restoring. */
  reservoirSize?: number;
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
    return { arm: this.arm, reservoirSize: this.reservoirSize, requests: this.requests, errors: Object.fromEntries(this.errors), metrics, proportions };
  }

  /** Fold another router's statistics of the same arm into this one. */
  merge(other: ArmStats): void {
    this.requests += other.requests;
    for (const [k, n] of other.errors) this.errors.set(k, (this.errors.get(k) ?? 0) + n);
    for (const [k, acc] of other.metrics) {
      let mine = this.metrics.get(k);
      if (mine === undefined) {
        mine = new MetricAccumulator(this.reservoirSize, fnv1a(`${this.arm}\u0000${k}`));
        this.metrics.set(k, mine);
      }
      mine.merge(acc);
    }
    for (const [k, acc] of other.proportions) this.proportion(k).merge(acc);
  }

  /** Restore from {@link ArmStats.toJSON} output. */
  static fromJSON(s: ArmStatsSnapshot): ArmStats {
    const first = Object.values(s.metrics)[0];
    const a = new ArmStats(s.arm, s.reservoirSize ?? first?.reservoir.capacity ?? DEFAULT_RESERVOIR_SIZE);
    a.requests = s.requests;
    for (const [k, v] of Object.entries(s.errors)) a.errors.set(k, v);
    for (const [k, v] of Object.entries(s.metrics)) a.metrics.set(k, MetricAccumulator.fromJSON(v));
    for (const [k, v] of Object.entries(s.proportions)) a.proportions.set(k, ProportionAccumulator.fromJSON(v));
    return a;
  }
}

/** Serialized state of {@link ExperimentStats}. */
export interface ExperimentStatsSnapshot {
  reservoirSize: number;
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
    return { reservoirSize: this.reservoirSize, arms: [...this.arms.values()].map((a) => a.toJSON()) };
  }

  /** Fold another router's statistics of the same experiment into this one, arm by arm. */
  merge(other: ExperimentStats): void {
    for (const [name, arm] of other.arms) this.arm(name).merge(arm);
  }

  /** Restore from {@link ExperimentStats.toJSON} output. */
  static fromJSON(s: ExperimentStatsSnapshot): ExperimentStats {
    const e = new ExperimentStats(s.reservoirSize);
    for (const a of s.arms) e.arms.set(a.arm, ArmStats.fromJSON({ ...a, reservoirSize: a.reservoirSize ?? s.reservoirSize }));
    return e;
  }
}
