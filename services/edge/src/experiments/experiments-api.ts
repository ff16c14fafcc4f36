import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@connectrpc/connect";
import { z } from "zod";
import type { Principal } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { Experiment, ExperimentAdminService, ExperimentStatus } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import { HttpError } from "../openai/errors.js";
import type { HTTPMethod } from "find-my-way";
import { parseBody } from "../request-parsing.js";

/** Where the experiments admin API lives on the edge. */
export const EXPERIMENTS_PREFIX = "/admin/v1/experiments";
/** The public feedback endpoint. */
export const FEEDBACK_PATH = "/v1/feedback";
const ADMIN_TIMEOUT_MS = 10_000;
/** Response id prefixes the client may send back instead of the bare request id. */
const ID_PREFIXES = /^(chatcmpl-|cmpl-)/;

const armBody = z.object({ backend: z.string().min(1), weight: z.number() });
const experimentBody = z.object({
  name: z.string().min(1),
  model: z.string().min(1),
  unit: z.enum(["user", "key"]).optional(),
  salt: z.string().optional(),
  primary_metric: z.string().optional(),
  arms: z.array(armBody).min(1),
  shadow: z.object({ backend: z.string().min(1), percent: z.number() }).optional(),
});
const setBody = z.object({ experiments: z.array(experimentBody).max(256), replace: z.boolean().optional() });
const feedbackBody = z.object({
  request_id: z.string().min(1).max(160),
  metric: z.string().min(1).max(64),
  value: z.union([z.number(), z.boolean()]),
});

/** The experiment admin routes (method, path, the handler's case). */
export const EXPERIMENT_ROUTES: ReadonlyArray<readonly [HTTPMethod, string, string]> = [
  ["GET", EXPERIMENTS_PREFIX, "GET "],
  ["POST", EXPERIMENTS_PREFIX, "POST "],
  ["PUT", EXPERIMENTS_PREFIX, "PUT "],
  ["GET", `${EXPERIMENTS_PREFIX}/:name`, "GET :name"],
  ["GET", `${EXPERIMENTS_PREFIX}/:name/report`, "GET :name/report"],
  ["POST", `${EXPERIMENTS_PREFIX}/:name/stop`, "POST :name/stop"],
];

/** What the experiments API needs. */
export interface ExperimentsApiDeps {
  experiments: Client<typeof ExperimentAdminService>;
  /** Resolves when the request carries a valid admin token; throws a 401 HttpError otherwise. */
  requireAdmin: (req: IncomingMessage) => Promise<void>;
  readJson: (req: IncomingMessage) => Promise<unknown>;
}

/**
 * The experiments' REST face, over the router's ExperimentAdminService:
 *
 *   POST /v1/feedback {request_id, metric, value}     (any API key: its own requests)
 *   GET  /admin/v1/experiments                         (admin token from here on)
 *   POST /admin/v1/experiments {experiments: [...], replace}
 *   GET  /admin/v1/experiments/{name}
 *   GET  /admin/v1/experiments/{name}/report[?format=json|text|svg|all]   (all: {report, text, svg})
 *   POST /admin/v1/experiments/{name}/stop
 */
export class ExperimentsApi {
  constructor(private readonly deps: ExperimentsApiDeps) {}

  /** POST /v1/feedback for an authenticated principal. */
  async feedback(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    const body = parseBody(feedbackBody, await this.deps.readJson(req));
    const requestId = body.request_id.replace(ID_PREFIXES, "");
    const value = typeof body.value === "boolean" ? { case: "flag" as const, value: body.value } : { case: "number" as const, value: body.value };
    const target = await this.deps.experiments.recordFeedback(
      { requestId, metric: body.metric, value, keyId: principal.keyId, admin: principal.admin },
      { timeoutMs: ADMIN_TIMEOUT_MS },
    );
    send(res, 200, { object: "feedback", request_id: requestId, metric: body.metric, experiment: target.experiment, arm: target.arm });
  }

