/** Small dependency-free SVG charts: line charts and grouped bar charts. */
import { escapeXml, niceTicks } from "./axis.js";

/** One line of a line chart. */
export interface Series {
  name: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

const W = 640;
const H = 380;
const M = { left: 70, right: 20, top: 40, bottom: 80 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

const esc = escapeXml;

function fmt(v: number): string {
  if (Math.abs(v) >= 10_000) return `${(v / 1000).toFixed(0)}k`;
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));
}

function frame(title: string, xLabel: string, yLabel: string, body: string, legend: string[]): string {
  const legendItems = legend
    .map((name, i) => {
      const x = M.left + (i % 3) * 190;
      const y = H - 30 + Math.floor(i / 3) * 16;
      return `<rect x="${x}" y="${y - 9}" width="12" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 16}" y="${y}" font-size="11">${esc(name)}</text>`;
    })
    .join("");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + Math.floor(Math.max(0, legend.length - 1) / 3) * 16}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    body,
    `<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 48}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + (H - M.top - M.bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`,
    legendItems,
    `</svg>`,
  ].join("\n");
}

function axes(xTicks: Array<[number, string]>, yTicks: number[], sy: (v: number) => number): string {
  const parts = [
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#333"/>`,
  ];
  for (const t of yTicks) {
    const y = sy(t);
    parts.push(
      `<line x1="${M.left}" y1="${y}" x2="${W - M.right}" y2="${y}" stroke="#eee"/>`,
      `<text x="${M.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`,
    );
  }
  for (const [x, label] of xTicks) parts.push(`<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${esc(label)}</text>`);
  return parts.join("\n");
}

/** A line chart of several series on shared numeric axes (non-finite points are skipped). */
export function lineChart(title: string, xLabel: string, yLabel: string, series: readonly Series[]): string {
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xTicks = niceTicks(Math.min(0, ...xs), xs.length ? Math.max(...xs) : 1);
  const yTicks = niceTicks(0, ys.length ? Math.max(...ys) : 1);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const sx = (v: number) => M.left + ((v - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const sy = (v: number) => H - M.bottom - ((v - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const lines = series.map((s, i) => {
    const color = COLORS[i % COLORS.length];
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const d = ok.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    const dots = ok.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`).join("");
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>${dots}`;
  });
  return frame(
    title,
    xLabel,
    yLabel,
    [
      axes(
        xTicks.map((t) => [sx(t), fmt(t)]),
        yTicks,
        sy,
      ),
      ...lines,
    ].join("\n"),
    series.map((s) => s.name),
  );
}

/** A grouped bar chart: one group per category, one bar per series. */
export function barChart(
  title: string,
  xLabel: string,
  yLabel: string,
  categories: readonly string[],
  series: ReadonlyArray<{ name: string; values: readonly number[] }>,
): string {
  const ys = series.flatMap((s) => s.values).filter(Number.isFinite);
  const yTicks = niceTicks(0, ys.length ? Math.max(...ys) : 1);
  const y1 = yTicks[yTicks.length - 1];
  const sy = (v: number) => H - M.bottom - (v / (y1 || 1)) * (H - M.top - M.bottom);
  const groupW = (W - M.left - M.right) / Math.max(1, categories.length);
  const barW = (groupW * 0.8) / Math.max(1, series.length);
  const bars: string[] = [];
  categories.forEach((_, c) => {
    series.forEach((s, i) => {
      const v = s.values[c] ?? NaN;
      if (!Number.isFinite(v)) return;
      const x = M.left + c * groupW + groupW * 0.1 + i * barW;
      bars.push(
        `<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(H - M.bottom - sy(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(`${s.name}: ${fmt(v)}`)}</title></rect>`,
      );
    });
  });
  const xTicks = categories.map((c, i): [number, string] => [M.left + i * groupW + groupW / 2, c]);
  return frame(
    title,
    xLabel,
    yLabel,
    [axes(xTicks, yTicks, sy), ...bars].join("\n"),
    series.map((s) => s.name),
  );
}
