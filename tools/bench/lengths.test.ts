import { describe, expect, it } from "vitest";
import { approximateTokenizer, drawLengths, shapePrompt } from "./lengths.js";
import type { BenchTokenizer } from "./lengths.js";
import { seededRandom } from "./random.js";

/** A toy sub-word tokenizer: each run of up to 3 letters is a token, each other non-space char is one. */
const subword: BenchTokenizer = {
  name: "toy",
  exact: true,
  count: (text) => (text.match(/[a-z]{1,3}|[^\sa-z]/gi) ?? []).length,
};

describe("token-length shaping", () => {
  it("draws lengths uniformly within the range around the mean", () => {
    const xs = drawLengths(10_000, 700, 0.1, seededRandom(3));
    expect(Math.min(...xs)).toBe(630);
    expect(Math.max(...xs)).toBe(770);
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(m).toBeGreaterThan(695);
    expect(m).toBeLessThan(705);
  });

  it("gives fixed lengths with a zero range and never below one token", () => {
    expect(new Set(drawLengths(50, 550, 0, seededRandom(3)))).toEqual(new Set([550]));
    expect(Math.min(...drawLengths(50, 1, 0.5, seededRandom(3)))).toBe(1);
    expect(() => drawLengths(1, 10, 1, seededRandom(3))).toThrow(RangeError);
  });

  it("builds prompts of exactly the target token count under a sub-word tokenizer", () => {
    const rng = seededRandom(5);
    for (const target of [1, 2, 7, 64, 700, 1_500]) {
      const p = shapePrompt(subword, target, rng);
      expect(p.tokens).toBe(target);
      expect(subword.count(p.text)).toBe(target);
    }
  });

  it("builds prompts of exactly the target under the word estimate", () => {
    const p = shapePrompt(approximateTokenizer, 700, seededRandom(1));
    expect(approximateTokenizer.count(p.text)).toBe(700);
  });

  it("gives the same prompts for the same seed and different ones otherwise", () => {
    expect(shapePrompt(subword, 100, seededRandom(9)).text).toBe(shapePrompt(subword, 100, seededRandom(9)).text);
    expect(shapePrompt(subword, 100, seededRandom(9)).text).not.toBe(shapePrompt(subword, 100, seededRandom(10)).text);
  });
});
