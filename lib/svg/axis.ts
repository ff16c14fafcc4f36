/** What the SVG charts share (the benchmarks' plots, the experiment report's chart, the console's usage charts). */

/** Text made safe for SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[ch] ?? ch);
}

/**
 * Round axis ticks (steps of 1, 2, 2.5 or 5 × 10^k) for [lo, hi], about `count` of them: `cover` (the default)
 * extends to round values at or beyond both ends, for an axis that grows to its ticks; `within` keeps only the
 * ticks inside [lo, hi], for an axis whose range is fixed.
 */
export function niceTicks(lo: number, hi: number, count = 5, mode: "cover" | "within" = "cover"): number[] {
  if (!(hi > lo)) {
    if (mode === "within") return [lo];
    hi = lo + 1;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = mode === "cover" ? Math.floor(lo / step + 1e-9) : Math.ceil(lo / step - 1e-9);
  const last = mode === "cover" ? Math.ceil(hi / step - 1e-9) : Math.floor(hi / step + 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}
