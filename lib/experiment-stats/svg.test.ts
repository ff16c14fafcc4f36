import { describe, expect, it } from "vitest";
import type { ExperimentConfig } from "./assignment.js";
import { seededRandom } from "./math.js";
import { buildReport } from "./report.js";
import type { ExperimentReport } from "./report.js";
import { ExperimentStats } from "./stats.js";
import { historyPointFromReport, niceTicks, renderReportSvg } from "./svg.js";
import type { DiffHistoryPoint } from "./svg.js";

function history(): DiffHistoryPoint[] {
  const points: DiffHistoryPoint[] = [];
  for (let n = 200; n <= 4000; n += 200) {
    const half = 400 / Math.sqrt(n);
    points.push({ requests: n, estimatePct: -10 + 20 / Math.sqrt(n), lowerPct: -10 - half, upperPct: -10 + half, significant: -10 + half < 0 });
  }
  return points;
}

describe("renderReportSvg", () => {
  it("draws a CI band, an estimate line, a dashed zero line, axes and labels", () => {
    const svg = renderReportSvg(history(), { title: "vllm vs trtllm <ttft_ms>" });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.endsWith("</svg>")).toBe(true);
    expect(svg).toContain("<polygon");
    expect(svg).toContain("<polyline");
    expect(svg).toContain("stroke-dasharray");
    expect(svg).toContain(">requests</text>");
    expect(svg).toContain("difference vs control (%)");
    expect(svg).toContain("vllm vs trtllm &lt;ttft_ms&gt;");
    expect(svg).toContain(">0%</text>");
    expect(svg).toContain(">4000</text>");
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  });

  it("clips unbounded and early very wide bounds instead of producing invalid coordinates", () => {
    const points: DiffHistoryPoint[] = [
      { requests: 100, estimatePct: null, lowerPct: null, upperPct: null },
      { requests: 200, estimatePct: 30, lowerPct: null, upperPct: 900 },
      ...history(),
    ];
    const svg = renderReportSvg(points);
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
    const numbers = [...svg.matchAll(/points="([^"]+)"/g)].flatMap((m) => (m[1] ?? "").split(/[ ,]/).map(Number));
    expect(numbers.length).toBeGreaterThan(0);
    expect(numbers.every((x) => Number.isFinite(x) && x >= 0 && x <= 720)).toBe(true);
  });

  it("renders a placeholder when there is no data yet", () => {
    expect(renderReportSvg([])).toContain("no data yet");
  });

  it("plots a history collected from successive reports", () => {
    const experiment: ExperimentConfig = {
      name: "e",
      arms: [
        { backend: "trtllm", weight: 1 },
        { backend: "vllm", weight: 1 },
      ],
    };
    const stats = new ExperimentStats(256);
    const rng = seededRandom(1);
    const points: DiffHistoryPoint[] = [];
    let previous: ExperimentReport | null = null;
    for (let i = 1; i <= 3000; i++) {
      stats.record(i % 2 ? "trtllm" : "vllm", { metrics: { ttft_ms: (i % 2 ? 200 : 180) * Math.exp(0.5 * (rng() - 0.5)) } });
      if (i % 250 === 0) {
        const report: ExperimentReport = buildReport({ experiment, stats, previous });
        const point = historyPointFromReport(report);
        if (point) points.push(point);
        previous = report;
      }
    }
    expect(points).toHaveLength(12);
    expect(points.at(-1)?.significant).toBe(true);
    expect(points.at(-1)?.estimatePct).toBeCloseTo(-10, 0);
    const svg = renderReportSvg(points, { title: "ttft_ms: vllm vs trtllm" });
    expect(svg).toContain("<circle");
  });
});

describe("niceTicks", () => {
  it("picks round steps", () => {
    expect(niceTicks(0, 1000)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceTicks(-17, 4)).toEqual([-15, -10, -5, 0]);
  });
});
