import { describe, expect, it } from "vitest";
import { seededRandom } from "./math.js";
import type { SeededRandom } from "./math.js";
import { accumulateSequential, mixtureSequentialTest, optimalMixtureRatio } from "./sequential.js";
import type { SequentialResult } from "./sequential.js";
import { RunningMoments } from "./stats.js";

/** Lognormal TTFT-like sample (Box–Muller). */
function lognormal(rng: SeededRandom, median: number, sigma: number): number {
  const u1 = 1 - rng();
  const u2 = rng();
  return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
}

interface SimOptions {
  runs: number;
  /** Total requests per run, randomly split between the arms. */
  requests: number;
  /** Read the test after this many requests. */
  readEvery: number;
  /** TTFT multiplier of the treatment arm (1 = A/A). */
  effect: number;
  sigma?: number;
  seed: number;
  treatmentShare?: number;
}

/** Simulate runs and count those in which ANY read was significant. */
function simulate(o: SimOptions): { rejectedRuns: number; finals: SequentialResult[] } {
  const rng = seededRandom(o.seed);
  const sigma = o.sigma ?? 0.5;
  const share = o.treatmentShare ?? 0.5;
  let rejectedRuns = 0;
  const finals: SequentialResult[] = [];
  for (let r = 0; r < o.runs; r++) {
    const control = new RunningMoments();
    const treatment = new RunningMoments();
    let rejected = false;
    let state: SequentialResult | undefined;
    for (let i = 1; i <= o.requests; i++) {
      if (rng() < share) treatment.push(lognormal(rng, 200 * o.effect, sigma));
      else control.push(lognormal(rng, 200, sigma));
      if (i % o.readEvery === 0) {
        state = accumulateSequential(state, mixtureSequentialTest(control, treatment));
        if (state.significant) rejected = true;
      }
    }
    if (rejected) rejectedRuns += 1;
    if (state) finals.push(state);
  }
  return { rejectedRuns, finals };
}

describe("mixture sequential test: A/A false-positive rate", () => {
  it("keeps the false-positive rate ≤ 5 % over 500 A/A runs of ~1,000 requests per arm read every 100 requests", () => {
    const { rejectedRuns } = simulate({ runs: 500, requests: 2000, readEvery: 100, effect: 1, seed: 20240601 });
    expect(rejectedRuns / 500).toBeLessThanOrEqual(0.05);
  });

  it("keeps the false-positive rate ≤ 5 % even when read after every single request (heavier-tailed TTFT)", () => {
    const { rejectedRuns } = simulate({ runs: 500, requests: 2000, readEvery: 1, effect: 1, sigma: 1, seed: 7 });
    expect(rejectedRuns / 500).toBeLessThanOrEqual(0.05);
  });

  it("keeps the false-positive rate ≤ 5 % with a 90/10 split read after every request", () => {
    const { rejectedRuns } = simulate({ runs: 300, requests: 3000, readEvery: 1, effect: 1, seed: 11, treatmentShare: 0.1 });
    expect(rejectedRuns / 300).toBeLessThanOrEqual(0.05);
  });

  it("is needed: a naive fixed-horizon z-test peeked at every 100 requests exceeds 5 %", () => {
    const rng = seededRandom(20240601);
    let rejectedRuns = 0;
    for (let r = 0; r < 500; r++) {
      const a = new RunningMoments();
      const b = new RunningMoments();
      let rejected = false;
      for (let i = 1; i <= 2000; i++) {
        (rng() < 0.5 ? b : a).push(lognormal(rng, 200, 0.5));
        if (i % 100 === 0) {
          const z = (b.mean - a.mean) / Math.sqrt(a.variance / a.count + b.variance / b.count);
          if (Math.abs(z) > 1.959964) rejected = true;
        }
      }
      if (rejected) rejectedRuns += 1;
    }
    expect(rejectedRuns / 500).toBeGreaterThan(0.1);
  });
});

