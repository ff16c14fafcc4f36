import { describe, expect, it } from "vitest";
import { BATCH_THREADS_MIN_EMBEDDING, defaultBatchThreads, llamaServerArgs } from "./process.js";

const base = { binary: "llama-server", model: "m.gguf", slots: 4, threads: 1, contextSize: 8192 };
const flag = (args: string[], name: string): string | undefined => args[args.indexOf(name) + 1];

describe("llama-server's threads", () => {
  it("splits batches over every core for a model of a real size, and keeps a narrow model's batches on its decode threads", () => {
    expect(defaultBatchThreads(4096, 1, 8)).toBe(8);
    expect(defaultBatchThreads(BATCH_THREADS_MIN_EMBEDDING, 3, 2)).toBe(3);
    expect(defaultBatchThreads(64, 1, 8)).toBe(1);
  });

  it("passes generation and batch threads as -t and -tb, batch threads falling back to threads", () => {
    expect([flag(llamaServerArgs({ ...base, threadsBatch: 2 }, 1), "-t"), flag(llamaServerArgs({ ...base, threadsBatch: 2 }, 1), "-tb")]).toEqual(["1", "2"]);
    expect(flag(llamaServerArgs(base, 1), "-tb")).toBe("1");
  });
});
