/**
 * Pure-logic A/B experiment library (the router calls it): sticky assignment, streaming
 * statistics, always-valid sequential tests, SRM detection, reports and SVG charts.
 * This is what the router uses; the modules (and their tests) hold the rest.
 */
export { assignArm, shouldShadow } from "./assignment.js";
export type { ExperimentConfig } from "./assignment.js";
export { ExperimentStats } from "./stats.js";
export type { Observation, ExperimentStatsSnapshot } from "./stats.js";
export { buildReport, formatReportText } from "./report.js";
export type { ExperimentReport } from "./report.js";
export { historyPointFromReport, renderReportSvg } from "./svg.js";
export type { DiffHistoryPoint } from "./svg.js";
export { quantile } from "./quantiles.js";
