/**
 * Experiment report: per-arm summaries, always-valid comparisons of every arm
 * against the control (first configured arm), the sample-ratio-mismatch check and
 * a one-line verdict. {@link buildReport} returns a plain JSON-serializable object
 * (no Infinity, no Maps); {@link formatReportText} renders it for a terminal.
 */
import type { ExperimentConfig } from "./assignment.js";
import { ArmStats, DEFAULT_CONFIDENCE, DEFAULT_PERCENTILES, ERROR_RATE_METRIC, ExperimentStats } from "./stats.js";
import type { ConfidenceInterval, MetricSummary, ProportionSummary, SampleSummary } from "./stats.js";
import { DEFAULT_ALPHA, DEFAULT_MIN_SAMPLES_PER_ARM, accumulateSequential, mixtureSequentialTest } from "./sequential.js";
import type { SequentialOptions, SequentialResult } from "./sequential.js";
import { SRM_P_VALUE_THRESHOLD, sampleRatioMismatch } from "./srm.js";
import type { SrmResult } from "./srm.js";

/** Latency metrics the router records for every request. */
export const LATENCY_METRICS: readonly string[] = ["ttft_ms", "tpot_ms", "e2e_ms"];
/** Metric the top-level verdict is about unless `primaryMetric` says otherwise. */
export const DEFAULT_PRIMARY_METRIC = "ttft_ms";

/** Per-arm statistics in any of the shapes the router may hold them. */
export type ArmStatsSource = ExperimentStats | ReadonlyMap<string, ArmStats> | Readonly<Record<string, ArmStats>>;

/** Input of {@link buildReport}. */
export interface BuildReportInput {
  /** Experiment definition; `arms[0]` is the control. */
  experiment: ExperimentConfig;
  /** Accumulated per-arm statistics. */
  stats: ArmStatsSource;
  /** Metric for the top-level verdict (default `ttft_ms`). */
  primaryMetric?: string;
  /** Sequential-test tuning (alpha, planned and minimum samples per arm). */
  sequential?: SequentialOptions;
  /** Percentile levels to report (default p50, p90, p99). */
  percentiles?: readonly number[];
  /**
   * The previous report of the same experiment, if any: p-values become running
   * minima and CIs running intersections (still always valid, and monotone).
   */
  previous?: ExperimentReport | null;
  /** Timestamp to stamp on the report (the library reads no clock). */
  generatedAt?: string | null;
  /** SRM p-value threshold (default {@link SRM_P_VALUE_THRESHOLD}). */
  srmThreshold?: number;
}

/** One arm in the report. */
export interface ArmReport {
  arm: string;
  role: "control" | "treatment" | "unconfigured";
  weight: number;
  /** Configured share of traffic, 0–1. */
  expectedShare: number;
  /** Observed share of requests, 0–1. */
  observedShare: number;
  requests: number;
  errors: { total: number; rate: number | null; rateCI: ConfidenceInterval; byType: Record<string, number> };
  /** Numeric metrics: mean with 95 % CI, percentiles with 95 % CIs. */
  metrics: Record<string, MetricSummary>;
  /** Boolean metrics (including `error_rate`): rate with Wilson 95 % CI. */
  proportions: Record<string, ProportionSummary>;
}

/** Always-valid comparison of one treatment arm against the control on one metric. */
export interface ComparisonReport extends SequentialResult {
  metric: string;
  kind: "mean" | "proportion";
  control: string;
  treatment: string;
  /** Plain-language verdict for this metric and arm. */
  verdict: string;
}

/** The full, JSON-serializable experiment report. */
export interface ExperimentReport {
  experiment: string;
  generatedAt: string | null;
  /** Control arm (first configured arm). */
  control: string | null;
  primaryMetric: string;
  alpha: number;
  totalRequests: number;
  arms: ArmReport[];
  comparisons: ComparisonReport[];
  srm: SrmResult;
  /** Loud warnings (SRM first); empty when all is well. */
  warnings: string[];
  /** One-line verdict on the primary metric. */
  verdict: string;
}

function toArmMap(stats: ArmStatsSource): ReadonlyMap<string, ArmStats> {
  if (stats instanceof ExperimentStats) return stats.arms;
  if (stats instanceof Map) return stats as ReadonlyMap<string, ArmStats>;
  return new Map(Object.entries(stats as Readonly<Record<string, ArmStats>>));
}

function confidenceLabel(alpha: number): string {
  return `${Number((100 * (1 - alpha)).toPrecision(4))} %`;
}

