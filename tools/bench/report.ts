/** Writes a scenario's results: JSON, a Markdown report and SVG plots. */
import { mkdir, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

/** What a scenario hands over to be written. */
export interface BenchReport {
  scenario: string;
  /** Everything measured, as plain data. */
  data: unknown;
  /** The Markdown body (tables and notes). */
  markdown: string;
  /** SVG files by name (without extension). */
  plots: Record<string, string>;
}

/** A Markdown table; numbers are formatted with {@link num}. */
export function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cell = (v: string | number) => (typeof v === "number" ? num(v) : v);
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)].join("\n");
}

/** A number with sensible precision for a table ("–" when missing). */
export function num(v: number): string {
  if (!Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** `b / a` as "1.23×" ("–" when undefined). */
export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0) return "–";
  return `${(b / a).toFixed(2)}×`;
}

/** Where and on what the run happened, for the report header. */
export function environment(): Record<string, string | number> {
  return {
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? "?",
    date: new Date().toISOString(),
  };
}

/** Writes result.json, report.md and *.svg into `<outRoot>/<scenario>-<timestamp>/`; returns the folder. */
export async function writeReport(outRoot: string, report: BenchReport): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const dir = path.resolve(outRoot, `${report.scenario}-${stamp}`);
  await mkdir(dir, { recursive: true });
  const env = environment();
  await writeFile(
    path.join(dir, "result.json"),
    `${JSON.stringify({ scenario: report.scenario, environment: env, ...(report.data as object) }, jsonReplacer, 2)}\n`,
  );
  const plotLinks = Object.keys(report.plots)
    .map((name) => `![${name}](${name}.svg)`)
    .join("\n\n");
  const header = `# bench ${report.scenario}\n\n${Object.entries(env)
    .map(([k, v]) => `${k}: ${v}`)
    .join(" · ")}\n\n`;
  await writeFile(path.join(dir, "report.md"), `${header}${report.markdown}\n${plotLinks ? `\n${plotLinks}\n` : ""}`);
  for (const [name, svg] of Object.entries(report.plots)) await writeFile(path.join(dir, `${name}.svg`), svg);
  return dir;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return value === Infinity ? "inf" : null;
  return value;
}
