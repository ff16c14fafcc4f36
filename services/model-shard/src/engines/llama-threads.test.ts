import { describe, expect, it } from "vitest";
import { MIN_THREAD_GAIN, pickThreads, threadCandidates } from "./llama-threads.js";

describe("llama.cpp default threads", () => {
  it("tries one thread only on two cores, and leaves a core for the Node main thread elsewhere", () => {
    expect(threadCandidates(1)).toEqual([1]);
    expect(threadCandidates(2)).toEqual([1]);
    expect(threadCandidates(3)).toEqual([1, 2]);
    expect(threadCandidates(8)).toEqual([1, 2, 4, 7]);
    expect(threadCandidates(16)).toEqual([1, 2, 4, 8, 15]);
  });

  it("takes more threads only when they are clearly faster than fewer", () => {
    expect(
      pickThreads([
        { threads: 1, tokensPerSecond: 500 },
        { threads: 2, tokensPerSecond: 90 },
      ]),
    ).toBe(1);
    expect(
      pickThreads([
        { threads: 1, tokensPerSecond: 100 },
        { threads: 2, tokensPerSecond: 100 * MIN_THREAD_GAIN * 0.99 },
      ]),
    ).toBe(1);
    expect(
      pickThreads([
        { threads: 4, tokensPerSecond: 390 },
        { threads: 1, tokensPerSecond: 100 },
        { threads: 2, tokensPerSecond: 180 },
        { threads: 7, tokensPerSecond: 400 },
      ]),
    ).toBe(4);
  });
});
