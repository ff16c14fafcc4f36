import { ExperimentAdminService as ExperimentAdminServiceDesc, RouterService as RouterServiceDesc } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { Client } from "@connectrpc/connect";
import { grpcClient, startRpcServer } from "../../../lib/rpc/index.js";
import { AuthService } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { ModelAdminService } from "../../../src/gen/mesh/auth/v1/models_pb.js";
import { watchAddedModels } from "../../../lib/catalog/index.js";
import { ShardsFileWatcher } from "./shards-file.js";
import { loadTokenizers } from "../../tokenizer/src/server.js";
import { TokenizerPool } from "../../tokenizer/src/tokenizer-pool.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import type { RouterConfig } from "./config.js";
import { ExperimentAdminService } from "./experiment-admin-service.js";
import { ExperimentRegistry } from "./experiment-registry.js";
import { readExperimentsFile, writeExperimentsFile } from "./experiments-file.js";
import { HealthChecker } from "./health-checker.js";
import { RouterService } from "./router-service.js";
import { RouterMetrics } from "./router-metrics.js";
import { startMetricsServer } from "../../../lib/metrics/index.js";
import type { MetricsServer } from "../../../lib/metrics/index.js";
import { connectNats, meshNatsNames } from "../../../lib/nats/index.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsExperiments } from "./nats-experiments.js";
import { NatsReplicaDiscovery } from "./nats-replica-discovery.js";

/** What build() returns: the running router and, in cluster mode, its NATS parts. */
export type RunningRouter = RunningService & {
  router: RouterService;
  admin: ExperimentAdminService;
  tokenizers: TokenizerPool;
  metrics: RouterMetrics;
  metricsPort?: number;
  shards?: NatsReplicaDiscovery;
  experiments?: NatsExperiments;
};

/** Clients the combined topology hands in (in memory) instead of gRPC to `config.authAddress`. */
export interface RouterDeps {
  auth?: Client<typeof AuthService>;
  models?: Client<typeof ModelAdminService>;
}

export async function build(config: RouterConfig, log: Logger, deps: RouterDeps = {}): Promise<RunningRouter> {
  let nc: NatsConnection | undefined;
  let shared: NatsExperiments | undefined;
  const names = meshNatsNames(config.natsPrefix);
  const registry = new ExperimentRegistry(config.catalog.models);
  if (config.natsUrl) {
    nc = await connectNats({ url: config.natsUrl, name: "router", log });
    shared = await NatsExperiments.open(nc, names, { replicas: config.natsReplicas, log });
    registry.peers = shared;
  }
  if (config.catalog.experiments?.length) registry.set(config.catalog.experiments, false);
  const file = shared ? undefined : config.experimentsFile;
  const saved = file ? readExperimentsFile(file) : undefined;
  if (saved) {
    // What was set at run time wins over the catalog, states included.
    registry.set(
      saved.experiments.map((e) => e.config),
      false,
    );
    for (const e of saved.experiments) if (e.state === "stopped") registry.stop(e.config.name);
  }
  if (shared) await shared.attach(registry);
  const persist = async (): Promise<void> => {
    if (shared) await shared.save(registry);
    else if (file) writeExperimentsFile(file, { experiments: registry.snapshot() });
  };
  const tokenizers = new TokenizerPool(config.catalog, await loadTokenizers(config.catalog), log, { workers: config.tokenizerWorkers ?? 1 });
  let routerService: RouterService | undefined;
  const metrics = new RouterMetrics(() => routerService?.replicas() ?? []);
  const router = new RouterService(config.catalog, tokenizers, log, {
    metrics,
    experiments: registry,
    maxInFlightPerModel: config.maxInFlightPerModel,
    replicaChoice: config.replicaChoice,
    resolveIntervalMs: config.resolveIntervalMs,
    auth: deps.auth ?? (config.authAddress ? grpcClient(AuthService, config.authAddress) : undefined),
  });
  routerService = router;
  const admin = new ExperimentAdminService(registry, log, persist);
  const stopWatching = new AbortController();
  await router.discoverReplicas(stopWatching.signal);
  router.watchLoad(stopWatching.signal);
  let shards: NatsReplicaDiscovery | undefined;
  if (nc) {
    shards = new NatsReplicaDiscovery(nc, names, (model, backend) => router.replicaSet(model, backend), log);
    await shards.start(stopWatching.signal);
  }
  const shardsFile = config.shardsFile ? new ShardsFileWatcher(config.shardsFile, (model, backend) => router.replicaSet(model, backend), log) : undefined;
  shardsFile?.start(stopWatching.signal);
  const models = deps.models ?? (config.authAddress ? grpcClient(ModelAdminService, config.authAddress) : undefined);
  if (models) {
    // Models added and removed at run time, from wherever auth keeps them (SQLite, or NATS KV shared by every mesh).
    const listener = {
      added: async (model: Parameters<RouterService["addModel"]>[0]) => {
        if (router.sourceOf(model.name) === "catalog")
          return void log.warn({ model: model.name }, "an added model has a catalog model's name; the catalog's is served");
        const [tokenizer] = (await loadTokenizers({ models: [model] })).values();
        tokenizers.addModel(model, tokenizer);
        router.addModel(model);
        shardsFile?.apply();
        // Shards announced on NATS before the model was known are taken at their next heartbeat.
        log.info({ model: model.name }, "serving an added model");
      },
      removed: (name: string) => {
        if (!router.removeModel(name)) return;
        tokenizers.removeModel(name);
        log.info({ model: name }, "an added model was removed; requests running on it finish");
      },
    };
    void watchAddedModels(
      models,
      {
        added: (model) =>
          listener.added(model).catch((err: unknown) => log.error({ model: model.name, err: (err as Error).message }, "cannot serve an added model")),
        removed: listener.removed,
      },
      stopWatching.signal,
      log,
    );
  }
  if (config.healthCheckIntervalMs !== 0) new HealthChecker(() => router.replicas(), log, config.healthCheckIntervalMs).start(stopWatching.signal);
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [RouterServiceDesc.typeName, ExperimentAdminServiceDesc.typeName],
    routes: (r) => {
      r.service(RouterServiceDesc, router);
      r.service(ExperimentAdminServiceDesc, admin);
    },
  });
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await startMetricsServer(metrics.registry, { host: config.host, port: config.metricsPort });
    log.info({ port: metricsServer.port }, "metrics on GET /metrics");
  }
  return {
    port: server.port,
    metricsPort: metricsServer?.port,
    metrics,
    router,
    admin,
    tokenizers,
    shards,
    experiments: shared,
    async close(drainMs) {
      await server.close(drainMs);
      await metricsServer?.close();
      stopWatching.abort();
      if (shared) {
        await shared.publish(registry);
        shared.stop();
      }
      await nc?.close().catch(() => {});
      await tokenizers.close();
    },
  };
}
