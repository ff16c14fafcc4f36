import { describe, expect, it } from "vitest";
import type { ExperimentConfig } from "./assignment.js";
import { seededRandom } from "./math.js";
import type { SeededRandom } from "./math.js";
import { buildReport, formatReportText } from "./report.js";
import type { ExperimentReport } from "./report.js";
import { ArmStats, ExperimentStats } from "./stats.js";

function lognormal(rng: SeededRandom, median: number, sigma: number): number {
  const u1 = 1 - rng();
  const u2 = rng();
  return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
}

const EXPERIMENT: ExperimentConfig = {
  name: "llama-70b-backend",
  arms: [
    { backend: "trtllm", weight: 50 },
    { backend: "vllm", weight: 50 },
  ],
};

/** Simulate `perArm` requests per arm; `ttftFactor` scales vllm's TTFT. */
function simulate(perArm: number, ttftFactor: number, seed: number, stats = new ExperimentStats(1024)): ExperimentStats {
  const rng = seededRandom(seed);
  for (let i = 0; i < perArm; i++) {
    for (const arm of ["trtllm", "vllm"]) {
      const factor = arm === "vllm" ? ttftFactor : 1;
      const failed = rng() < 0.01;
      stats.record(arm, {
        metrics: failed ? {} : { ttft_ms: lognormal(rng, 180 * factor, 0.5), tpot_ms: lognormal(rng, 22, 0.2), e2e_ms: lognormal(rng, 3000, 0.4) },
        flags: failed ? {} : { thumbs_up: rng() < 0.7 },
        error: failed ? (rng() < 0.5 ? "timeout" : "http_503") : null,
      });
      if (!failed && i % 5 === 0) stats.arm(arm).recordMetric("feedback_score", 1 + Math.floor(rng() * 5));
    }
  }
  return stats;
}

function jsonRoundTrip(report: ExperimentReport): unknown {
  return JSON.parse(JSON.stringify(report));
}

