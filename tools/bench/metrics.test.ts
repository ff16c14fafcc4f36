import { describe, expect, it } from "vitest";
import { aggregate, decodeSpeed, goodput, maxThroughputUnderLimits, tpotMs } from "./metrics.js";
import type { RequestResult, SweepPoint } from "./metrics.js";

function req(ttftMs: number, e2eMs: number, outputTokens: number, ok = true): RequestResult {
  return { ok, startMs: 0, ttftMs, e2eMs, outputTokens, promptTokens: 10, itlMs: [], error: ok ? undefined : "boom" };
}

describe("request metrics", () => {
  it("computes TPOT as (e2e - TTFT) / (output tokens - 1) and decode speed as its inverse", () => {
    const r = req(100, 1_100, 51);
    expect(tpotMs(r)).toBe(20);
    expect(decodeSpeed(r)).toBe(50);
  });

  it("has no TPOT for single-token or failed requests", () => {
    expect(tpotMs(req(100, 100, 1))).toBeUndefined();
    expect(decodeSpeed(req(100, 1_100, 51, false))).toBeUndefined();
  });
});

describe("goodput", () => {
  // Decode speeds: 100, 50, 25, 10 tok/s; one failed; one single-token.
  const results = [req(0, 1_000, 101), req(0, 1_000, 51), req(0, 1_000, 26), req(0, 1_000, 11), req(0, 10, 1), req(0, 10, 100, false)];

  it("counts requests per second whose decode speed meets each limit", () => {
    const ok = results.filter((r) => r.ok);
    expect(goodput(ok, 2, [20, 40, 60, 80])).toEqual({ "20": 1.5, "40": 1, "60": 0.5, "80": 0.5 });
  });

  it("aggregates throughput over successful requests only", () => {
    const m = aggregate(results, 2);
    expect(m.completed).toBe(5);
    expect(m.failed).toBe(1);
    expect(m.requestThroughput).toBe(2.5);
    expect(m.outputThroughput).toBe((101 + 51 + 26 + 11 + 1) / 2);
    expect(m.decodeSpeed.n).toBe(4);
    expect(m.decodeSpeed.p50).toBe(37.5);
    expect(m.goodput["40"]).toBe(1);
    expect(m.errors).toEqual(["boom"]);
  });

  it("finds the best throughput whose median decode speed stays above each limit", () => {
    const point = (label: string, speed: number, outputThroughput: number): SweepPoint => ({
      label,
      rate: Number(label),
      metrics: {
        ...aggregate([req(0, 1_000, 11)], 1),
        decodeSpeed: { n: 1, mean: speed, p50: speed, p90: speed, p99: speed, min: speed, max: speed },
        decodeSpeedP10: speed / 2,
        outputThroughput,
        requestThroughput: outputThroughput / 100,
      },
    });
    const points = [point("1", 90, 100), point("2", 70, 180), point("4", 45, 300), point("8", 15, 400)];
    const best = maxThroughputUnderLimits(points, [20, 40, 60, 80, 100]);
    expect(best.map((b) => b.label)).toEqual(["4", "4", "2", "1", null]);
    expect(best[0].outputThroughput).toBe(300);
    expect(best[4].outputThroughput).toBe(0);
    // Judged on the slow streams (p10 = half the median here), limits bite earlier.
    expect(maxThroughputUnderLimits(points, [30, 40], 10).map((b) => b.label)).toEqual(["2", "1"]);
  });
});