function pct1(x: number | null): string {
  return x === null ? "?" : `${x.toFixed(1)} %`;
}

function countsPhrase(c: SequentialResult, control: string, treatment: string): string {
  return c.controlCount === c.treatmentCount
    ? `${c.controlCount} requests per arm`
    : `${c.controlCount} ${control} / ${c.treatmentCount} ${treatment} requests`;
}

function formatNumber(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return "0";
  return x.toPrecision(3);
}

/**
 * The plain-language verdict for one comparison, e.g.
 * `"vllm ttft_ms 12.0 % lower than trtllm, 95 % CI [8.1 %, 15.9 %]"` or
 * `"no significant difference in ttft_ms after 812 requests per arm"`.
 *
 * @param c the comparison
 * @param minSamplesPerArm the minimum per-arm samples the test waits for
 */
export function comparisonVerdict(c: Omit<ComparisonReport, "verdict">, minSamplesPerArm = DEFAULT_MIN_SAMPLES_PER_ARM): string {
  const { metric, control, treatment } = c;
  if (c.controlCount === 0 && c.treatmentCount === 0) return `no ${metric} data yet`;
  if (!c.ready) {
    if (c.controlCount < minSamplesPerArm || c.treatmentCount < minSamplesPerArm) {
      return `not enough ${metric} data yet (${c.controlCount} ${control} / ${c.treatmentCount} ${treatment}, need ${minSamplesPerArm} per arm)`;
    }
    return `no variation in ${metric} yet after ${countsPhrase(c, control, treatment)}; cannot compare`;
  }
  if (!c.significant) return `no significant difference in ${metric} after ${countsPhrase(c, control, treatment)}`;
  const level = `${confidenceLabel(c.alpha)} CI`;
  const rel = c.relativePct;
  if (rel !== null && c.relativeCI.lower !== null && c.relativeCI.upper !== null) {
    const lower = rel < 0;
    const lo = lower ? -c.relativeCI.upper : c.relativeCI.lower;
    const hi = lower ? -c.relativeCI.lower : c.relativeCI.upper;
    return `${treatment} ${metric} ${pct1(Math.abs(rel))} ${lower ? "lower" : "higher"} than ${control}, ${level} [${pct1(lo)}, ${pct1(hi)}]`;
  }
  const d = c.difference ?? 0;
  const lower = d < 0;
  const lo = lower ? -(c.differenceCI.upper ?? 0) : (c.differenceCI.lower ?? 0);
  const hi = lower ? -(c.differenceCI.lower ?? 0) : (c.differenceCI.upper ?? 0);
  return `${treatment} ${metric} ${formatNumber(Math.abs(d))} ${lower ? "lower" : "higher"} than ${control} (absolute), ${level} [${formatNumber(lo)}, ${formatNumber(hi)}]`;
}

function sampleOf(arm: ArmStats, metric: string, kind: "mean" | "proportion"): SampleSummary {
  if (kind === "proportion") {
    const p = arm.proportions.get(metric);
    return p ? p.asSample() : { count: 0, mean: 0, variance: 0 };
  }
  return arm.metrics.get(metric)?.moments ?? { count: 0, mean: 0, variance: 0 };
}

/**
 * Build the experiment report.
 *
 * @param input experiment config, per-arm stats and options (see {@link BuildReportInput})
 * @returns a JSON-serializable {@link ExperimentReport}
 */
