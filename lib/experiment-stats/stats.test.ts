import { describe, expect, it } from "vitest";
import { seededRandom } from "./math.js";
import {
  ArmStats,
  ExperimentStats,
  MetricAccumulator,
  ProportionAccumulator,
  Reservoir,
  RunningMoments,
  percentileLabel,
  quantile,
  quantileInterval,
  quantileRanks,
  wilsonInterval,
} from "./stats.js";

const ONE_TO_100 = Array.from({ length: 100 }, (_, i) => i + 1);

describe("RunningMoments", () => {
  it("matches the two-pass mean and sample variance", () => {
    const data = [2, 4, 4, 4, 5, 5, 7, 9];
    const m = new RunningMoments();
    data.forEach((x) => m.push(x));
    expect(m.count).toBe(8);
    expect(m.mean).toBe(5);
    expect(m.variance).toBeCloseTo(32 / 7, 12);
    expect(m.min).toBe(2);
    expect(m.max).toBe(9);
  });

  it("stays accurate with a large offset (no catastrophic cancellation)", () => {
    const m = new RunningMoments();
    for (const x of [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]) m.push(x);
    expect(m.variance).toBeCloseTo(30, 6);
  });

  it("merges two halves into the same result as one pass", () => {
    const rng = seededRandom(7);
    const data = Array.from({ length: 1000 }, () => rng() * 100);
    const whole = new RunningMoments();
    const a = new RunningMoments();
    const b = new RunningMoments();
    data.forEach((x, i) => {
      whole.push(x);
      (i < 400 ? a : b).push(x);
    });
    a.merge(b);
    expect(a.count).toBe(whole.count);
    expect(a.mean).toBeCloseTo(whole.mean, 10);
    expect(a.variance).toBeCloseTo(whole.variance, 8);
  });

  it("ignores non-finite values and reports an unbounded CI with < 2 samples", () => {
    const m = new RunningMoments();
    m.push(Number.NaN);
    m.push(Number.POSITIVE_INFINITY);
    m.push(3);
    expect(m.count).toBe(1);
    expect(m.meanInterval()).toEqual({ lower: null, upper: null });
  });
});

