import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ExperimentSchema,
  ExperimentStatusSchema,
  GetExperimentReportResponseSchema,
  ListExperimentsResponseSchema,
  RecordFeedbackResponseSchema,
  SetExperimentsResponseSchema,
  StopExperimentResponseSchema,
} from "../../../src/gen/mesh/router/v1/router_pb.js";
import type {
  Experiment,
  ExperimentAdminService as ExperimentAdminServiceDesc,
  ExperimentStatus,
  GetExperimentReportRequest,
  RecordFeedbackRequest,
  SetExperimentsRequest,
  StopExperimentRequest,
} from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { CatalogExperiment } from "../../../lib/catalog/index.js";
import { Code, meshError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { formatReportText, renderReportSvg } from "../../../lib/experiment-stats/index.js";
import type { ExperimentReportWithShadow } from "./experiment-metrics.js";
import type { ExperimentEntry, ExperimentRegistry } from "./experiment-registry.js";

/**
 * The experiments' admin API (the edge serves it as /admin/v1/experiments to
 * admin keys): set, list, report, stop, and user feedback by request id.
 */
export class ExperimentAdminService implements ServiceImpl<typeof ExperimentAdminServiceDesc> {
  constructor(
    private readonly registry: ExperimentRegistry,
    private readonly log: Logger,
    /** Called after every change (persistence: a file, or NATS for every router); a failure fails the call. */
    private readonly changed: () => void | Promise<void> = () => {},
  ) {}

  async setExperiments(req: SetExperimentsRequest) {
    const before = this.registry.snapshot();
    const entries = this.registry.set(req.experiments.map(fromProto), req.replace);
    await this.#persist(before);
    this.log.info({ experiments: entries.map((e) => e.config.name), replace: req.replace }, "experiments set");
    return create(SetExperimentsResponseSchema, { experiments: entries.map(toStatus) });
  }

  listExperiments() {
    return create(ListExperimentsResponseSchema, { experiments: this.registry.list().map(toStatus) });
  }

  getExperimentReport(req: GetExperimentReportRequest) {
    const entry = this.registry.get(req.name);
    const report = entry.measurements.report(entry.subject);
    return create(GetExperimentReportResponseSchema, {
      reportJson: JSON.stringify(report),
      text: reportText(report),
      svg: renderReportSvg(entry.measurements.history, { title: `${entry.config.name}: ${report.primaryMetric} vs ${report.control ?? "control"}` }),
    });
  }

  async stopExperiment(req: StopExperimentRequest) {
    const before = this.registry.snapshot();
    const entry = this.registry.stop(req.name);
    await this.#persist(before);
    this.log.info({ experiment: req.name }, "experiment stopped");
    return create(StopExperimentResponseSchema, { experiment: toStatus(entry) });
  }

  /** Persists a change; when that fails the registry goes back to `before` (a change not stored is not made). */
  async #persist(before: ReturnType<ExperimentRegistry["snapshot"]>): Promise<void> {
    try {
      await this.changed();
    } catch (err) {
      this.registry.load(before);
      throw err;
    }
  }

  recordFeedback(req: RecordFeedbackRequest) {
    if (!req.requestId) throw meshError(Code.InvalidArgument, "request_id is required", { param: "request_id" });
    if (req.value.case === undefined) throw meshError(Code.InvalidArgument, "value is required (a number or a boolean)", { param: "value" });
    const target = this.registry.recordFeedback({ requestId: req.requestId, metric: req.metric, value: req.value.value, keyId: req.keyId, admin: req.admin });
    return create(RecordFeedbackResponseSchema, target);
  }
}

/** The terminal text of a report, with the shadow comparison after it. */
export function reportText(report: ExperimentReportWithShadow): string {
  const main = formatReportText(report);
  return report.shadow ? `${main}\nShadow traffic (the same requests, served arm vs shadow)\n${formatReportText(report.shadow)}` : main;
}

/** A proto experiment as the catalog schema's input (validated by the registry). */
export function fromProto(e: Experiment): Record<string, unknown> {
  return {
    name: e.name,
    model: e.model,
    unit: e.unit || undefined,
    salt: e.salt || undefined,
    primary_metric: e.primaryMetric || undefined,
    arms: e.arms.map((a) => ({ backend: a.backend, weight: a.weight })),
    shadow: e.shadow ? { backend: e.shadow.backend, percent: e.shadow.percent } : undefined,
  };
}

/** A catalog experiment as its proto message. */
export function toProto(c: CatalogExperiment): Experiment {
  return create(ExperimentSchema, {
    name: c.name,
    model: c.model,
    unit: c.unit,
    salt: c.salt ?? "",
    primaryMetric: c.primary_metric ?? "",
    arms: c.arms,
    shadow: c.shadow,
  });
}

function toStatus(entry: ExperimentEntry): ExperimentStatus {
  return create(ExperimentStatusSchema, {
    experiment: toProto(entry.config),
    state: entry.state,
    requests: BigInt(entry.measurements.clusterRequests),
    since: entry.measurements.since.toISOString(),
  });
}
