import { describe, expect, it } from "vitest";
import { barChart, lineChart, niceTicks } from "./index.js";

describe("svg plots", () => {
  it("picks round ticks covering the range", () => {
    expect(niceTicks(0, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it("draws one path per series, skips non-finite points and escapes labels", () => {
    const svg = lineChart("TTFT <p50>", "rate", "ms", [
      {
        name: "a&b",
        points: [
          [1, 10],
          [2, NaN],
          [4, 30],
        ],
      },
      { name: "c", points: [[1, 5]] },
    ]);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(3);
    expect(svg).toContain("TTFT &lt;p50&gt;");
    expect(svg).toContain("a&amp;b");
  });

  it("draws one bar per finite value", () => {
    const svg = barChart(
      "goodput",
      "limit",
      "req/s",
      ["20", "40"],
      [
        { name: "x", values: [1, 2] },
        { name: "y", values: [3, NaN] },
      ],
    );
    expect(svg.match(/<rect x=/g)!.length).toBe(3 + 2); // 3 bars + 2 legend swatches
  });
});
