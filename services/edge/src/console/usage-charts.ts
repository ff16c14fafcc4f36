import { barChart } from "../../../../lib/svg/index.js";

/** How far back the console's usage page looks. */
export const USAGE_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;
/** Every how many days the day axis is labelled (30 labels do not fit). */
const DAY_LABEL_EVERY = 5;
/** Most models drawn; the rest stay in the table. */
const MAX_MODEL_BARS = 12;

/** One usage aggregate as the admin API returns it. */
export interface UsageRowJson {
  group: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What a chart shows. */
export type ChartMetric = "requests" | "tokens";

/** Unix milliseconds of the first day (UTC midnight) in the window ending today. */
export function windowStartMs(nowMs: number): number {
  return Math.floor(nowMs / DAY_MS) * DAY_MS - (USAGE_WINDOW_DAYS - 1) * DAY_MS;
}

/** The window's days, oldest first, as the usage API names them (YYYY-MM-DD). */
export function windowDays(nowMs: number): string[] {
  const start = windowStartMs(nowMs);
  return Array.from({ length: USAGE_WINDOW_DAYS }, (_, i) => new Date(start + i * DAY_MS).toISOString().slice(0, 10));
}

/**
 * A usage bar chart as SVG, drawn by the project's one bar-chart plotter
 * (lib/svg): per day over the window (days without
 * traffic as zero) or per model.
 */
export function usageChartSvg(by: "day" | "model", metric: ChartMetric, rows: readonly UsageRowJson[], nowMs: number): string {
  const byGroup = new Map(rows.map((r) => [r.group, r]));
  const groups =
    by === "day"
      ? windowDays(nowMs)
      : [...rows]
          .sort((a, b) => b.total_tokens - a.total_tokens)
          .slice(0, MAX_MODEL_BARS)
          .map((r) => r.group);
  const labels = by === "day" ? groups.map((d, i) => (i % DAY_LABEL_EVERY === 0 || i === groups.length - 1 ? d.slice(5) : "")) : groups;
  const value = (g: string, pick: (r: UsageRowJson) => number) => {
    const row = byGroup.get(g);
    return row ? pick(row) : 0;
  };
  const series =
    metric === "requests"
      ? [{ name: "requests", values: groups.map((g) => value(g, (r) => r.requests)) }]
      : [
          { name: "prompt tokens", values: groups.map((g) => value(g, (r) => r.prompt_tokens)) },
          { name: "completion tokens", values: groups.map((g) => value(g, (r) => r.completion_tokens)) },
        ];
  const title = `${metric === "requests" ? "Requests" : "Tokens"} per ${by}${by === "day" ? `, last ${USAGE_WINDOW_DAYS} days` : ` (last ${USAGE_WINDOW_DAYS} days)`}`;
  return barChart(title, by === "day" ? "day (UTC, MM-DD)" : "model", metric, labels, series);
}
