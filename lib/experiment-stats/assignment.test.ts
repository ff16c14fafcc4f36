import { describe, expect, it } from "vitest";
import { assignArm, hashToUnit, shouldShadow, validateExperiment } from "./assignment.js";
import type { ExperimentConfig } from "./assignment.js";

const UNITS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

function experiment(weights: [number, number], extra: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return {
    name: "ttft-ab",
    arms: [
      { backend: "trtllm", weight: weights[0] },
      { backend: "vllm", weight: weights[1] },
    ],
    ...extra,
  };
}

function share(exp: ExperimentConfig, arm: string): number {
  return UNITS.filter((u) => assignArm(exp, u).arm === arm).length / UNITS.length;
}

describe("assignArm", () => {
  it("splits 10,000 units 50/50 within ±1.5 percentage points", () => {
    expect(Math.abs(share(experiment([50, 50]), "trtllm") - 0.5)).toBeLessThan(0.015);
  });

  it("splits 10,000 units 90/10 within ±1.5 percentage points", () => {
    expect(Math.abs(share(experiment([90, 10]), "vllm") - 0.1)).toBeLessThan(0.015);
  });

  it("splits three arms in proportion to weights that do not sum to 100", () => {
    const exp: ExperimentConfig = {
      name: "three",
      arms: [
        { backend: "a", weight: 1 },
        { backend: "b", weight: 2 },
        { backend: "c", weight: 1 },
      ],
    };
    expect(Math.abs(share(exp, "b") - 0.5)).toBeLessThan(0.015);
    expect(Math.abs(share(exp, "c") - 0.25)).toBeLessThan(0.015);
  });

  it("always gives the same unit the same arm, across calls and fresh config objects", () => {
    for (const unit of UNITS.slice(0, 500)) {
      const first = assignArm(experiment([50, 50]), unit);
      expect(assignArm(experiment([50, 50]), unit)).toEqual(first);
      expect(assignArm(JSON.parse(JSON.stringify(experiment([50, 50]))) as ExperimentConfig, unit)).toEqual(first);
    }
  });

  it("is independent of arm order (arms are keyed by backend) and reports the arm index", () => {
    const forward = experiment([30, 70]);
    const reversed: ExperimentConfig = { ...forward, arms: [...forward.arms].reverse() };
    for (const unit of UNITS.slice(0, 1000)) {
      const a = assignArm(forward, unit);
      const b = assignArm(reversed, unit);
      expect(b.arm).toBe(a.arm);
      expect(reversed.arms[b.index]?.backend).toBe(b.arm);
    }
  });

  it("moves only units to the arm that gained weight, about 10 % of them, on 50/50 → 60/40", () => {
    const before = UNITS.map((u) => assignArm(experiment([50, 50]), u).arm);
    const after = UNITS.map((u) => assignArm(experiment([60, 40]), u).arm);
    let moved = 0;
    let movedAway = 0;
    before.forEach((arm, i) => {
      if (arm === after[i]) return;
      moved += 1;
      if (after[i] !== "trtllm") movedAway += 1;
    });
    expect(movedAway).toBe(0);
    expect(Math.abs(moved / UNITS.length - 0.1)).toBeLessThan(0.015);
  });

  it("moves units only away from an arm whose weight is lowered to zero", () => {
    const exp3 = (w: number): ExperimentConfig => ({
      name: "drain",
      arms: [
        { backend: "a", weight: 1 },
        { backend: "b", weight: 1 },
        { backend: "c", weight: w },
      ],
    });
    for (const unit of UNITS.slice(0, 2000)) {
      const before = assignArm(exp3(1), unit).arm;
      const after = assignArm(exp3(0), unit).arm;
      expect(after).not.toBe("c");
      if (before !== "c") expect(after).toBe(before);
    }
  });

  it("reshuffles about half of the units when the salt changes", () => {
    const a = UNITS.map((u) => assignArm(experiment([50, 50]), u).arm);
    const b = UNITS.map((u) => assignArm(experiment([50, 50], { salt: "round-2" }), u).arm);
    const changed = a.filter((arm, i) => arm !== b[i]).length / UNITS.length;
    expect(Math.abs(changed - 0.5)).toBeLessThan(0.02);
  });

  it("rejects configurations that cannot be assigned", () => {
    expect(() => assignArm({ name: "x", arms: [] }, "u")).toThrow(/no arms/);
    expect(() => validateExperiment({ name: "x", arms: [{ backend: "a", weight: 0 }] })).toThrow(/positive weight/);
    expect(() => validateExperiment({ name: "x", arms: [{ backend: "a", weight: -1 }] })).toThrow(/invalid weight/);
    expect(() =>
      validateExperiment({
        name: "x",
        arms: [
          { backend: "a", weight: 1 },
          { backend: "a", weight: 1 },
        ],
      }),
    ).toThrow(/twice/);
  });
});

describe("hashToUnit", () => {
  it("maps to the open interval (0, 1) with a roughly uniform mean, and separates its parts", () => {
    const values = UNITS.map((u) => hashToUnit("t", u));
    expect(values.every((v) => v > 0 && v < 1)).toBe(true);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    expect(hashToUnit("a", "bc")).not.toBe(hashToUnit("ab", "c"));
  });
});

describe("shouldShadow", () => {
  it("shadows about the requested percentage, deterministically", () => {
    const picked = UNITS.filter((u) => shouldShadow("shadow-vllm", u, 10));
    expect(Math.abs(picked.length / UNITS.length - 0.1)).toBeLessThan(0.015);
    expect(UNITS.filter((u) => shouldShadow("shadow-vllm", u, 10))).toEqual(picked);
  });

  it("only adds ids when the percentage grows", () => {
    for (const u of UNITS.slice(0, 3000)) {
      if (shouldShadow("s", u, 5)) expect(shouldShadow("s", u, 20)).toBe(true);
    }
  });

  it("handles the 0 %, 100 % and out-of-range edges", () => {
    expect(UNITS.slice(0, 100).some((u) => shouldShadow("s", u, 0))).toBe(false);
    expect(UNITS.slice(0, 100).every((u) => shouldShadow("s", u, 100))).toBe(true);
    expect(shouldShadow("s", "u", Number.NaN)).toBe(false);
    expect(shouldShadow("s", "u", 150)).toBe(true);
    expect(shouldShadow("s", "u", -5)).toBe(false);
  });
});
