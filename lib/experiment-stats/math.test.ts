import { describe, expect, it } from "vitest";
import { binomialPmf, chiSquareSurvival, lnGamma, normalQuantile, regularizedGammaP, regularizedGammaQ, seededRandom } from "./math.js";

describe("chiSquareSurvival", () => {
  it("matches textbook critical values", () => {
    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(3.84, 1)).toBeCloseTo(0.05004, 5);
    expect(chiSquareSurvival(6.634896601021214, 1)).toBeCloseTo(0.01, 10);
    expect(chiSquareSurvival(10.827566170662733, 1)).toBeCloseTo(0.001, 10);
    expect(chiSquareSurvival(5.991464547107979, 2)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(11.070497693516351, 5)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(18.307038053275146, 10)).toBeCloseTo(0.05, 10);
  });

  it("is 1 at zero and keeps relative precision deep in the tail", () => {
    expect(chiSquareSurvival(0, 3)).toBe(1);
    // P(χ²₁ ≥ 100) = erfc(√50) ≈ 1.5239706e-23
    expect(chiSquareSurvival(100, 1) / 1.5239706e-23).toBeCloseTo(1, 5);
  });
});

describe("incomplete gamma", () => {
  it("reduces to the exponential distribution for a = 1 and P + Q = 1", () => {
    for (const x of [0.1, 1, 2.5, 10]) {
      expect(regularizedGammaP(1, x)).toBeCloseTo(1 - Math.exp(-x), 12);
      expect(regularizedGammaP(3.3, x) + regularizedGammaQ(3.3, x)).toBeCloseTo(1, 12);
    }
  });

  it("computes ln Γ at known points", () => {
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    expect(lnGamma(101)).toBeCloseTo(363.73937555556347, 9);
  });
});

describe("normalQuantile and binomialPmf", () => {
  it("returns the familiar z values", () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 8);
  });

  it("sums binomial probabilities to one", () => {
    let total = 0;
    for (let k = 0; k <= 40; k++) total += binomialPmf(k, 40, 0.3);
    expect(total).toBeCloseTo(1, 12);
  });
});

describe("seededRandom", () => {
  it("is reproducible and resumable from its state", () => {
    const a = seededRandom(1);
    const b = seededRandom(1);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
    const c = seededRandom(a.state());
    expect(c()).toBe(a());
  });
});