  /** Everything under /admin/v1/experiments. */
  async admin(
    req: IncomingMessage,
    res: ServerResponse,
    route: string,
    rc: { params: Record<string, string | undefined>; query: URLSearchParams },
  ): Promise<void> {
    await this.deps.requireAdmin(req);
    const call = { timeoutMs: ADMIN_TIMEOUT_MS };
    const name = rc.params.name;
    switch (route) {
      case "GET ": {
        const { experiments } = await this.deps.experiments.listExperiments({}, call);
        return send(res, 200, { object: "list", data: experiments.map(statusJson) });
      }
      case "POST ":
      case "PUT ": {
        const body = parseBody(setBody, await this.deps.readJson(req));
        const { experiments } = await this.deps.experiments.setExperiments(
          { experiments: body.experiments.map(toProtoInit), replace: body.replace ?? false },
          call,
        );
        return send(res, 200, { object: "list", data: experiments.map(statusJson) });
      }
      case "GET :name": {
        const { experiments } = await this.deps.experiments.listExperiments({}, call);
        const found = experiments.find((e) => e.experiment?.name === name);
        if (!found) throw new HttpError(404, `no experiment "${name}"`, "invalid_request_error", "name", "experiment_not_found");
        return send(res, 200, statusJson(found));
      }
      case "GET :name/report": {
        const report = await this.deps.experiments.getExperimentReport({ name: name! }, call);
        const format = rc.query.get("format") ?? "json";
        if (format === "text") return sendText(res, "text/plain; charset=utf-8", report.text);
        if (format === "svg") return sendText(res, "image/svg+xml", report.svg);
        if (format === "all")
          return sendText(res, "application/json", `{"report":${report.reportJson},"text":${JSON.stringify(report.text)},"svg":${JSON.stringify(report.svg)}}`);
        if (format !== "json") throw new HttpError(400, "format must be json, text, svg or all", "invalid_request_error", "format", "invalid_value");
        return sendText(res, "application/json", report.reportJson);
      }
      case "POST :name/stop": {
        const { experiment } = await this.deps.experiments.stopExperiment({ name: name! }, call);
        return send(res, 200, statusJson(experiment!));
      }
      default:
        throw new HttpError(404, `Unknown admin URL: ${req.method} ${req.url}`, "invalid_request_error", null, "unknown_url");
    }
  }
}

/** An experiment status as the REST API shows it (the mesh.yaml shape plus state). */
export function statusJson(s: ExperimentStatus) {
  return { object: "experiment", ...experimentJson(s.experiment!), state: s.state, requests: Number(s.requests), since: s.since };
}

function experimentJson(e: Experiment) {
  return {
    name: e.name,
    model: e.model,
    unit: e.unit,
    ...(e.salt ? { salt: e.salt } : {}),
    ...(e.primaryMetric ? { primary_metric: e.primaryMetric } : {}),
    arms: e.arms.map((a) => ({ backend: a.backend, weight: a.weight })),
    ...(e.shadow ? { shadow: { backend: e.shadow.backend, percent: e.shadow.percent } } : {}),
  };
}

function toProtoInit(e: z.infer<typeof experimentBody>) {
  return { name: e.name, model: e.model, unit: e.unit ?? "", salt: e.salt ?? "", primaryMetric: e.primary_metric ?? "", arms: e.arms, shadow: e.shadow };
}

function send(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, "application/json", JSON.stringify(value), status);
}

function sendText(res: ServerResponse, contentType: string, body: string, status = 200): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

/** Header an admin key sends to force an experiment arm (a backend of the model). */
export const FORCE_BACKEND_HEADER = "x-mesh-force-backend";

/** The forced arm of a request: allowed for admin keys only (403 for others). */
export function forcedBackend(req: IncomingMessage, principal: Principal): string | undefined {
  const value = req.headers[FORCE_BACKEND_HEADER];
  if (typeof value !== "string" || value === "") return undefined;
  if (!principal.admin)
    throw new HttpError(403, `Only admin keys may send ${FORCE_BACKEND_HEADER}`, "invalid_request_error", FORCE_BACKEND_HEADER, "permission_denied");
  return value;
}
