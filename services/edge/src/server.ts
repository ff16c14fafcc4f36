import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@connectrpc/connect";
import { AuthService, KeyAdminService } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { ExperimentAdminService, RouterService } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { InferenceService } from "../../../src/gen/mesh/inference/v1/inference_pb.js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { grpcClient, HealthState, ServingStatus } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import type { EdgeConfig } from "./config.js";
import { EdgeMetrics } from "./edge-metrics.js";
import { GenerationTelemetry } from "./generation-telemetry.js";
import { EdgeHttpApi, MAX_BODY_BYTES, readJson } from "./http-api.js";
import { ADMIN_ROUTES, AdminApi } from "./admin/admin-api.js";
import { ModelsApi } from "./admin/models-api.js";
import { ModelAdminService } from "../../../src/gen/mesh/auth/v1/models_pb.js";
import { Admission } from "./admission.js";
import { limitConcurrency } from "./concurrency-gate.js";
import { InferenceServiceImpl } from "./inference/inference-service.js";
import { AdminTokenCheck } from "./admin/admin-token-check.js";
import { EXPERIMENT_ROUTES, ExperimentsApi } from "./experiments/experiments-api.js";
import { adminRouteTable, ConsoleHandler } from "./console/index.js";
import { listenDualProtocol } from "./http-listener.js";
import { ChatCompletions } from "./openai/chat-completions.js";
import { Completions } from "./openai/completions.js";
import { Generations } from "./openai/generation.js";
import { Responses } from "./openai/responses.js";
import { Embeddings } from "./openai/embeddings.js";
import { PrincipalCache } from "./principal-cache.js";
import { UsageRecorder } from "./usage-recorder.js";

/** connect-es takes a `textDecoder` beside its JSON read options (JsonSerializationOptions); unknown fields stay ignored, its default. */
const STRICT_JSON_DECODING = { ignoreUnknownFields: true, textDecoder: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }) };

/** The clients the edge calls: gRPC to the configured addresses, or in process (combined topology). */
export interface EdgeClients {
  auth: Client<typeof AuthService>;
  keyAdmin: Client<typeof KeyAdminService>;
  router: Client<typeof RouterService>;
  experimentAdmin: Client<typeof ExperimentAdminService>;
  /** Models added at run time (auth); absent: /admin/v1/models answers 404. */
  modelAdmin?: Client<typeof ModelAdminService>;
}

/** Builds and starts the edge: OpenAI REST on HTTP/1.1 and h2c, one port. */
export async function build(
  config: EdgeConfig,
  log: Logger,
  clients: EdgeClients = grpcClients(config),
): Promise<RunningService & { principals: PrincipalCache }> {
  const { auth, router } = clients;
  const principals = new PrincipalCache(auth, log);
  const stopWatch = new AbortController();
  void principals.follow(stopWatch.signal);
  const usage = new UsageRecorder(auth, log);
  const admission = new Admission(auth);
  // Per-key concurrency limits (keys' max_concurrent) in front of rate-limit admission.
  const metrics = new EdgeMetrics();
  const generations = limitConcurrency(new Generations(router, usage, config.requestTimeoutMs, admission, new GenerationTelemetry(metrics.registry)));
  const admin = new AdminApi(clients.keyAdmin, readJson, clients.modelAdmin ? new ModelsApi(clients.modelAdmin, router) : undefined);
  const chat = new ChatCompletions(generations);
  const completions = new Completions(generations);
  const adminToken = new AdminTokenCheck(clients.keyAdmin);
  const experiments = new ExperimentsApi({ experiments: clients.experimentAdmin, requireAdmin: (req) => adminToken.require(req), readJson });
  const embeddings = new Embeddings(router, usage, config.requestTimeoutMs, admission);
  const apis = { "/v1/responses": new Responses(generations), "/v1/embeddings": embeddings };
  const consolePage = new ConsoleHandler({
    keyAdmin: clients.keyAdmin,
    adminRoutes: adminRouteTable([
      { routes: ADMIN_ROUTES, handle: (req, res, route, rc) => admin.handle(req, res, route, rc) },
      { routes: EXPERIMENT_ROUTES, handle: (req, res, route, rc) => experiments.admin(req, res, route, rc) },
    ]),
    log,
  });
  const edge = new EdgeHttpApi({
    router,
    principals,
    chat,
    completions,
    apis,
    healthTargets: config.healthTargets,
    log,
    admin,
    experiments,
    console: consolePage.handle,
    metrics,
    streamStallMs: config.streamStallMs,
  });
  const inference = new InferenceServiceImpl({ generations, principals, router, log, embeddings });
  const health = new HealthState([]);
  const rpc = connectNodeAdapter({
    grpc: true,
    grpcWeb: true,
    connect: true,
    readMaxBytes: MAX_BODY_BYTES,
    // Connect's JSON bodies, like the REST ones, must be UTF-8: invalid bytes are InvalidArgument, not U+FFFD.
    jsonOptions: STRICT_JSON_DECODING,
    routes: (r) => {
      health.register(r);
      r.service(InferenceService, inference);
    },
  });
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    if (isRpcPath(req.url)) rpc(req, res);
    else edge.listener(req, res);
  };
  const server = await listenDualProtocol(
    config.host,
    config.port,
    route,
    (req, res) => route(req as unknown as IncomingMessage, res as unknown as ServerResponse),
    config.connections,
    config.connectionSource,
  );
  health.setAll(ServingStatus.SERVING);
  return {
    port: server.port,
    principals,
    async close(drainMs) {
      health.setAll(ServingStatus.NOT_SERVING);
      await server.close(drainMs);
      stopWatch.abort();
      await usage.flush();
    },
  };
}

/**
 * gRPC clients of auth and the router. `llm-mesh up` runs one of each, so the edge's calls ride
 * out their restarts: they wait while the channel reconnects and are tried again when the peer
 * went away before answering, within each call's deadline (docs/reliability.md, R6).
 */
function grpcClients(config: EdgeConfig): EdgeClients {
  const options = { rideOutRestarts: true };
  return {
    auth: grpcClient(AuthService, config.authAddress, options),
    keyAdmin: grpcClient(KeyAdminService, config.authAddress, options),
    router: grpcClient(RouterService, config.routerAddress, options),
    experimentAdmin: grpcClient(ExperimentAdminService, config.routerAddress, options),
    modelAdmin: grpcClient(ModelAdminService, config.authAddress, options),
  };
}

/** RPC paths ("/package.Service/Method") go to the Connect/gRPC handler, the rest is REST. */
function isRpcPath(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith("/grpc.") || url.startsWith("/mesh."));
}
