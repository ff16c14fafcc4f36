import { ShardService as ShardServiceDesc } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { startRpcServer } from "../../../lib/rpc/index.js";
import { startMetricsServer } from "../../../lib/metrics/index.js";
import type { MetricsServer } from "../../../lib/metrics/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import { Code, meshError } from "../../../lib/errors.js";
import type { ShardConfig } from "./config.js";
import type { Embedder, Engine } from "./engine.js";
import { OpenAIUpstreamEngine } from "./engines/openai-upstream-engine.js";
import { SimEngine } from "./engines/sim-engine.js";
import { ShardService } from "./shard-service.js";
import { ShardMetrics } from "./shard-metrics.js";
import { ShardAnnouncer, advertisedAddress } from "./shard-announcer.js";
import { connectNats, meshNatsNames } from "../../../lib/nats/index.js";
import { SlotPool } from "./slot-pool.js";

/** Creates the engine a backend entry names. */
export async function createEngine(config: ShardConfig, log?: Logger): Promise<Engine> {
  const backend = config.backend;
  switch (backend.engine) {
    case "llama.cpp": {
      if (backend.runtime === "llama-server") {
        const { LlamaServerEngine } = await import("./engines/llama-server-engine.js");
        return LlamaServerEngine.create(config.model, backend, log);
      }
      // Imported only here: node-llama-cpp takes about a second to load, which an upstream or sim shard (one added at run time, say) need not wait for.
      const { LlamaCppEngine } = await import("./engines/llama-cpp-engine.js");
      return LlamaCppEngine.create(config.model, backend, log);
    }
    case "openai-upstream":
      return new OpenAIUpstreamEngine(config.model, backend);
    case "sim":
      return new SimEngine(config.model, backend);
    default:
      throw meshError(Code.Unimplemented, `engine "${(backend as { engine: string }).engine}" is not available in this build`);
  }
}

/** What embeds for an engine: llama.cpp's embedding context on the same model, an upstream's /embeddings. */
async function embedderOf(engine: Engine, config: ShardConfig): Promise<Embedder | undefined> {
  if (config.backend.engine === "llama.cpp") {
    // Loaded already by createEngine (a cached import).
    const [{ LlamaCppEngine }, { LlamaEmbedder }] = await Promise.all([import("./engines/llama-cpp-engine.js"), import("./engines/llama-embeddings.js")]);
    if (engine instanceof LlamaCppEngine) return new LlamaEmbedder(engine.model, engine.threads.threads);
  }
  if (engine instanceof OpenAIUpstreamEngine) return engine;
  return undefined;
}

/** Builds and starts model-shard around an engine. */
export async function build(
  config: ShardConfig,
  log: Logger,
  engine?: Engine,
): Promise<RunningService & { engine: Engine; pool: SlotPool; metricsPort?: number; announcer?: ShardAnnouncer }> {
  const theEngine = engine ?? (await createEngine(config, log));
  if (theEngine.info.engine === "sim") log.warn({ model: config.model }, "this shard runs the load-test SIMULATOR: placeholder tokens, no model");
  const pool = new SlotPool(theEngine.info.maxSequences, config.backend.max_queue);
  const metrics = config.metricsPort === undefined ? undefined : new ShardMetrics(config.model, pool);
  const service = new ShardService(theEngine, pool, log, metrics, await embedderOf(theEngine, config));
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [ShardServiceDesc.typeName],
    routes: (router) => router.service(ShardServiceDesc, service),
  });
  let metricsServer: MetricsServer | undefined;
  if (metrics) {
    metricsServer = await startMetricsServer(metrics.registry, { host: config.host, port: config.metricsPort! });
    log.info({ port: metricsServer.port }, "metrics on GET /metrics");
  }
  let announcer: ShardAnnouncer | undefined;
  if (config.natsUrl) {
    const nc = await connectNats({ url: config.natsUrl, name: `model-shard ${config.model}`, log });
    const address = config.advertiseAddress ?? advertisedAddress(config.host, server.port);
    announcer = new ShardAnnouncer(
      nc,
      meshNatsNames(config.natsPrefix),
      { address, model: config.model, backend: config.backend.name, engine: theEngine.info.engine, pool },
      log,
    );
    announcer.start();
  }
  return {
    port: server.port,
    engine: theEngine,
    pool,
    metricsPort: metricsServer?.port,
    announcer,
    async close(drainMs: number) {
      // Leave the routers' pools first, so no new request comes while draining.
      if (announcer) {
        await announcer.stop();
        await announcer.nc.close().catch(() => {});
      }
      await server.close(drainMs);
      await metricsServer?.close();
      await theEngine.close();
    },
  };
}