export function buildReport(input: BuildReportInput): ExperimentReport {
  const { experiment } = input;
  const primaryMetric = input.primaryMetric ?? DEFAULT_PRIMARY_METRIC;
  const seqOptions: SequentialOptions = input.sequential ?? {};
  const alpha = seqOptions.alpha ?? DEFAULT_ALPHA;
  const minSamples = seqOptions.minSamplesPerArm ?? DEFAULT_MIN_SAMPLES_PER_ARM;
  const percentiles = input.percentiles ?? DEFAULT_PERCENTILES;
  const confidence = DEFAULT_CONFIDENCE;
  const armMap = toArmMap(input.stats);

  const configured = experiment.arms.map((a) => a.backend);
  const unconfigured = [...armMap.keys()].filter((k) => !configured.includes(k));
  const allArms: { name: string; weight: number; stats: ArmStats; role: ArmReport["role"] }[] = [
    ...experiment.arms.map((a, i) => ({
      name: a.backend,
      weight: a.weight,
      stats: armMap.get(a.backend) ?? new ArmStats(a.backend),
      role: i === 0 ? ("control" as const) : ("treatment" as const),
    })),
    ...unconfigured.map((name) => ({ name, weight: 0, stats: armMap.get(name) as ArmStats, role: "unconfigured" as const })),
  ];
  const totalRequests = allArms.reduce((s, a) => s + a.stats.requests, 0);

  const srm = sampleRatioMismatch(
    allArms.map((a) => ({ arm: a.name, count: a.stats.requests, weight: a.weight })),
    input.srmThreshold ?? SRM_P_VALUE_THRESHOLD,
  );

  const arms: ArmReport[] = allArms.map((a, i) => {
    const metrics: Record<string, MetricSummary> = {};
    for (const [name, acc] of [...a.stats.metrics].sort(([x], [y]) => x.localeCompare(y))) {
      metrics[name] = acc.summary(percentiles, confidence);
    }
    const proportions: Record<string, ProportionSummary> = {};
    for (const [name, acc] of [...a.stats.proportions].sort(([x], [y]) => x.localeCompare(y))) {
      proportions[name] = acc.summary(confidence);
    }
    const errorCount = a.stats.errorCount;
    const errorRate = proportions[ERROR_RATE_METRIC];
    const srmArm = srm.arms[i];
    return {
      arm: a.name,
      role: a.role,
      weight: a.weight,
      expectedShare: srmArm?.expectedShare ?? 0,
      observedShare: srmArm?.observedShare ?? 0,
      requests: a.stats.requests,
      errors: {
        total: errorCount,
        rate: errorRate?.rate ?? (a.stats.requests > 0 ? errorCount / a.stats.requests : null),
        rateCI: errorRate?.rateCI ?? { lower: null, upper: null },
        byType: Object.fromEntries([...a.stats.errors].sort(([x], [y]) => x.localeCompare(y))),
      },
      metrics,
      proportions,
    };
  });

  const comparisons: ComparisonReport[] = [];
  const control = allArms[0];
  if (control !== undefined) {
    for (const treatment of allArms.slice(1).filter((a) => a.role === "treatment")) {
      const metricNames = new Set([...control.stats.metrics.keys(), ...treatment.stats.metrics.keys()]);
      const flagNames = new Set([...control.stats.proportions.keys(), ...treatment.stats.proportions.keys()]);
      const pairs: [string, "mean" | "proportion"][] = [
        ...[...metricNames].sort().map((m) => [m, "mean"] as [string, "mean"]),
        ...[...flagNames].sort().map((m) => [m, "proportion"] as [string, "proportion"]),
      ];
      for (const [metric, kind] of pairs) {
        const current = mixtureSequentialTest(sampleOf(control.stats, metric, kind), sampleOf(treatment.stats, metric, kind), seqOptions);
        const prev = input.previous?.comparisons.find(
          (p) => p.metric === metric && p.kind === kind && p.control === control.name && p.treatment === treatment.name,
        );
        const result = accumulateSequential(prev, current);
        const base = { ...result, metric, kind, control: control.name, treatment: treatment.name };
        comparisons.push({ ...base, verdict: comparisonVerdict(base, minSamples) });
      }
    }
  }

  const warnings: string[] = [];
  if (srm.warning !== null) warnings.push(srm.warning);
  if (unconfigured.length > 0) {
    warnings.push(`traffic recorded for arm(s) not in the experiment config: ${unconfigured.join(", ")}`);
  }

  let verdict: string;
  if (control === undefined) verdict = "experiment has no arms";
  else if (experiment.arms.length < 2) verdict = `only one arm (${control.name}); nothing to compare`;
  else {
    const primary = comparisons.filter((c) => c.metric === primaryMetric && c.kind === "mean");
    verdict = primary.length > 0 ? primary.map((c) => c.verdict).join("; ") : `no ${primaryMetric} data yet`;
  }
  if (srm.mismatch) verdict = `SAMPLE RATIO MISMATCH, results unreliable: ${verdict}`;

  return {
    experiment: experiment.name,
    generatedAt: input.generatedAt ?? null,
    control: control?.name ?? null,
    primaryMetric,
    alpha,
    totalRequests,
    arms,
    comparisons,
    srm,
    warnings,
    verdict,
  };
}

function table(rows: readonly (readonly string[])[], indent = "  "): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
  );
}

function interval(ci: ConfidenceInterval, fmt: (x: number | null) => string = formatNumber): string {
  return ci.lower === null && ci.upper === null ? "" : `[${ci.lower === null ? "-∞" : fmt(ci.lower)}, ${ci.upper === null ? "∞" : fmt(ci.upper)}]`;
}

