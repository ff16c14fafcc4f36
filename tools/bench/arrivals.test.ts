import { describe, expect, it } from "vitest";
import { arrivalOffsets, interArrivalSeconds } from "./arrivals.js";
import { gamma, seededRandom } from "./random.js";

function gaps(n: number, rate: number, burstiness: number, seed = 7): number[] {
  const rng = seededRandom(seed);
  return Array.from({ length: n }, () => interArrivalSeconds(rng, { rate, burstiness }));
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cvOf = (xs: number[]) => {
  const m = meanOf(xs);
  return Math.sqrt(meanOf(xs.map((x) => (x - m) ** 2))) / m;
};

describe("arrivals", () => {
  it("draws Poisson arrivals at the requested mean rate", () => {
    const offsets = arrivalOffsets(20_001, { rate: 8, burstiness: 1 }, seededRandom(1));
    const observedRate = (offsets.length - 1) / offsets[offsets.length - 1];
    expect(observedRate).toBeGreaterThan(8 * 0.97);
    expect(observedRate).toBeLessThan(8 * 1.03);
    expect(offsets[0]).toBe(0);
  });

  it("draws exponential inter-arrival gaps when burstiness is 1 (Kolmogorov–Smirnov)", () => {
    const rate = 5;
    const xs = gaps(20_000, rate, 1).sort((a, b) => a - b);
    let d = 0;
    xs.forEach((x, i) => {
      const cdf = 1 - Math.exp(-rate * x);
      d = Math.max(d, Math.abs(cdf - i / xs.length), Math.abs(cdf - (i + 1) / xs.length));
    });
    // Critical value at alpha = 0.01 for n = 20,000 is 1.63 / sqrt(n) ≈ 0.0115.
    expect(d).toBeLessThan(0.0115);
    expect(cvOf(xs)).toBeCloseTo(1, 1);
  });

  it("keeps the mean rate but narrows the gaps as burstiness grows (CV = 1/sqrt(burstiness))", () => {
    const xs = gaps(20_000, 4, 4);
    expect(meanOf(xs)).toBeGreaterThan(0.25 * 0.97);
    expect(meanOf(xs)).toBeLessThan(0.25 * 1.03);
    expect(cvOf(xs)).toBeCloseTo(0.5, 1);
    expect(cvOf(gaps(20_000, 4, 0.5))).toBeCloseTo(Math.SQRT2, 1);
  });

  it("sends every request at once at an infinite rate", () => {
    expect(arrivalOffsets(5, { rate: Infinity, burstiness: 1 }, seededRandom(1))).toEqual([0, 0, 0, 0, 0]);
  });

  it("gives the same sequence for the same seed", () => {
    const a = arrivalOffsets(100, { rate: 3, burstiness: 1 }, seededRandom(42));
    const b = arrivalOffsets(100, { rate: 3, burstiness: 1 }, seededRandom(42));
    const c = arrivalOffsets(100, { rate: 3, burstiness: 1 }, seededRandom(43));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it("rejects a non-positive rate and bad gamma parameters", () => {
    expect(() => interArrivalSeconds(seededRandom(1), { rate: 0, burstiness: 1 })).toThrow(RangeError);
    expect(() => gamma(seededRandom(1), 0, 1)).toThrow(RangeError);
  });
});
