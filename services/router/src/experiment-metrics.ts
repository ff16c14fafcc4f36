import { ExperimentStats, buildReport, historyPointFromReport } from "../../../lib/experiment-stats/index.js";
import type { DiffHistoryPoint, ExperimentConfig, ExperimentReport, ExperimentStatsSnapshot, Observation } from "../../../lib/experiment-stats/index.js";

/** Requests between two points of the report history at first (the interval doubles as history fills). */
export const HISTORY_EVERY_REQUESTS = 100;
/** Points kept for the SVG plot; when full, every other point is dropped. */
export const HISTORY_MAX_POINTS = 200;
/** Arm name under which shadow reports put the served arms' measurements of the mirrored requests. */
export const SERVED_ARM = "served";

/** What the report of one experiment needs besides its measurements. */
export interface ReportSubject extends ExperimentConfig {
  primaryMetric?: string;
  shadowBackend?: string;
}

/**
 * Percentile sample values per metric a router shares with the others (its
 * own reservoir keeps more): 1,024 values × a handful of metrics × arms keeps
 * a published snapshot far below NATS's 1 MB message limit.
 */
export const SHARED_SAMPLE_SIZE = 1_024;

/**
 * The statistics as a router publishes them: exact moments and counts, each
 * percentile sample thinned to SHARED_SAMPLE_SIZE by a fixed stride
 * (deterministic, so a router merging its own statistics this way gets what
 * the others read from NATS).
 */
export function sharedSnapshot(stats: ExperimentStats): ExperimentStatsSnapshot {
  const snapshot = stats.toJSON();
  for (const arm of snapshot.arms) {
    for (const metric of Object.values(arm.metrics)) {
      const values = metric.reservoir.values;
      if (values.length <= SHARED_SAMPLE_SIZE) continue;
      const stride = values.length / SHARED_SAMPLE_SIZE;
      metric.reservoir.values = Array.from({ length: SHARED_SAMPLE_SIZE }, (_, i) => values[Math.floor(i * stride)]);
    }
  }
  return snapshot;
}

/** One router's statistics of an experiment phase, as another router published them. */
export interface PeerMeasurements {
  /** The router that published them (contributions are merged in this order). */
  routerId: string;
  stats: ExperimentStats;
  shadow: ExperimentStats;
}

/** An experiment report plus, when shadow traffic ran, the shadow comparison. */
export type ExperimentReportWithShadow = ExperimentReport & { shadow?: ExperimentReport };

/**
 * The measurements of one experiment phase (one allocation of arms and
 * weights): per-arm statistics, the shadow's statistics beside the arms it
 * mirrored, and a thinned history of the primary comparison for plotting.
 * Reports are built with the previous one as `previous`, so p-values and
 * intervals stay always-valid however often the report is read.
 */
export class ExperimentMeasurements {
  readonly stats = new ExperimentStats();
  /** Arms `served` (the primary's view of mirrored requests) and the shadow backend. */
  readonly shadow = new ExperimentStats();
  readonly history: DiffHistoryPoint[] = [];
  #historyEvery = HISTORY_EVERY_REQUESTS;
  #nextHistoryAt = HISTORY_EVERY_REQUESTS;
  #requests = 0;
  #previous: ExperimentReport | null = null;
  #previousShadow: ExperimentReport | null = null;

  /**
   * @param peers the other routers' statistics of this phase (cluster mode):
   *   reports merge them with this router's, so every router reports the cluster
   * @param routerId this router's id (its place in the merge order)
   */
  constructor(
    readonly since: Date = new Date(),
    private readonly peers: () => readonly PeerMeasurements[] = () => [],
    private readonly routerId = "",
  ) {}

  /** This router's and its peers' statistics merged, in router-id order (the same result on every router). */
  merged(): { stats: ExperimentStats; shadow: ExperimentStats } {
    const peers = this.peers();
    if (peers.length === 0) return { stats: this.stats, shadow: this.shadow };
    // This router's own part as the others see it (the shared sample), so every router merges the same inputs.
    const own = {
      routerId: this.routerId,
      stats: ExperimentStats.fromJSON(sharedSnapshot(this.stats)),
      shadow: ExperimentStats.fromJSON(sharedSnapshot(this.shadow)),
    };
    const all = [...peers.filter((p) => p.routerId !== this.routerId), own];
    all.sort((a, b) => (a.routerId < b.routerId ? -1 : a.routerId > b.routerId ? 1 : 0));
    const stats = new ExperimentStats(this.stats.reservoirSize);
    const shadow = new ExperimentStats(this.shadow.reservoirSize);
    for (const p of all) {
      stats.merge(p.stats);
      shadow.merge(p.shadow);
    }
    return { stats, shadow };
  }

