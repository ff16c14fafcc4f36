import { describe, expect, it } from "vitest";
import { MIN_LOGPROB } from "../engine.js";
import { byteLevelBytes, logprobOf } from "./llama-logprobs.js";

describe("llama.cpp logprob helpers", () => {
  it("reads GPT-2 byte-level BPE pieces back to their bytes (Ġ a space, Ċ a newline, ä¸Ń 中)", () => {
    expect(Buffer.from(byteLevelBytes("Ġhello")!).toString()).toBe(" hello");
    expect(Buffer.from(byteLevelBytes("Ċ")!).toString()).toBe("\n");
    expect(Array.from(byteLevelBytes("ä¸Ń")!)).toEqual([0xe4, 0xb8, 0xad]);
    // A piece that ends inside a character keeps its partial bytes.
    expect(Array.from(byteLevelBytes("ä¸")!)).toEqual([0xe4, 0xb8]);
    expect(byteLevelBytes("中")).toBeUndefined();
  });

  it("takes natural logs, zero probability as MIN_LOGPROB", () => {
    expect(logprobOf(1)).toBe(0);
    expect(logprobOf(Math.E ** -2)).toBeCloseTo(-2, 12);
    expect(logprobOf(0)).toBe(MIN_LOGPROB);
    expect(logprobOf(1e-300 * 1e-300)).toBe(MIN_LOGPROB);
  });
});
