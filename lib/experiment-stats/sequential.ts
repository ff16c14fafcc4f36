/**
 * Always-valid (anytime-valid) inference for the difference of two means.
 *
 * Method: the two-sample mixture sequential probability ratio test (mSPRT) of
 * Johari, Koomen, Pekelis & Walsh, "Always Valid Inference: Continuous Monitoring
 * of A/B Tests" (Operations Research, 2022), under the normal approximation.
 * With `θ̂ = mean_T − mean_C` and `V = s²_C/n_C + s²_T/n_T` (its variance), the
 * likelihood ratio of `θ` against a `N(θ₀, τ²)` mixture of alternatives is
 *
 *     Λ(θ₀) = sqrt(V / (V + τ²)) · exp( (θ̂ − θ₀)² τ² / (2 V (V + τ²)) ).
 *
 * Under H₀ this is (approximately) a non-negative martingale with mean 1, so by
 * Ville's inequality `P(∃ n: Λ_n ≥ 1/α) ≤ α`. Hence
 *
 * - the always-valid p-value `p_n = min_{k ≤ n} 1/Λ_k(0)` may be read after every
 *   request, and stopping whenever `p_n < α` keeps the false-positive rate ≤ α;
 * - the confidence sequence `{θ₀ : Λ_n(θ₀) < 1/α}`, i.e.
 *   `θ̂ ± sqrt( V (1 + 1/r) (2 ln(1/α) + ln(1 + r)) )` with `r = τ²/V`, covers the true
 *   difference at all times simultaneously with probability ≥ 1 − α (this is the
 *   normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
 *   nonparametric, nonasymptotic confidence sequences", Ann. Stat. 2021).
 *
 * The mixture scale is set on the standardized effect: `τ = τ_δ · σ̄` with
 * `σ̄² = (s²_C + s²_T) / 2`, and `τ_δ` chosen so the boundary is tightest when each
 * arm has `plannedSamplesPerArm` observations. The relative difference
 * `mean_T / mean_C − 1` gets its own confidence sequence via the delta method.
 *
 * Pure functions; the running minimum / intersection is carried explicitly with
 * {@link accumulateSequential}.
 */
import type { ConfidenceInterval, SampleSummary } from "./stats.js";

/** Tuning of the mixture sequential test. */
export interface SequentialOptions {
  /** Type-I error level; the CI has coverage 1 − alpha. Default 0.05. */
  alpha?: number;
  /** Per-arm sample size at which the boundary should be tightest. Default 1000. */
  plannedSamplesPerArm?: number;
  /**
   * Minimum observations per arm before the test reports anything (the normal
   * approximation and the plug-in variance need some data). Default 100.
   */
  minSamplesPerArm?: number;
}

/** Default type-I error level. */
export const DEFAULT_ALPHA = 0.05;
/** Default per-arm sample size the mixture is tuned for. */
export const DEFAULT_PLANNED_SAMPLES_PER_ARM = 1000;
/** Default minimum per-arm sample size before the test is evaluated. */
export const DEFAULT_MIN_SAMPLES_PER_ARM = 100;

/** Outcome of the always-valid comparison of a treatment arm against the control. */
export interface SequentialResult {
  /** False until both arms have `minSamplesPerArm` observations and non-zero variance. */
  ready: boolean;
  /** Observations behind the estimate. */
  controlCount: number;
  treatmentCount: number;
  controlMean: number | null;
  treatmentMean: number | null;
  /** `mean_T − mean_C`. */
  difference: number | null;
  /** Always-valid CI for the difference (coverage 1 − alpha uniformly over time). */
  differenceCI: ConfidenceInterval;
  /** `100 · (mean_T / mean_C − 1)`; null when the control mean is not positive. */
  relativePct: number | null;
  /** Always-valid CI for the relative difference, in percent. */
  relativeCI: ConfidenceInterval;
  /** Always-valid p-value for H₀: the means are equal. */
  pValue: number;
  /** `pValue < alpha`. */
  significant: boolean;
  /** The alpha the result was computed with. */
  alpha: number;
}

/** Memo of {@link optimalMixtureRatio} by alpha (bounded; alphas are few in practice). */
const ratioCache = new Map<number, number>();

/**
 * The mixing-variance ratio `r* = τ²/V` that minimizes the normal-mixture boundary
 * `(1 + 1/r)(2 ln(1/α) + ln(1 + r))` (golden-section search on ln r).
 *
 * @param alpha type-I error level
 */
export function optimalMixtureRatio(alpha: number): number {
  const cached = ratioCache.get(alpha);
  if (cached !== undefined) return cached;
  const f = (lr: number): number => {
    const r = Math.exp(lr);
    return (1 + 1 / r) * (2 * Math.log(1 / alpha) + Math.log1p(r));
  };
  let a = -5;
  let b = 10;
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 100; i++) {
    const c = b - g * (b - a);
    const d = a + g * (b - a);
    if (f(c) < f(d)) b = d;
    else a = c;
  }
  const ratio = Math.exp((a + b) / 2);
  if (ratioCache.size < 64) ratioCache.set(alpha, ratio);
  return ratio;
}

/**
 * Normal-mixture SPRT on a single asymptotically normal estimate.
 *
 * @param estimate the estimate minus the null value (θ̂ − θ₀)
 * @param variance its variance V (> 0)
 * @param tau2 mixing variance τ² (> 0)
 * @param alpha level for the CI half-width
 * @returns `logLR` (ln Λ) and the confidence-sequence half-width at level alpha
 */