describe("quantile", () => {
  it("interpolates like R/NumPy type 7 on 1..100", () => {
    expect(quantile(ONE_TO_100, 0.5)).toBeCloseTo(50.5, 12);
    expect(quantile(ONE_TO_100, 0.9)).toBeCloseTo(90.1, 12);
    expect(quantile(ONE_TO_100, 0.99)).toBeCloseTo(99.01, 12);
    expect(quantile(ONE_TO_100, 0)).toBe(1);
    expect(quantile(ONE_TO_100, 1)).toBe(100);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it("labels percentiles readably", () => {
    expect([0.5, 0.9, 0.99, 0.999].map(percentileLabel)).toEqual(["p50", "p90", "p99", "p99.9"]);
  });
});

describe("quantileInterval", () => {
  it("uses the textbook order statistics X(40), X(61) for the median of 100 values", () => {
    expect(quantileRanks(100, 0.5)).toEqual({ lower: 40, upper: 61 });
    const ci = quantileInterval(ONE_TO_100, 0.5);
    expect(ci).toEqual({ q: 0.5, value: 50.5, lower: 40, upper: 61 });
  });

  it("leaves the upper bound of p99 unbounded when the sample is too small to bound it", () => {
    const ci = quantileInterval(
      Array.from({ length: 50 }, (_, i) => i),
      0.99,
    );
    expect(ci.upper).toBeNull();
    expect(ci.lower).not.toBeNull();
  });

  it("covers the true p90 of U(0,1) in at least 93 % of 400 samples of 500", () => {
    const rng = seededRandom(42);
    let covered = 0;
    for (let t = 0; t < 400; t++) {
      const sample = Array.from({ length: 500 }, () => rng()).sort((a, b) => a - b);
      const ci = quantileInterval(sample, 0.9);
      if ((ci.lower ?? -Infinity) <= 0.9 && 0.9 <= (ci.upper ?? Infinity)) covered += 1;
    }
    expect(covered / 400).toBeGreaterThanOrEqual(0.93);
  });
});

describe("Reservoir", () => {
  it("keeps a bounded, roughly uniform sample of a long stream", () => {
    const r = new Reservoir(1000, 1);
    for (let i = 1; i <= 100_000; i++) r.push(i);
    expect(r.size).toBe(1000);
    expect(r.seen).toBe(100_000);
    const mean = r.sorted().reduce((a, b) => a + b, 0) / r.size;
    expect(Math.abs(mean - 50_000) / 50_000).toBeLessThan(0.05);
  });

  it("yields median CIs that cover the stream's median for at least 90 % of seeds", () => {
    let covered = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const r = new Reservoir(200, seed);
      for (let i = 1; i <= 20_000; i++) r.push(i);
      const ci = quantileInterval(r.sorted(), 0.5);
      if ((ci.lower ?? -Infinity) <= 10_000 && 10_000 <= (ci.upper ?? Infinity)) covered += 1;
    }
    expect(covered).toBeGreaterThanOrEqual(90);
  });

  it("resumes identically after a JSON round trip", () => {
    const a = new Reservoir(50, 9);
    for (let i = 0; i < 500; i++) a.push(i);
    const b = Reservoir.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    for (let i = 500; i < 2000; i++) {
      a.push(i);
      b.push(i);
    }
    expect(b.sorted()).toEqual(a.sorted());
  });
});

describe("proportions", () => {
  it("computes the Wilson interval for 50/100 as [0.4038, 0.5962]", () => {
    const ci = wilsonInterval(50, 100);
    expect(ci.lower).toBeCloseTo(0.4038, 4);
    expect(ci.upper).toBeCloseTo(0.5962, 4);
  });

  it("gives a non-degenerate interval at 0 successes", () => {
    const p = new ProportionAccumulator();
    for (let i = 0; i < 20; i++) p.push(false);
    const s = p.summary();
    expect(s.rate).toBe(0);
    expect(s.rateCI.lower).toBe(0);
    expect(s.rateCI.upper).toBeGreaterThan(0.1);
    expect(p.asSample()).toEqual({ count: 20, mean: 0, variance: 0 });
  });
});

describe("MetricAccumulator", () => {
  it("reports mean and p50/p90/p99 with CIs on known data", () => {
    const m = new MetricAccumulator();
    ONE_TO_100.forEach((x) => m.push(x));
    const s = m.summary();
    expect(s.mean).toBe(50.5);
    expect(s.meanCI.lower).toBeLessThan(50.5);
    expect(s.meanCI.upper).toBeGreaterThan(50.5);
    expect(s.percentiles["p50"]?.value).toBeCloseTo(50.5, 12);
    expect(s.percentiles["p90"]?.value).toBeCloseTo(90.1, 12);
    expect(s.percentiles["p99"]?.value).toBeCloseTo(99.01, 12);
    expect(s.percentiles["p99"]?.upper).toBeNull();
  });
});

describe("ArmStats", () => {
  it("counts requests, errors by type, the error rate, metrics and flags", () => {
    const arm = new ArmStats("vllm");
    arm.record({ metrics: { ttft_ms: 100, e2e_ms: 900 }, flags: { thumbs_up: true } });
    arm.record({ metrics: { ttft_ms: 120, e2e_ms: undefined } });
    arm.record({ error: "timeout" });
    arm.record({ error: "timeout" });
    arm.record({ error: "http_503" });
    arm.recordFlag("thumbs_up", false);
    expect(arm.requests).toBe(5);
    expect(arm.errorCount).toBe(3);
    expect(Object.fromEntries(arm.errors)).toEqual({ timeout: 2, http_503: 1 });
    expect(arm.proportions.get("error_rate")?.rate).toBeCloseTo(0.6, 12);
    expect(arm.metrics.get("ttft_ms")?.moments.mean).toBe(110);
    expect(arm.metrics.get("e2e_ms")?.moments.count).toBe(1);
    expect(arm.proportions.get("thumbs_up")?.toJSON()).toEqual({ count: 2, successes: 1 });
  });

  it("survives a JSON round trip of the whole experiment", () => {
    const stats = new ExperimentStats(256);
    const rng = seededRandom(3);
    for (let i = 0; i < 1000; i++) stats.record(i % 2 ? "a" : "b", { metrics: { ttft_ms: rng() * 100 }, error: i % 50 ? null : "x" });
    const copy = ExperimentStats.fromJSON(JSON.parse(JSON.stringify(stats)));
    for (const name of ["a", "b"]) {
      expect(copy.arm(name).toJSON()).toEqual(stats.arm(name).toJSON());
      expect(copy.arm(name).metrics.get("ttft_ms")?.summary()).toEqual(stats.arm(name).metrics.get("ttft_ms")?.summary());
    }
  });
});

describe("merging statistics of several routers", () => {
  it("gives the counts, means and errors of one stream, and the same result in the same order", () => {
    const whole = new ExperimentStats();
    const parts = [new ExperimentStats(), new ExperimentStats()];
    for (let i = 0; i < 400; i++) {
      const obs = i % 10 === 0 ? { error: "timeout" } : { metrics: { ttft_ms: i }, flags: { liked: i % 3 === 0 } };
      whole.record(i % 2 ? "a" : "b", obs);
      parts[i % 4 < 2 ? 0 : 1].record(i % 2 ? "a" : "b", obs);
    }
    const merge = () => {
      const m = new ExperimentStats();
      for (const p of parts) m.merge(ExperimentStats.fromJSON(p.toJSON()));
      return m;
    };
    const merged = merge();
    for (const arm of ["a", "b"]) {
      const w = whole.arm(arm);
      const m = merged.arm(arm);
      expect(m.requests).toBe(w.requests);
      expect(m.errorCount).toBe(w.errorCount);
      expect(m.metrics.get("ttft_ms")!.moments.count).toBe(w.metrics.get("ttft_ms")!.moments.count);
      expect(m.metrics.get("ttft_ms")!.moments.mean).toBeCloseTo(w.metrics.get("ttft_ms")!.moments.mean, 9);
      expect(m.proportions.get("liked")!.successes).toBe(w.proportions.get("liked")!.successes);
      expect(m.metrics.get("ttft_ms")!.reservoir.seen).toBe(w.metrics.get("ttft_ms")!.reservoir.seen);
    }
    expect(JSON.stringify(merge().toJSON())).toBe(JSON.stringify(merged.toJSON()));
  });

  it("keeps a merged reservoir within capacity, drawing from each side by what it saw", () => {
    const big = new Reservoir(100, 1);
    const small = new Reservoir(100, 2);
    for (let i = 0; i < 900; i++) big.push(1);
    for (let i = 0; i < 100; i++) small.push(2);
    big.merge(small);
    expect(big.size).toBe(100);
    expect(big.seen).toBe(1000);
    expect(big.sorted().filter((v) => v === 2)).toHaveLength(10);
  });
});
