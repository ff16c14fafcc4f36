import { describe, expect, it } from "vitest";
import { usageChartSvg, windowDays, windowStartMs } from "./usage-charts.js";

const NOW = Date.parse("2026-12-03T15:00:00Z");
const row = (group: string, requests: number, prompt: number, completion: number) => ({
  group,
  requests,
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

describe("console usage charts", () => {
  it("covers the last 30 UTC days, today included", () => {
    const days = windowDays(NOW);
    expect(days).toHaveLength(30);
    expect(days[0]).toBe("2026-11-04");
    expect(days[29]).toBe("2026-12-03");
    expect(new Date(windowStartMs(NOW)).toISOString()).toBe("2026-11-04T00:00:00.000Z");
  });

  it("draws one bar per day with traffic and per model, with the numbers as tooltips", () => {
    const perDay = usageChartSvg("day", "requests", [row("2026-12-01", 7, 10, 5), row("2026-12-03", 3, 1, 1)], NOW);
    expect(perDay).toMatch(/^<svg /);
    expect(perDay.match(/<title>requests: 7<\/title>/g)).toHaveLength(1);
    expect(perDay.match(/<title>requests: 3<\/title>/g)).toHaveLength(1);
    expect(perDay).toContain(">12-03<");
    const perModel = usageChartSvg("model", "tokens", [row("<tiny>", 1, 20, 30)], NOW);
    expect(perModel).toContain("&lt;tiny&gt;");
    expect(perModel).toContain("<title>prompt tokens: 20</title>");
    expect(perModel).toContain("<title>completion tokens: 30</title>");
  });
});
