/**
 * Sample-ratio-mismatch (SRM) detection: a chi-square goodness-of-fit test of the
 * observed per-arm request counts against the configured weights. An SRM means
 * assignment, routing or logging is biased, and the experiment's comparisons
 * cannot be trusted regardless of their p-values.
 */
import { chiSquareSurvival } from "./math.js";

/** p-value below which a sample ratio mismatch is flagged (the customary 0.001). */
export const SRM_P_VALUE_THRESHOLD = 0.001;
/** Minimum expected count per arm for the chi-square approximation to be trusted. */
export const SRM_MIN_EXPECTED_COUNT = 5;

/** Observed count and configured weight of one arm. */
export interface SrmArm {
  arm: string;
  count: number;
  weight: number;
}

/** Per-arm detail of the SRM test. */
export interface SrmArmResult {
  arm: string;
  observed: number;
  expected: number;
  /** Observed share of traffic, 0–1. */
  observedShare: number;
  /** Configured share of traffic, 0–1. */
  expectedShare: number;
}

/** Result of {@link sampleRatioMismatch}. */
export interface SrmResult {
  /** Chi-square statistic over arms with positive weight; null (infinite) if a zero-weight arm got traffic. */
  chiSquare: number | null;
  degreesOfFreedom: number;
  pValue: number;
  /** The threshold used. */
  threshold: number;
  /** True when `pValue < threshold` and the test has enough data. */
  mismatch: boolean;
  /** False while any expected count is below {@link SRM_MIN_EXPECTED_COUNT} (never flags then). */
  enoughData: boolean;
  total: number;
  arms: SrmArmResult[];
  /** A loud human-readable warning when `mismatch`, else null. */
  warning: string | null;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/**
 * Chi-square goodness-of-fit p-value of counts against expected proportions.
 *
 * @param observed counts per category
 * @param expectedShares expected probabilities per category (normalized internally)
 * @returns statistic, degrees of freedom (categories − 1) and survival-function p-value
 */
export function chiSquareGoodnessOfFit(
  observed: readonly number[],
  expectedShares: readonly number[],
): { chiSquare: number; degreesOfFreedom: number; pValue: number } {
  if (observed.length !== expectedShares.length) throw new Error("observed and expected lengths differ");
  const total = observed.reduce((a, b) => a + b, 0);
  const shareSum = expectedShares.reduce((a, b) => a + b, 0);
  let chiSquare = 0;
  observed.forEach((o, i) => {
    const e = (total * (expectedShares[i] ?? 0)) / shareSum;
    if (e > 0) chiSquare += ((o - e) * (o - e)) / e;
    else if (o > 0) chiSquare = Number.POSITIVE_INFINITY;
  });
  const degreesOfFreedom = Math.max(1, observed.length - 1);
  const pValue = total === 0 ? 1 : chiSquareSurvival(chiSquare, degreesOfFreedom);
  return { chiSquare, degreesOfFreedom, pValue };
}

/**
 * Test observed per-arm counts against configured weights. Arms with weight 0
 * must receive no traffic; any traffic there is an immediate mismatch.
 *
 * @param arms observed count and configured weight per arm
 * @param threshold flag when the p-value is below this (default {@link SRM_P_VALUE_THRESHOLD})
 */
export function sampleRatioMismatch(arms: readonly SrmArm[], threshold = SRM_P_VALUE_THRESHOLD): SrmResult {
  const total = arms.reduce((a, b) => a + b.count, 0);
  const weightSum = arms.reduce((a, b) => a + Math.max(0, b.weight), 0);
  const details: SrmArmResult[] = arms.map((a) => {
    const expectedShare = weightSum > 0 ? Math.max(0, a.weight) / weightSum : 0;
    return {
      arm: a.arm,
      observed: a.count,
      expected: total * expectedShare,
      observedShare: total > 0 ? a.count / total : 0,
      expectedShare,
    };
  });
  const active = details.filter((d) => d.expectedShare > 0);
  const leaked = details.filter((d) => d.expectedShare === 0 && d.observed > 0);

  let chiSquare: number | null;
  let degreesOfFreedom: number;
  let pValue: number;
  let enoughData: boolean;
  if (leaked.length > 0) {
    chiSquare = null;
    degreesOfFreedom = Math.max(1, active.length);
    pValue = 0;
    enoughData = true;
  } else if (active.length < 2) {
    // A single live arm cannot mismatch.
    chiSquare = 0;
    degreesOfFreedom = 0;
    pValue = 1;
    enoughData = total > 0;
  } else {
    const gof = chiSquareGoodnessOfFit(
      active.map((d) => d.observed),
      active.map((d) => d.expectedShare),
    );
    ({ chiSquare, degreesOfFreedom, pValue } = gof);
    enoughData = active.every((d) => d.expected >= SRM_MIN_EXPECTED_COUNT);
  }
  const mismatch = enoughData && pValue < threshold;

  let warning: string | null = null;
  if (mismatch) {
    const observedSplit = details.map((d) => `${d.arm} ${pct(d.observedShare)}`).join(" / ");
    const expectedSplit = details.map((d) => `${d.arm} ${pct(d.expectedShare)}`).join(" / ");
    const leakNote = leaked.length > 0 ? ` Traffic reached zero-weight arm(s): ${leaked.map((d) => d.arm).join(", ")}.` : "";
    warning =
      `!!! SAMPLE RATIO MISMATCH: observed ${observedSplit} vs configured ${expectedSplit} ` +
      `(chi² = ${chiSquare === null ? "∞" : chiSquare.toFixed(2)}, df = ${degreesOfFreedom}, p = ${pValue.toExponential(2)} < ${threshold}).` +
      `${leakNote} Assignment, routing or logging is biased; DO NOT TRUST the comparisons in this report. !!!`;
  }
  return { chiSquare, degreesOfFreedom, pValue, threshold, mismatch, enoughData, total, arms: details, warning };
}