export function normalMixture(estimate: number, variance: number, tau2: number, alpha: number): { logLR: number; halfWidth: number } {
  const r = tau2 / variance;
  const logLR = -0.5 * Math.log1p(r) + (estimate * estimate * r) / (2 * variance * (1 + r));
  const halfWidth = Math.sqrt(variance * (1 + 1 / r) * (2 * Math.log(1 / alpha) + Math.log1p(r)));
  return { logLR, halfWidth };
}

function notReady(control: SampleSummary, treatment: SampleSummary, alpha: number): SequentialResult {
  const cm = control.count > 0 ? control.mean : null;
  const tm = treatment.count > 0 ? treatment.mean : null;
  const difference = cm !== null && tm !== null ? tm - cm : null;
  return {
    ready: false,
    controlCount: control.count,
    treatmentCount: treatment.count,
    controlMean: cm,
    treatmentMean: tm,
    difference,
    differenceCI: { lower: null, upper: null },
    relativePct: difference !== null && cm !== null && cm > 0 ? (100 * difference) / cm : null,
    relativeCI: { lower: null, upper: null },
    pValue: 1,
    significant: false,
    alpha,
  };
}

/**
 * Always-valid comparison of two means at the current time (stateless).
 * Reading this after every request is safe: the event "some read has
 * `pValue < alpha`" has probability ≤ alpha under H₀. To get a monotone p-value and
 * a shrinking CI, fold successive results with {@link accumulateSequential}.
 *
 * @param control summary of the control arm (count, mean, sample variance)
 * @param treatment summary of the treatment arm
 * @param options alpha, planned and minimum samples per arm
 */
export function mixtureSequentialTest(control: SampleSummary, treatment: SampleSummary, options: SequentialOptions = {}): SequentialResult {
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  const planned = options.plannedSamplesPerArm ?? DEFAULT_PLANNED_SAMPLES_PER_ARM;
  const minSamples = Math.max(2, options.minSamplesPerArm ?? DEFAULT_MIN_SAMPLES_PER_ARM);
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha must be in (0, 1), got ${alpha}`);
  if (control.count < minSamples || treatment.count < minSamples) return notReady(control, treatment, alpha);

  const v = control.variance / control.count + treatment.variance / treatment.count;
  if (!(v > 0) || !Number.isFinite(v)) return notReady(control, treatment, alpha);

  // Standardized mixing variance: tightest boundary at n = planned per arm, where V/σ² = 2/planned.
  const tauDelta2 = (optimalMixtureRatio(alpha) * 2) / planned;
  const pooledVar = (control.variance + treatment.variance) / 2;
  const tau2 = tauDelta2 * pooledVar;

  const difference = treatment.mean - control.mean;
  const abs = normalMixture(difference, v, tau2, alpha);
  const pValue = Math.min(1, Math.exp(-abs.logLR));

  let relativePct: number | null = null;
  let relativeCI: ConfidenceInterval = { lower: null, upper: null };
  if (control.mean > 0) {
    const c = control.mean;
    const ratio = treatment.mean / c;
    // Delta method for Var(mean_T / mean_C).
    const vRel = treatment.variance / treatment.count / (c * c) + (ratio * ratio * control.variance) / control.count / (c * c);
    if (vRel > 0 && Number.isFinite(vRel)) {
      const rel = normalMixture(ratio - 1, vRel, (tauDelta2 * pooledVar) / (c * c), alpha);
      relativePct = 100 * (ratio - 1);
      relativeCI = { lower: relativePct - 100 * rel.halfWidth, upper: relativePct + 100 * rel.halfWidth };
    }
  }

  return {
    ready: true,
    controlCount: control.count,
    treatmentCount: treatment.count,
    controlMean: control.mean,
    treatmentMean: treatment.mean,
    difference,
    differenceCI: { lower: difference - abs.halfWidth, upper: difference + abs.halfWidth },
    relativePct,
    relativeCI,
    pValue,
    significant: pValue < alpha,
    alpha,
  };
}

function intersect(prev: ConfidenceInterval, cur: ConfidenceInterval): ConfidenceInterval {
  if (cur.lower === null || cur.upper === null) return cur;
  if (prev.lower === null || prev.upper === null) return cur;
  const lower = Math.max(prev.lower, cur.lower);
  const upper = Math.min(prev.upper, cur.upper);
  // An empty intersection means the normal / plug-in approximation broke down
  // somewhere; fall back to the current interval rather than report nonsense.
  return lower <= upper ? { lower, upper } : cur;
}

/**
 * Fold the current result into the running always-valid state: the p-value is the
 * running minimum and the CIs the running intersection (both remain valid by the
 * time-uniform guarantee). Pass `undefined` as `previous` for the first read, and
 * reset (pass `undefined`) if the counts went backwards (stats were reset).
 *
 * @param previous the accumulated result of the previous read
 * @param current the stateless result of this read
 */
export function accumulateSequential(previous: SequentialResult | undefined, current: SequentialResult): SequentialResult {
  if (previous === undefined || !previous.ready || !current.ready) return current;
  if (current.controlCount < previous.controlCount || current.treatmentCount < previous.treatmentCount) return current;
  if (current.alpha !== previous.alpha) return current;
  const pValue = Math.min(previous.pValue, current.pValue);
  return {
    ...current,
    pValue,
    significant: pValue < current.alpha,
    differenceCI: intersect(previous.differenceCI, current.differenceCI),
    relativeCI: intersect(previous.relativeCI, current.relativeCI),
  };
}