  /** Requests this router recorded. */
  get requests(): number {
    return this.#requests;
  }

  /** Requests every router recorded (this one's alone without peers). */
  get clusterRequests(): number {
    const peers = this.peers();
    if (peers.length === 0) return this.#requests;
    let total = this.#requests;
    for (const p of peers) if (p.routerId !== this.routerId) for (const arm of p.stats.arms.values()) total += arm.requests;
    return total;
  }

  /** Records one request served by `arm`; every HISTORY_EVERY_REQUESTS it also adds a history point. */
  record(subject: ReportSubject, arm: string, observation: Observation): void {
    this.stats.record(arm, observation);
    this.#requests++;
    if (this.#requests >= this.#nextHistoryAt) {
      this.#nextHistoryAt += this.#historyEvery;
      this.report(subject);
    }
  }

  /** Records a mirrored request: what the serving arm measured, or what the shadow measured. */
  recordShadow(arm: string, observation: Observation): void {
    this.shadow.record(arm, observation);
  }

  /** Builds the report now (and remembers it for the next one and the history). */
  report(subject: ReportSubject, now = new Date()): ExperimentReportWithShadow {
    const merged = this.merged();
    const report = buildReport({
      experiment: subject,
      stats: merged.stats,
      primaryMetric: subject.primaryMetric,
      previous: this.#previous,
      generatedAt: now.toISOString(),
    });
    this.#previous = report;
    this.#addHistory(report);
    if (!subject.shadowBackend && merged.shadow.arms.size === 0) return report;
    const shadowBackend = subject.shadowBackend ?? [...merged.shadow.arms.keys()].find((a) => a !== SERVED_ARM) ?? "shadow";
    const shadow = buildReport({
      experiment: {
        name: `${subject.name} shadow`,
        arms: [
          { backend: SERVED_ARM, weight: 1 },
          { backend: shadowBackend, weight: 1 },
        ],
      },
      stats: merged.shadow,
      primaryMetric: subject.primaryMetric,
      previous: this.#previousShadow,
      generatedAt: now.toISOString(),
    });
    this.#previousShadow = shadow;
    return { ...report, shadow };
  }

  #addHistory(report: ExperimentReport): void {
    const point = historyPointFromReport(report);
    if (!point) return;
    const last = this.history.at(-1);
    if (last && last.requests === point.requests) this.history[this.history.length - 1] = point;
    else this.history.push(point);
    if (this.history.length > HISTORY_MAX_POINTS) {
      const kept = this.history.filter((_, i) => i % 2 === 1 || i === this.history.length - 1);
      this.history.splice(0, this.history.length, ...kept);
      this.#historyEvery *= 2;
    }
  }
}

/** Built-in per-request metrics; feedback may not write them. */
export const RESERVED_METRICS: ReadonlySet<string> = new Set(["ttft_ms", "tpot_ms", "e2e_ms", "prompt_tokens", "completion_tokens", "error_rate"]);

/** Per-request measurements as the experiment library takes them. */
export function requestObservation(m: {
  startedAt: number;
  firstTokenAt: number | undefined;
  endedAt: number;
  promptTokens: number;
  completionTokens: number;
  error: string | undefined;
}): Observation {
  const e2e = m.endedAt - m.startedAt;
  const ttft = m.firstTokenAt === undefined ? undefined : m.firstTokenAt - m.startedAt;
  const tpot = ttft !== undefined && m.completionTokens > 1 ? (e2e - ttft) / (m.completionTokens - 1) : undefined;
  if (m.error !== undefined) return { error: m.error };
  return {
    metrics: { ttft_ms: ttft, tpot_ms: tpot, e2e_ms: e2e, prompt_tokens: m.promptTokens, completion_tokens: m.completionTokens },
  };
}
