import { randomUUID } from "node:crypto";
import { experimentProblems, experimentSchema } from "../../../lib/catalog/index.js";
import type { CatalogExperiment, CatalogModel } from "../../../lib/catalog/index.js";
import { Code, meshError } from "../../../lib/errors.js";
import { assignArm, shouldShadow } from "../../../lib/experiment-stats/index.js";
import { ExperimentMeasurements, RESERVED_METRICS } from "./experiment-metrics.js";
import type { PeerMeasurements, ReportSubject } from "./experiment-metrics.js";

/** Requests remembered for feedback (request id → experiment and arm); the oldest are forgotten first. */
export const FEEDBACK_INDEX_SIZE = 100_000;
const METRIC_NAME = /^[a-z][a-z0-9_.]{0,63}$/;

/** One experiment the router knows, running or stopped. */
export interface ExperimentEntry {
  config: CatalogExperiment;
  /** What assignment and the report need of `config` (derived once, not per request). */
  subject: ReportSubject;
  state: "running" | "stopped";
  /** The measurements of the current allocation (a change of arms, weights, salt or unit starts a new one). */
  measurements: ExperimentMeasurements;
  /** Names the allocation the measurements belong to: routers merge statistics of the same phase only. */
  phase: string;
}

/** An experiment as stored (experiments file, NATS KV): config, state and phase. */
export interface StoredExperiment {
  config: CatalogExperiment;
  state: "running" | "stopped";
  /** Absent in files written before phases existed. */
  phase?: string;
}

/** The cluster hooks of a registry: this router's id and its peers' statistics of a phase. */
export interface ExperimentPeers {
  routerId: string;
  measurements(experiment: string, phase: string): readonly PeerMeasurements[];
}

/** Where a request went when an experiment assigned it. */
export interface Assignment {
  /**
   * The experiment as it was when the request came in: `set` replaces entries
   * rather than changing them, so its config and measurements stay the
   * request's even if the experiment changes meanwhile.
   */
  entry: ExperimentEntry;
  arm: string;
  /** Set when this request is also mirrored to the shadow backend. */
  shadowBackend?: string;
}

interface FeedbackTarget {
  entry: ExperimentEntry;
  arm: string;
  keyId: string;
  /** Metrics already given for this request (created at the first feedback). */
  given?: Set<string>;
}

/**
 * The router's experiments: from the catalog at start, changed at run time by
 * the admin API. One running experiment per model. Assignment is the
 * library's sticky weighted rendezvous hash of (salt, unit, arm), so the same
 * unit gets the same arm in every router process and after restarts, and a
 * weight change moves only the units it must.
 */
export class ExperimentRegistry {
  readonly #byName = new Map<string, ExperimentEntry>();
  readonly #feedback = new Map<string, FeedbackTarget>();
  /** Set in cluster mode (before any experiment is created): reports merge the peers' statistics. */
  peers: ExperimentPeers | undefined;

  constructor(
    private readonly models: readonly CatalogModel[],
    initial: readonly CatalogExperiment[] = [],
    private readonly feedbackIndexSize = FEEDBACK_INDEX_SIZE,
  ) {
    if (initial.length > 0) this.set(initial, false);
  }

  /**
   * Creates or updates experiments by name, all or none. With `replace`, every
   * running experiment not listed is stopped. A changed allocation starts fresh
   * measurements (a report mixing two allocations would be wrong, SRM first).
   */
  set(input: readonly unknown[], replace: boolean): ExperimentEntry[] {
    const configs = input.map((raw, i) => {
      const parsed = experimentSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw meshError(Code.InvalidArgument, `experiments[${i}]: ${issue.path.join(".") || "(root)"}: ${issue.message}`, { param: "experiments" });
      }
      const problems = experimentProblems(this.models, parsed.data);
      if (problems.length > 0) throw meshError(Code.InvalidArgument, problems.join("; "), { param: "experiments" });
      return parsed.data;
    });
    const names = new Set(configs.map((c) => c.name));
    if (names.size !== configs.length) throw meshError(Code.InvalidArgument, "an experiment name is listed twice", { param: "experiments" });
    const models = new Map<string, string>();
    for (const c of configs) {
      const other = models.get(c.model);
      if (other) throw meshError(Code.InvalidArgument, `experiments "${other}" and "${c.name}" both run on model "${c.model}"`, { param: "experiments" });
      models.set(c.model, c.name);
    }
    for (const entry of this.#byName.values()) {
      if (entry.state !== "running" || names.has(entry.config.name) || replace) continue;
      if (models.has(entry.config.model)) {
        throw meshError(Code.FailedPrecondition, `model "${entry.config.model}" is already in running experiment "${entry.config.name}"; stop it first`, {
          reason: "experiment_conflict",
        });
      }
    }
    if (replace) for (const entry of this.#byName.values()) if (!names.has(entry.config.name)) entry.state = "stopped";
    return configs.map((config) => {
      const existing = this.#byName.get(config.name);
      const same = existing && sameAllocation(existing.config, config);
      const phase = same ? existing.phase : randomUUID();
      const measurements = same ? existing.measurements : this.#measurements(config.name, phase);
      const entry: ExperimentEntry = { config, subject: reportSubject(config), state: "running", measurements, phase };
      this.#byName.set(config.name, entry);
      return entry;
    });
  }

  /** Every experiment as stored. */
  snapshot(): StoredExperiment[] {
    return this.list().map((e) => ({ config: e.config, state: e.state, phase: e.phase }));
  }