describe("mixture sequential test: power and coverage", () => {
  it("detects a true 10 % TTFT reduction with 2,000 requests per arm, with a CI around -10 %", () => {
    const { rejectedRuns, finals } = simulate({ runs: 1, requests: 4000, readEvery: 100, effect: 0.9, seed: 99 });
    const final = finals[0];
    expect(rejectedRuns).toBe(1);
    expect(final.significant).toBe(true);
    expect(final.pValue).toBeLessThan(0.05);
    expect(final.relativePct).toBeLessThan(0);
    expect(final.relativeCI.upper).toBeLessThan(0);
    expect(final.relativeCI.lower).toBeLessThanOrEqual(-10);
    expect(final.relativeCI.upper).toBeGreaterThanOrEqual(-10);
  });

  it("detects a 10 % TTFT reduction in at least 95 % of 200 runs of 2,000 requests per arm", () => {
    const { rejectedRuns } = simulate({ runs: 200, requests: 4000, readEvery: 100, effect: 0.9, seed: 5 });
    expect(rejectedRuns / 200).toBeGreaterThanOrEqual(0.95);
  });

  it("covers the true absolute and relative difference at every read (time-uniformly) in ≥ 95 % of 300 runs", () => {
    const rng = seededRandom(31337);
    const sigma = 0.5;
    const meanFactor = Math.exp((sigma * sigma) / 2); // lognormal mean / median
    const trueDiff = (180 - 200) * meanFactor;
    let absCovered = 0;
    let relCovered = 0;
    for (let r = 0; r < 300; r++) {
      const c = new RunningMoments();
      const t = new RunningMoments();
      let state: SequentialResult | undefined;
      let absOk = true;
      let relOk = true;
      for (let i = 1; i <= 2000; i++) {
        if (rng() < 0.5) t.push(lognormal(rng, 180, sigma));
        else c.push(lognormal(rng, 200, sigma));
        if (i % 100 !== 0) continue;
        state = accumulateSequential(state, mixtureSequentialTest(c, t));
        if (!state.ready) continue;
        const d = state.differenceCI;
        const q = state.relativeCI;
        if (!((d.lower ?? -Infinity) <= trueDiff && trueDiff <= (d.upper ?? Infinity))) absOk = false;
        if (!((q.lower ?? -Infinity) <= -10 && -10 <= (q.upper ?? Infinity))) relOk = false;
      }
      if (absOk) absCovered += 1;
      if (relOk) relCovered += 1;
    }
    expect(absCovered / 300).toBeGreaterThanOrEqual(0.95);
    expect(relCovered / 300).toBeGreaterThanOrEqual(0.95);
  });
});

describe("mixture sequential test: mechanics", () => {
  const summary = (count: number, mean: number, variance: number) => ({ count, mean, variance });

  it("waits for the minimum per-arm sample size and for non-zero variance", () => {
    const early = mixtureSequentialTest(summary(99, 200, 400), summary(500, 100, 400));
    expect(early.ready).toBe(false);
    expect(early.pValue).toBe(1);
    expect(early.differenceCI).toEqual({ lower: null, upper: null });
    expect(early.difference).toBe(-100);
    expect(mixtureSequentialTest(summary(500, 0, 0), summary(500, 0, 0)).ready).toBe(false);
  });

  it("agrees with the closed-form mSPRT statistic", () => {
    const res = mixtureSequentialTest(summary(1000, 100, 400), summary(1000, 103, 400));
    const v = 400 / 1000 + 400 / 1000;
    const tau2 = ((optimalMixtureRatio(0.05) * 2) / 1000) * 400;
    const lr = Math.sqrt(v / (v + tau2)) * Math.exp((9 * tau2) / (2 * v * (v + tau2)));
    expect(res.pValue).toBeCloseTo(Math.min(1, 1 / lr), 12);
    expect(res.difference).toBe(3);
    expect(res.relativePct).toBeCloseTo(3, 12);
    // The CI excludes 0 exactly when p < alpha.
    expect((res.differenceCI.lower ?? 0) > 0).toBe(res.significant);
  });

  it("is wider than a fixed-horizon CI (the price of continuous monitoring)", () => {
    const res = mixtureSequentialTest(summary(1000, 100, 400), summary(1000, 100, 400));
    const fixedHalf = 1.96 * Math.sqrt(0.8);
    const half = ((res.differenceCI.upper ?? 0) - (res.differenceCI.lower ?? 0)) / 2;
    expect(half).toBeGreaterThan(fixedHalf);
    expect(half).toBeLessThan(2 * fixedHalf);
  });

  it("tunes the mixture near the boundary-minimizing ratio", () => {
    const r = optimalMixtureRatio(0.05);
    const f = (x: number) => (1 + 1 / x) * (2 * Math.log(20) + Math.log1p(x));
    expect(f(r)).toBeLessThanOrEqual(f(r * 1.1));
    expect(f(r)).toBeLessThanOrEqual(f(r / 1.1));
  });

  it("accumulates a non-increasing p-value and nested CIs across reads", () => {
    const rng = seededRandom(8);
    const c = new RunningMoments();
    const t = new RunningMoments();
    let state: SequentialResult | undefined;
    let prev: SequentialResult | undefined;
    for (let i = 1; i <= 3000; i++) {
      if (rng() < 0.5) t.push(lognormal(rng, 190, 0.5));
      else c.push(lognormal(rng, 200, 0.5));
      if (i % 50 !== 0) continue;
      state = accumulateSequential(state, mixtureSequentialTest(c, t));
      if (prev?.ready && state.ready) {
        expect(state.pValue).toBeLessThanOrEqual(prev.pValue);
        expect(state.differenceCI.lower ?? 0).toBeGreaterThanOrEqual(prev.differenceCI.lower ?? 0);
        expect(state.differenceCI.upper ?? 0).toBeLessThanOrEqual(prev.differenceCI.upper ?? 0);
      }
      prev = state;
    }
  });

  it("restarts the running state when the counts go backwards (stats were reset)", () => {
    const big = mixtureSequentialTest(summary(5000, 100, 100), summary(5000, 110, 100));
    const small = mixtureSequentialTest(summary(200, 100, 100), summary(200, 100, 100));
    expect(accumulateSequential(big, small)).toEqual(small);
  });
});
