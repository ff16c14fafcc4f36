/**
 * Numeric building blocks of the experiment statistics: interval and summary
 * types, the Welford moment accumulator and the bounded reservoir sample.
 * Pure in-memory logic; no I/O, no clocks.
 */
import { normalQuantile, seededRandom } from "./math.js";
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

/** Default confidence level for every interval in the experiment library. */
export const DEFAULT_CONFIDENCE = 0.95;
/** Default reservoir capacity per arm and metric (exact percentile CIs stay cheap at this size). */
export const DEFAULT_RESERVOIR_SIZE = 4096;

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

  /**
   * Fold another reservoir into this one: the result is a sample of both
   * streams with each contributing in proportion to what it has seen (values
   * drawn without replacement by this reservoir's PRNG, so the same inputs in
   * the same order give the same sample on every replica).
   */
  merge(other: Reservoir): void {
    const total = this.seenCount + other.seenCount;
    if (other.seenCount === 0) return;
    const k = Math.min(this.capacity, this.values.length + other.values.length);
    let fromOther = Math.min(other.values.length, Math.round((k * other.seenCount) / total));
    let fromThis = Math.min(this.values.length, k - fromOther);
    fromOther = Math.min(other.values.length, k - fromThis);
    fromThis = Math.min(this.values.length, k - fromOther);
    const mine = this.#draw(this.values, fromThis);
    const theirs = this.#draw(other.values, fromOther);
    this.values.splice(0, this.values.length, ...mine, ...theirs);
    this.seenCount = total;
    this.sortedCache = null;
  }

  /** `n` values of `from` chosen uniformly without replacement (partial Fisher-Yates on a copy). */
  #draw(from: readonly number[], n: number): number[] {
    const copy = [...from];
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.rng() * (copy.length - i));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy.slice(0, n);
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
