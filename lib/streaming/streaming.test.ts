import { describe, expect, it } from "vitest";
import { coalesce } from "./coalesce.js";
import { mergeRuns } from "./merge-runs.js";

async function* source(items: Array<number | "pause">): AsyncGenerator<number, string> {
  for (const item of items) {
    if (item === "pause") await new Promise((r) => setTimeout(r, 5));
    else yield item;
  }
  return "done";
}

async function batches(items: Array<number | "pause">): Promise<{ batches: number[][]; result: string }> {
  const out: number[][] = [];
  const gen = coalesce(source(items));
  for (;;) {
    const next = await gen.next();
    if (next.done) return { batches: out, result: next.value };
    out.push(next.value);
  }
}

describe("coalesce", () => {
  it("batches what is ready at once and keeps what comes later apart, then returns the source's value", async () => {
    expect(await batches([1, 2, 3, "pause", 4, "pause", 5, 6])).toEqual({ batches: [[1, 2, 3], [4], [5, 6]], result: "done" });
  });

  it("hands out what came before a failure, then the failure", async () => {
    async function* failing(): AsyncGenerator<number, void> {
      yield 1;
      yield 2;
      throw new Error("shard gone");
    }
    const gen = coalesce(failing());
    expect(await gen.next()).toEqual({ done: false, value: [1, 2] });
    await expect(gen.next()).rejects.toThrow("shard gone");
  });

  it("ends the source when the consumer stops early", async () => {
    let ended = false;
    async function* endless(): AsyncGenerator<number, void> {
      try {
        for (let i = 0; ; i++) {
          await new Promise((r) => setTimeout(r, 1));
          yield i;
        }
      } finally {
        ended = true;
      }
    }
    const gen = coalesce(endless());
    await gen.next();
    await gen.return(undefined);
    expect(ended).toBe(true);
  });
});

describe("mergeRuns", () => {
  const even = (n: number) => n % 2 === 0;
  const sum = (run: readonly number[]) => run.reduce((a, b) => a + b, 0);

  it("folds each run of consecutive mergeable items and keeps the others in place", () => {
    expect(mergeRuns([2, 4, 1, 6, 3, 8, 10, 12], even, sum)).toEqual([6, 1, 6, 3, 30]);
  });

  it("leaves a run of one as it is (merge is not called) and an empty batch empty", () => {
    expect(mergeRuns([1, 2, 3], even, () => -1)).toEqual([1, 2, 3]);
    expect(mergeRuns([], even, sum)).toEqual([]);
  });
});
