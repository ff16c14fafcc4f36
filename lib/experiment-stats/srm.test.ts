import { describe, expect, it } from "vitest";
import { assignArm } from "./assignment.js";
import type { ExperimentConfig } from "./assignment.js";
import { SRM_P_VALUE_THRESHOLD, chiSquareGoodnessOfFit, sampleRatioMismatch } from "./srm.js";

function countsFor(exp: ExperimentConfig, units: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < units; i++) {
    const { arm } = assignArm(exp, `unit-${i}`);
    counts.set(arm, (counts.get(arm) ?? 0) + 1);
  }
  return counts;
}

const configured5050 = [
  { backend: "trtllm", weight: 50 },
  { backend: "vllm", weight: 50 },
];

describe("sampleRatioMismatch", () => {
  it("uses the customary p < 0.001 threshold", () => {
    expect(SRM_P_VALUE_THRESHOLD).toBe(0.001);
  });

  it("raises SRM for a 45/55 split of ~10,000 units under a 50/50 config, with a loud warning", () => {
    // Units actually routed 45/55 (e.g. a stale weight on one router replica).
    const observed = countsFor(
      {
        name: "srm",
        arms: [
          { backend: "trtllm", weight: 45 },
          { backend: "vllm", weight: 55 },
        ],
      },
      10_000,
    );
    const result = sampleRatioMismatch(configured5050.map((a) => ({ arm: a.backend, count: observed.get(a.backend) ?? 0, weight: a.weight })));
    expect(result.mismatch).toBe(true);
    expect(result.pValue).toBeLessThan(1e-10);
    expect(result.degreesOfFreedom).toBe(1);
    expect(result.warning).toMatch(/SAMPLE RATIO MISMATCH/);
    expect(result.warning).toMatch(/DO NOT TRUST/);
  });

  it("does not raise SRM for a genuine 50/50 split of 10,000 units", () => {
    const observed = countsFor({ name: "srm", arms: configured5050 }, 10_000);
    const result = sampleRatioMismatch(configured5050.map((a) => ({ arm: a.backend, count: observed.get(a.backend) ?? 0, weight: a.weight })));
    expect(result.mismatch).toBe(false);
    expect(result.pValue).toBeGreaterThan(SRM_P_VALUE_THRESHOLD);
    expect(result.warning).toBeNull();
  });

  it("computes the exact statistic for 4,500 vs 5,500", () => {
    const result = sampleRatioMismatch([
      { arm: "a", count: 4500, weight: 1 },
      { arm: "b", count: 5500, weight: 1 },
    ]);
    expect(result.chiSquare).toBeCloseTo(100, 10);
    expect(result.pValue / 1.5239706e-23).toBeCloseTo(1, 4);
    expect(result.arms.map((a) => a.expected)).toEqual([5000, 5000]);
  });

  it("checks unequal weights against their own expectation", () => {
    const ok = sampleRatioMismatch([
      { arm: "a", count: 9_010, weight: 90 },
      { arm: "b", count: 990, weight: 10 },
    ]);
    expect(ok.mismatch).toBe(false);
    const bad = sampleRatioMismatch([
      { arm: "a", count: 8_800, weight: 90 },
      { arm: "b", count: 1_200, weight: 10 },
    ]);
    expect(bad.mismatch).toBe(true);
  });

  it("flags any traffic to a zero-weight arm", () => {
    const result = sampleRatioMismatch([
      { arm: "a", count: 500, weight: 1 },
      { arm: "b", count: 500, weight: 1 },
      { arm: "old", count: 3, weight: 0 },
    ]);
    expect(result.mismatch).toBe(true);
    expect(result.chiSquare).toBeNull();
    expect(result.warning).toMatch(/zero-weight arm\(s\): old/);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it("does not flag while expected counts are too small for the chi-square approximation", () => {
    const result = sampleRatioMismatch([
      { arm: "a", count: 0, weight: 1 },
      { arm: "b", count: 6, weight: 1 },
    ]);
    expect(result.enoughData).toBe(false);
    expect(result.mismatch).toBe(false);
  });
});

describe("chiSquareGoodnessOfFit", () => {
  it("returns chi2 = 3.84, df = 1, p ≈ 0.05 for a borderline split", () => {
    const n = 10_000;
    const delta = Math.sqrt((3.84 * n) / 4);
    const gof = chiSquareGoodnessOfFit([n / 2 + delta, n / 2 - delta], [0.5, 0.5]);
    expect(gof.chiSquare).toBeCloseTo(3.84, 10);
    expect(gof.degreesOfFreedom).toBe(1);
    expect(gof.pValue).toBeCloseTo(0.05, 3);
  });
});
