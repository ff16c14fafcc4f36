/**
 * Dependency-free SVG chart of an experiment over time: the estimated relative
 * difference (treatment vs control, %) with its always-valid confidence band,
 * a zero line, and labelled axes (x = requests).
 */
import type { ExperimentReport } from "./report.js";
import { escapeXml, niceTicks as sharedNiceTicks } from "../svg/index.js";

/** One point of the difference-over-time history. */
export interface DiffHistoryPoint {
  /** Requests so far (x axis). */
  requests: number;
  /** Estimated relative difference in percent; null when not yet available. */
  estimatePct: number | null;
  /** Lower CI bound in percent; null = unbounded. */
  lowerPct: number | null;
  /** Upper CI bound in percent; null = unbounded. */
  upperPct: number | null;
  /** Whether the test was significant at this point (drawn as a filled marker). */
  significant?: boolean;
}

/** Options of {@link renderReportSvg}. */
export interface RenderSvgOptions {
  /** Chart title (escaped). Default "Relative difference vs control". */
  title?: string;
  /** Y-axis label. Default "difference vs control (%)". */
  yLabel?: string;
  /** X-axis label. Default "requests". */
  xLabel?: string;
  /** Pixel width, default 720. */
  width?: number;
  /** Pixel height, default 360. */
  height?: number;
  /** Fixed y range in percent; by default fitted to the data (early, very wide bounds are clipped). */
  yDomain?: readonly [number, number];
}

/**
 * Extract one history point from a report (for a given metric and treatment arm).
 *
 * @param report a report from buildReport
 * @param metric metric name (default: the report's primary metric)
 * @param arm treatment arm (default: the first comparison's treatment)
 * @returns the point, or null if the report has no such comparison
 */
export function historyPointFromReport(report: ExperimentReport, metric?: string, arm?: string): DiffHistoryPoint | null {
  const m = metric ?? report.primaryMetric;
  const c = report.comparisons.find((x) => x.metric === m && x.kind === "mean" && (arm === undefined || x.treatment === arm));
  if (c === undefined) return null;
  return {
    requests: report.totalRequests,
    estimatePct: c.ready ? c.relativePct : null,
    lowerPct: c.ready ? c.relativeCI.lower : null,
    upperPct: c.ready ? c.relativeCI.upper : null,
    significant: c.significant,
  };
}

/** Axis ticks inside the chart's fixed [min, max] (about six). */
export function niceTicks(min: number, max: number, target = 6): number[] {
  return sharedNiceTicks(min, max, target, "within");
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
}

const f1 = (x: number): string => x.toFixed(1);

// Its own drawing, not lib/svg's lineChart: a confidence band, a zero line and a fixed y range; the axis helpers are shared.
/**
 * Render the relative-difference history as a standalone SVG document.
 *
 * @param history points in any order (sorted by `requests` internally)
 * @param options title, labels, size, optional fixed y range
 * @returns an SVG string (UTF-8 text, `image/svg+xml`)
 */
