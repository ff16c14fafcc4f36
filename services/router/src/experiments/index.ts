/**
 * Pure-logic A/B experiment library for the router: sticky assignment, streaming
 * statistics, always-valid sequential tests, SRM detection, reports and SVG charts.
 */
export { assignArm, hashToUnit, shouldShadow, validateExperiment } from "./assignment.js";
export type { ArmAssignment, ArmConfig, ExperimentConfig } from "./assignment.js";

export {
  ArmStats,
  DEFAULT_CONFIDENCE,
  DEFAULT_PERCENTILES,
  DEFAULT_RESERVOIR_SIZE,
  ERROR_RATE_METRIC,
  ExperimentStats,
  MetricAccumulator,
  ProportionAccumulator,
  Reservoir,
  RunningMoments,
  percentileLabel,
  quantile,
  quantileInterval,
  quantileRanks,
  wilsonInterval,
} from "./stats.js";
export type {
  ArmStatsSnapshot,
  ConfidenceInterval,
  ExperimentStatsSnapshot,
  MetricSnapshot,
  MetricSummary,
  MomentsSnapshot,
  Observation,
  PercentileEstimate,
  ProportionSnapshot,
  ProportionSummary,
  ReservoirSnapshot,
  SampleSummary,
} from "./stats.js";

export {
  DEFAULT_ALPHA,
  DEFAULT_MIN_SAMPLES_PER_ARM,
  DEFAULT_PLANNED_SAMPLES_PER_ARM,
  accumulateSequential,
  mixtureSequentialTest,
  normalMixture,
  optimalMixtureRatio,
} from "./sequential.js";
export type { SequentialOptions, SequentialResult } from "./sequential.js";

export {
  SRM_MIN_EXPECTED_COUNT,
  SRM_P_VALUE_THRESHOLD,
  chiSquareGoodnessOfFit,
  sampleRatioMismatch,
} from "./srm.js";
export type { SrmArm, SrmArmResult, SrmResult } from "./srm.js";

export {
  DEFAULT_PRIMARY_METRIC,
  LATENCY_METRICS,
  buildReport,
  comparisonVerdict,
  formatReportText,
} from "./report.js";
export type { ArmReport, ArmStatsSource, BuildReportInput, ComparisonReport, ExperimentReport } from "./report.js";

export { historyPointFromReport, niceTicks, renderReportSvg } from "./svg.js";
export type { DiffHistoryPoint, RenderSvgOptions } from "./svg.js";

export { chiSquareSurvival, lnGamma, normalQuantile, regularizedGammaP, regularizedGammaQ, seededRandom } from "./math.js";
export type { SeededRandom } from "./math.js";