  /**
   * Makes the registry exactly `stored` (a change read from NATS, or the
   * state before a change that could not be stored): an experiment whose
   * phase stays keeps its measurements, one not listed is stopped and
   * forgotten (the stored list is the whole truth). Entries this router
   * cannot serve (a backend its catalog lacks) are skipped; their problems
   * are returned.
   */
  load(stored: readonly StoredExperiment[]): string[] {
    const problems: string[] = [];
    const listed = new Set<string>();
    for (const s of stored) {
      const parsed = experimentSchema.safeParse(s.config);
      const issues = parsed.success ? experimentProblems(this.models, parsed.data) : [parsed.error.issues[0].message];
      if (!parsed.success || issues.length > 0) {
        problems.push(`${s.config?.name ?? "?"}: ${issues.join("; ")}`);
        continue;
      }
      const config = parsed.data;
      const existing = this.#byName.get(config.name);
      const phase = s.phase ?? existing?.phase ?? randomUUID();
      const measurements = existing && existing.phase === phase ? existing.measurements : this.#measurements(config.name, phase);
      this.#byName.set(config.name, { config, subject: reportSubject(config), state: s.state === "stopped" ? "stopped" : "running", measurements, phase });
      listed.add(config.name);
    }
    for (const [name, entry] of this.#byName) {
      if (listed.has(name)) continue;
      entry.state = "stopped"; // requests already assigned to it see it stopped
      this.#byName.delete(name);
    }
    return problems;
  }

  #measurements(name: string, phase: string): ExperimentMeasurements {
    const peers = this.peers;
    return peers ? new ExperimentMeasurements(new Date(), () => peers.measurements(name, phase), peers.routerId) : new ExperimentMeasurements();
  }

  /** Ends assignment for `name`; its measurements stay readable. */
  stop(name: string): ExperimentEntry {
    const entry = this.get(name);
    entry.state = "stopped";
    return entry;
  }

  /** The experiment called `name`; NotFound otherwise. */
  get(name: string): ExperimentEntry {
    const entry = this.#byName.get(name);
    if (!entry) throw meshError(Code.NotFound, `no experiment "${name}"`, { reason: "experiment_not_found", param: "name" });
    return entry;
  }

  list(): ExperimentEntry[] {
    return [...this.#byName.values()];
  }

  /** The running experiment on `model`, if any. */
  running(model: string): ExperimentEntry | undefined {
    for (const entry of this.#byName.values()) if (entry.state === "running" && entry.config.model === model) return entry;
    return undefined;
  }

  /**
   * Assigns a request of `model` to an arm, or undefined when no experiment
   * runs on it. `unitId` is the OpenAI `user` else the key id; experiments
   * with `unit: key` use the key id alone.
   */
  assign(model: string, req: { requestId: string; unitId: string; keyId: string }): Assignment | undefined {
    const entry = this.running(model);
    if (!entry) return undefined;
    const unit = entry.config.unit === "key" ? req.keyId || req.unitId : req.unitId || req.keyId;
    const { arm } = assignArm(entry.subject, unit);
    const shadow = entry.config.shadow;
    const shadowBackend = shadow && shouldShadow(entry.config.name, req.requestId || unit, shadow.percent) ? shadow.backend : undefined;
    if (req.requestId) this.#remember(req.requestId, { entry, arm, keyId: req.keyId });
    return { entry, arm, shadowBackend };
  }

  /**
   * Records a user outcome for the arm that served `requestId`: a number
   * (e.g. a score) or a flag (thumbs up). Once per request and metric; only by
   * the key that made the request (or an admin).
   */
  recordFeedback(f: { requestId: string; metric: string; value: number | boolean; keyId: string; admin: boolean }): { experiment: string; arm: string } {
    if (!METRIC_NAME.test(f.metric))
      throw meshError(Code.InvalidArgument, "metric must be lowercase letters, digits, _ or . (at most 64)", { param: "metric" });
    if (RESERVED_METRICS.has(f.metric)) throw meshError(Code.InvalidArgument, `metric "${f.metric}" is measured by the router`, { param: "metric" });
    if (typeof f.value === "number" && !Number.isFinite(f.value))
      throw meshError(Code.InvalidArgument, "value must be a finite number or a boolean", { param: "value" });
    const target = this.#feedback.get(f.requestId);
    if (!target || (!f.admin && target.keyId !== f.keyId)) {
      throw meshError(Code.NotFound, `no experiment request "${f.requestId}" (feedback is kept for the last ${this.feedbackIndexSize} requests)`, {
        reason: "request_not_found",
        param: "request_id",
      });
    }
    target.given ??= new Set();
    if (target.given.has(f.metric)) throw meshError(Code.AlreadyExists, `feedback "${f.metric}" was already given for this request`, { param: "metric" });
    target.given.add(f.metric);
    const arm = target.entry.measurements.stats.arm(target.arm);
    if (typeof f.value === "boolean") arm.recordFlag(f.metric, f.value);
    else arm.recordMetric(f.metric, f.value);
    return { experiment: target.entry.config.name, arm: target.arm };
  }

  #remember(requestId: string, target: FeedbackTarget): void {
    this.#feedback.delete(requestId);
    this.#feedback.set(requestId, target);
    if (this.#feedback.size > this.feedbackIndexSize) this.#feedback.delete(this.#feedback.keys().next().value!);
  }
}

/** What the assignment library and the report need of an experiment. */
function reportSubject(config: CatalogExperiment): ReportSubject {
  return { name: config.name, salt: config.salt, arms: config.arms, primaryMetric: config.primary_metric, shadowBackend: config.shadow?.backend };
}

function sameAllocation(a: CatalogExperiment, b: CatalogExperiment): boolean {
  const arms = (c: CatalogExperiment) => JSON.stringify(c.arms.map((x) => [x.backend, x.weight]).sort());
  return a.model === b.model && a.unit === b.unit && (a.salt ?? a.name) === (b.salt ?? b.name) && arms(a) === arms(b);
}