export function renderReportSvg(history: readonly DiffHistoryPoint[], options: RenderSvgOptions = {}): string {
  const width = options.width ?? 720;
  const height = options.height ?? 360;
  const title = escapeXml(options.title ?? "Relative difference vs control");
  const yLabel = escapeXml(options.yLabel ?? "difference vs control (%)");
  const xLabel = escapeXml(options.xLabel ?? "requests");
  const margin = { top: 58, right: 20, bottom: 50, left: 70 };
  const pw = width - margin.left - margin.right;
  const ph = height - margin.top - margin.bottom;

  const points = [...history]
    .filter((p) => Number.isFinite(p.requests) && p.estimatePct !== null && Number.isFinite(p.estimatePct))
    .sort((a, b) => a.requests - b.requests);

  const head =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="system-ui, sans-serif" font-size="12">` +
    `<title>${title}</title><rect width="${width}" height="${height}" fill="#fff"/>` +
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${title}</text>`;

  if (points.length === 0) {
    return `${head}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">no data yet</text></svg>`;
  }

  // X domain.
  const x0 = Math.min(0, points[0]?.requests ?? 0);
  const x1 = Math.max(x0 + 1, points[points.length - 1]?.requests ?? 1);

  // Y domain: estimates, zero, and bounds of the later half (early bounds can be huge).
  let yMin: number;
  let yMax: number;
  if (options.yDomain) {
    [yMin, yMax] = options.yDomain;
  } else {
    const vals: number[] = [0];
    const half = Math.floor(points.length / 2);
    points.forEach((p, i) => {
      vals.push(p.estimatePct as number);
      if (i >= half) {
        if (p.lowerPct !== null && Number.isFinite(p.lowerPct)) vals.push(p.lowerPct);
        if (p.upperPct !== null && Number.isFinite(p.upperPct)) vals.push(p.upperPct);
      }
    });
    yMin = Math.min(...vals);
    yMax = Math.max(...vals);
    const pad = (yMax - yMin) * 0.08 || 1;
    yMin -= pad;
    yMax += pad;
  }
  if (!(yMax > yMin)) yMax = yMin + 1;

  const sx = (x: number): number => margin.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => margin.top + (1 - (Math.min(Math.max(y, yMin), yMax) - yMin) / (yMax - yMin)) * ph;

  const parts: string[] = [head];
  parts.push(`<defs><clipPath id="plot"><rect x="${margin.left}" y="${margin.top}" width="${pw}" height="${ph}"/></clipPath></defs>`);

  // Grid and y ticks.
  for (const t of niceTicks(yMin, yMax)) {
    const y = f1(sy(t));
    parts.push(`<line x1="${margin.left}" x2="${margin.left + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}%</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    const x = f1(sx(t));
    parts.push(`<line x1="${x}" x2="${x}" y1="${margin.top + ph}" y2="${margin.top + ph + 5}" stroke="#333"/>`);
    parts.push(`<text x="${x}" y="${margin.top + ph + 18}" text-anchor="middle">${tickLabel(t)}</text>`);
  }

  // CI band (unbounded sides drawn to the plot edge), clipped to the plot area.
  const upper = points.map((p) => `${f1(sx(p.requests))},${f1(sy(p.upperPct ?? yMax))}`);
  const lower = points.map((p) => `${f1(sx(p.requests))},${f1(sy(p.lowerPct ?? yMin))}`).reverse();
  parts.push(`<polygon clip-path="url(#plot)" points="${[...upper, ...lower].join(" ")}" fill="#4c78a8" fill-opacity="0.22" stroke="none"/>`);

  // Zero line.
  if (yMin <= 0 && yMax >= 0) {
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + pw}" y1="${f1(sy(0))}" y2="${f1(sy(0))}" stroke="#c0392b" stroke-dasharray="5 4" stroke-width="1.2"/>`,
    );
  }

  // Estimate line and significance markers.
  const line = points.map((p) => `${f1(sx(p.requests))},${f1(sy(p.estimatePct as number))}`).join(" ");
  parts.push(`<polyline clip-path="url(#plot)" points="${line}" fill="none" stroke="#1f4e79" stroke-width="2"/>`);
  for (const p of points) {
    if (p.significant) {
      parts.push(`<circle clip-path="url(#plot)" cx="${f1(sx(p.requests))}" cy="${f1(sy(p.estimatePct as number))}" r="2.5" fill="#1f4e79"/>`);
    }
  }

  // Axes and labels.
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${margin.left + pw / 2}" y="${height - 10}" text-anchor="middle">${xLabel}</text>`);
  parts.push(`<text transform="translate(16 ${margin.top + ph / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);

  // Legend, between the title and the plot so it never hides data.
  const lx = margin.left;
  const ly = 34;
  parts.push(
    `<g font-size="11"><rect x="${lx}" y="${ly}" width="14" height="10" fill="#4c78a8" fill-opacity="0.22"/>` +
      `<text x="${lx + 20}" y="${ly + 9}">always-valid 95% CI</text>` +
      `<line x1="${lx + 150}" x2="${lx + 164}" y1="${ly + 5}" y2="${ly + 5}" stroke="#1f4e79" stroke-width="2"/>` +
      `<text x="${lx + 170}" y="${ly + 9}">estimate</text>` +
      `<line x1="${lx + 230}" x2="${lx + 244}" y1="${ly + 5}" y2="${ly + 5}" stroke="#c0392b" stroke-dasharray="5 4"/>` +
      `<text x="${lx + 250}" y="${ly + 9}">no difference</text></g>`,
  );
  parts.push("</svg>");
  return parts.join("");
}