describe("buildReport", () => {
  it("reports a significant TTFT reduction with a relative always-valid CI in the verdict", () => {
    const report = buildReport({ experiment: EXPERIMENT, stats: simulate(2000, 0.88, 1) });
    expect(report.verdict).toMatch(/^vllm ttft_ms \d+\.\d % lower than trtllm, 95 % CI \[\d+\.\d %, \d+\.\d %\]$/);
    const ttft = report.comparisons.find((c) => c.metric === "ttft_ms");
    expect(ttft?.significant).toBe(true);
    expect(ttft?.relativeCI.lower).toBeLessThan(-12 + 5);
    expect(ttft?.relativeCI.upper).toBeGreaterThan(-12 - 5);
  });

  it("says there is no significant difference in an A/A comparison, with the per-arm count", () => {
    const stats = new ExperimentStats(512);
    const rng = seededRandom(2);
    for (let i = 0; i < 812; i++) {
      for (const arm of ["trtllm", "vllm"]) stats.record(arm, { metrics: { ttft_ms: lognormal(rng, 180, 0.5) } });
    }
    const report = buildReport({ experiment: EXPERIMENT, stats });
    expect(report.verdict).toBe("no significant difference in ttft_ms after 812 requests per arm");
  });

  it("includes per-arm counts, mean CIs, percentile CIs for latency and feedback metrics, and error counts by type", () => {
    const report = buildReport({ experiment: EXPERIMENT, stats: simulate(1500, 1, 3) });
    expect(report.control).toBe("trtllm");
    expect(report.totalRequests).toBe(3000);
    for (const arm of report.arms) {
      expect(arm.requests).toBe(1500);
      for (const metric of ["ttft_ms", "tpot_ms", "e2e_ms", "feedback_score"]) {
        const m = arm.metrics[metric];
        expect(m, metric).toBeDefined();
        expect(m?.meanCI.lower).toBeLessThan(m?.mean ?? 0);
        for (const label of ["p50", "p90", "p99"]) {
          const p = m?.percentiles[label];
          expect(p?.value, `${metric} ${label}`).not.toBeNull();
          expect(p?.lower ?? -Infinity).toBeLessThanOrEqual(p?.value ?? 0);
          expect(p?.upper ?? Infinity).toBeGreaterThanOrEqual(p?.value ?? 0);
        }
      }
      expect(arm.errors.total).toBe(Object.values(arm.errors.byType).reduce((a, b) => a + b, 0));
      expect(Object.keys(arm.errors.byType).sort()).toEqual(["http_503", "timeout"]);
      expect(arm.proportions["thumbs_up"]?.rate).toBeGreaterThan(0.6);
    }
    const kinds = report.comparisons.map((c) => `${c.kind}:${c.metric}`).sort();
    expect(kinds).toEqual(["mean:e2e_ms", "mean:feedback_score", "mean:tpot_ms", "mean:ttft_ms", "proportion:error_rate", "proportion:thumbs_up"].sort());
    expect(report.comparisons.every((c) => c.control === "trtllm" && c.treatment === "vllm")).toBe(true);
  });

  it("is plain JSON: it survives JSON.stringify/parse unchanged", () => {
    const report = buildReport({ experiment: EXPERIMENT, stats: simulate(300, 0.9, 4), generatedAt: "2025-01-01T00:00:00Z" });
    expect(jsonRoundTrip(report)).toEqual(report);
    const empty = buildReport({ experiment: EXPERIMENT, stats: new ExperimentStats() });
    expect(jsonRoundTrip(empty)).toEqual(empty);
    expect(empty.verdict).toBe("no ttft_ms data yet");
  });

  it("puts a loud SRM warning first and prefixes the verdict when the split is 45/55 under 50/50", () => {
    const stats = new ExperimentStats(256);
    const rng = seededRandom(5);
    for (let i = 0; i < 10_000; i++) {
      stats.record(i % 20 < 9 ? "trtllm" : "vllm", { metrics: { ttft_ms: lognormal(rng, 180, 0.5) } });
    }
    const report = buildReport({ experiment: EXPERIMENT, stats });
    expect(report.srm.mismatch).toBe(true);
    expect(report.warnings[0]).toMatch(/^!!! SAMPLE RATIO MISMATCH/);
    expect(report.verdict).toMatch(/^SAMPLE RATIO MISMATCH, results unreliable: /);
    expect(formatReportText(report)).toContain("SAMPLE RATIO MISMATCH");
  });

  it("says when there is not enough data yet", () => {
    const report = buildReport({ experiment: EXPERIMENT, stats: simulate(40, 1, 6) });
    expect(report.verdict).toMatch(/^not enough ttft_ms data yet \(\d+ trtllm \/ \d+ vllm, need 100 per arm\)$/);
    expect(report.srm.mismatch).toBe(false);
  });

  it("chains with the previous report: the p-value never increases and the CI only shrinks", () => {
    const stats = new ExperimentStats(256);
    let previous: ExperimentReport | null = null;
    for (let step = 0; step < 10; step++) {
      simulate(200, 0.95, 100 + step, stats);
      const report: ExperimentReport = buildReport({ experiment: EXPERIMENT, stats, previous });
      const now = report.comparisons.find((c) => c.metric === "ttft_ms");
      const before = previous?.comparisons.find((c) => c.metric === "ttft_ms");
      if (now?.ready && before?.ready) {
        expect(now.pValue).toBeLessThanOrEqual(before.pValue);
        expect(now.differenceCI.lower ?? 0).toBeGreaterThanOrEqual(before.differenceCI.lower ?? 0);
        expect(now.differenceCI.upper ?? 0).toBeLessThanOrEqual(before.differenceCI.upper ?? 0);
      }
      previous = jsonRoundTrip(report) as ExperimentReport;
    }
  });

  it("compares every treatment arm with the first (control) arm and lists unconfigured arms", () => {
    const experiment: ExperimentConfig = {
      name: "three-way",
      arms: [
        { backend: "trtllm", weight: 1 },
        { backend: "vllm", weight: 1 },
        { backend: "sglang", weight: 1 },
      ],
    };
    const stats = new Map<string, ArmStats>();
    const rng = seededRandom(9);
    for (const [name, median] of [
      ["trtllm", 200],
      ["vllm", 200],
      ["sglang", 150],
      ["stray", 100],
    ] as const) {
      const arm = new ArmStats(name, 256);
      for (let i = 0; i < (name === "stray" ? 10 : 1500); i++) arm.record({ metrics: { ttft_ms: lognormal(rng, median, 0.4) } });
      stats.set(name, arm);
    }
    const report = buildReport({ experiment, stats });
    const ttft = report.comparisons.filter((c) => c.metric === "ttft_ms");
    expect(ttft.map((c) => c.treatment)).toEqual(["vllm", "sglang"]);
    expect(report.verdict).toMatch(/no significant difference in ttft_ms after 1500 requests per arm; sglang ttft_ms \d+\.\d % lower than trtllm/);
    expect(report.arms.find((a) => a.arm === "stray")?.role).toBe("unconfigured");
    expect(report.srm.mismatch).toBe(true);
    expect(report.warnings.some((w) => w.includes("stray"))).toBe(true);
  });
});

describe("formatReportText", () => {
  it("renders arms, metric tables, comparisons and the verdict for a terminal", () => {
    const report = buildReport({ experiment: EXPERIMENT, stats: simulate(1000, 0.88, 7), generatedAt: "2025-01-01T00:00:00Z" });
    const text = formatReportText(report);
    expect(text).toContain('Experiment "llama-70b-backend": 2000 requests, control trtllm');
    for (const s of ["Arms", "ttft_ms (mean and percentiles", "tpot_ms", "e2e_ms", "p99", "Rates", "thumbs_up", "Comparisons vs trtllm", "timeout="]) {
      expect(text).toContain(s);
    }
    expect(text.trimEnd().split("\n").at(-1)).toBe(`Verdict: ${report.verdict}`);
  });
});