function share(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function signedPct(x: number | null): string {
  return x === null ? "–" : `${x > 0 ? "+" : ""}${x.toFixed(1)}%`;
}

/**
 * Render a report as plain text for a terminal (fixed-width tables, no colours).
 *
 * @param report a report from {@link buildReport} (or its JSON round-trip)
 */
export function formatReportText(report: ExperimentReport): string {
  const out: string[] = [];
  const level = confidenceLabel(report.alpha).replace(" ", "");
  out.push(
    `Experiment "${report.experiment}": ${report.totalRequests} requests, control ${report.control ?? "–"}` +
      (report.generatedAt ? `, at ${report.generatedAt}` : ""),
  );
  for (const w of report.warnings) out.push("", w);

  out.push("", "Arms");
  out.push(
    ...table([
      ["arm", "role", "weight", "expected", "observed", "requests", "errors"],
      ...report.arms.map((a) => [
        a.arm,
        a.role,
        String(a.weight),
        share(a.expectedShare),
        share(a.observedShare),
        String(a.requests),
        `${a.errors.total}` +
          (a.errors.rate !== null ? ` (${share(a.errors.rate)})` : "") +
          Object.entries(a.errors.byType)
            .map(([k, v]) => ` ${k}=${v}`)
            .join(""),
      ]),
    ]),
  );
  out.push(
    `  SRM: chi²=${report.srm.chiSquare === null ? "∞" : report.srm.chiSquare.toFixed(2)} df=${report.srm.degreesOfFreedom} p=${report.srm.pValue.toPrecision(3)}${report.srm.mismatch ? "  MISMATCH" : report.srm.enoughData ? "  ok" : "  (not enough data)"}`,
  );

  const metricNames = [...new Set(report.arms.flatMap((a) => Object.keys(a.metrics)))].sort((x, y) => {
    const ix = LATENCY_METRICS.indexOf(x);
    const iy = LATENCY_METRICS.indexOf(y);
    return (ix < 0 ? 99 : ix) - (iy < 0 ? 99 : iy) || x.localeCompare(y);
  });
  for (const metric of metricNames) {
    const labels = [...new Set(report.arms.flatMap((a) => Object.keys(a.metrics[metric]?.percentiles ?? {})))];
    out.push("", `${metric} (mean and percentiles with ${level} CI)`);
    out.push(
      ...table([
        ["arm", "n", "mean", ...labels],
        ...report.arms
          .filter((a) => a.metrics[metric] !== undefined)
          .map((a) => {
            const m = a.metrics[metric];
            return [
              a.arm,
              String(m.count),
              `${formatNumber(m.mean)} ${interval(m.meanCI)}`.trim(),
              ...labels.map((l) => {
                const p = m.percentiles[l];
                return p ? `${formatNumber(p.value)} ${interval(p)}`.trim() : "–";
              }),
            ];
          }),
      ]),
    );
  }

  const flagNames = [...new Set(report.arms.flatMap((a) => Object.keys(a.proportions)))].sort();
  if (flagNames.length > 0) {
    out.push("", `Rates (${level} Wilson CI)`);
    out.push(
      ...table([
        ["metric", ...report.arms.map((a) => a.arm)],
        ...flagNames.map((f) => [
          f,
          ...report.arms.map((a) => {
            const p = a.proportions[f];
            return p && p.rate !== null ? `${share(p.rate)} [${share(p.rateCI.lower ?? 0)}, ${share(p.rateCI.upper ?? 1)}] n=${p.count}` : "–";
          }),
        ]),
      ]),
    );
  }

  if (report.comparisons.length > 0) {
    out.push("", `Comparisons vs ${report.control ?? "control"} (always-valid ${level} CI; p-value valid under continuous monitoring)`);
    out.push(
      ...table([
        ["arm", "metric", "relative", "difference", "p", ""],
        ...report.comparisons.map((c) => [
          c.treatment,
          c.metric,
          c.ready ? `${signedPct(c.relativePct)} ${interval(c.relativeCI, signedPct)}`.trim() : "–",
          c.ready ? `${formatNumber(c.difference)} ${interval(c.differenceCI)}`.trim() : "–",
          c.ready ? c.pValue.toPrecision(3) : "–",
          c.significant ? "SIGNIFICANT" : c.ready ? "" : "waiting for data",
        ]),
      ]),
    );
  }

  out.push("", `Verdict: ${report.verdict}`);
  return out.join("\n") + "\n";
}
