import { describe, expect, it } from "vitest";
import { mean, percentile, summarize } from "./stats.js";

describe("percentile", () => {
  const xs = [15, 20, 35, 40, 50];

  it("interpolates linearly between closest ranks like numpy", () => {
    // numpy.percentile([15, 20, 35, 40, 50], [0, 25, 40, 50, 90, 99, 100])
    expect(percentile(xs, 0)).toBe(15);
    expect(percentile(xs, 25)).toBe(20);
    expect(percentile(xs, 40)).toBeCloseTo(29, 10);
    expect(percentile(xs, 50)).toBe(35);
    expect(percentile(xs, 90)).toBeCloseTo(46, 10);
    expect(percentile(xs, 99)).toBeCloseTo(49.6, 10);
    expect(percentile(xs, 100)).toBe(50);
  });

  it("does not depend on input order and does not mutate it", () => {
    const shuffled = [40, 15, 50, 35, 20];
    expect(percentile(shuffled, 90)).toBeCloseTo(46, 10);
    expect(shuffled).toEqual([40, 15, 50, 35, 20]);
  });

  it("matches the closed form on 1..100", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBeCloseTo(50.5, 10);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01, 10);
  });

  it("is NaN on no data and rejects out-of-range percentiles", () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile(xs, 101)).toThrow(RangeError);
  });

  it("summarizes mean, percentiles and extremes", () => {
    const s = summarize([3, 1, 2]);
    expect(s).toMatchObject({ n: 3, mean: 2, p50: 2, min: 1, max: 3 });
    expect(s.p90).toBeCloseTo(2.8, 10);
    expect(mean([])).toBeNaN();
  });
});
