import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { Catalog } from "../../lib/catalog/index.js";
import { catalogSchema } from "../../lib/catalog/index.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { build as buildAuth } from "../../services/auth/src/server.js";
import { build as buildEdge } from "../../services/edge/src/server.js";
import { build as buildRouter } from "../../services/router/src/server.js";
import { build as buildShard } from "../../services/model-shard/src/server.js";
import { build as buildTokenizer } from "../../services/tokenizer/src/server.js";
import { TEST_API_KEY } from "./mesh-process.js";

export type InProcessMesh = Awaited<ReturnType<typeof startInProcessMesh>>;

/**
 * All five services in this process, each its own real gRPC server on a
 * port-0 loopback socket (the edge's HTTP port too), on the tiny model.
 */
export async function startInProcessMesh(options: { sequences?: number; upstreamUrl?: string; adminToken?: string; routerMaxInFlight?: number } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "mesh-int-"));
  const modelPath = path.join(dir, "tiny.gguf");
  await writeTinyModel(modelPath);
  const log = createLogger("test");
  log.level = "warn";
  const backend = { name: "local", engine: "llama.cpp", model: modelPath, sequences: options.sequences ?? 2, threads: 1, gpu: false };
  const shard = await buildShard(
    { port: 0, host: "127.0.0.1", model: "tiny-llama", backend: catalogSchema.parse({ models: [{ name: "x", backends: [backend] }] }).models[0].backends[0] },
    log,
  );
  // With `upstreamUrl`: a second model, "upstream", served by an openai-upstream backend (tokenized with the tiny GGUF).
  const upstreamBackend = { name: "up", engine: "openai-upstream", url: options.upstreamUrl ?? "http://127.0.0.1:1/v1", upstream_model: "fake-model" };
  const upstreamShard = options.upstreamUrl
    ? await buildShard(
        {
          port: 0,
          host: "127.0.0.1",
          model: "upstream",
          backend: catalogSchema.parse({ models: [{ name: "x", tokenizer: modelPath, backends: [upstreamBackend] }] }).models[0].backends[0],
        },
        log,
      )
    : undefined;
  const catalog: Catalog = catalogSchema.parse({
    models: [
      { name: "tiny-llama", backends: [{ ...backend, addresses: [`127.0.0.1:${shard.port}`] }] },
      ...(upstreamShard
        ? [{ name: "upstream", tokenizer: modelPath, backends: [{ ...upstreamBackend, addresses: [`127.0.0.1:${upstreamShard.port}`] }] }]
        : []),
    ],
  });
  const tokenizer = await buildTokenizer({ port: 0, host: "127.0.0.1", catalog }, log);
  const auth = await buildAuth({ port: 0, host: "127.0.0.1", dataDir: dir, bootstrapApiKey: TEST_API_KEY, adminToken: options.adminToken }, log);
  const router = await buildRouter(
    { port: 0, host: "127.0.0.1", catalog, maxInFlightPerModel: options.routerMaxInFlight, authAddress: `127.0.0.1:${auth.port}` },
    log,
  );
  const edge = await buildEdge(
    {
      port: 0,
      host: "127.0.0.1",
      authAddress: `127.0.0.1:${auth.port}`,
      routerAddress: `127.0.0.1:${router.port}`,
      healthTargets: {
        auth: `127.0.0.1:${auth.port}`,
        router: `127.0.0.1:${router.port}`,
        tokenizer: `127.0.0.1:${tokenizer.port}`,
        shard: `127.0.0.1:${shard.port}`,
      },
      requestTimeoutMs: 30_000,
    },
    log,
  );
  return {
    url: `http://127.0.0.1:${edge.port}`,
    /** The tiny GGUF the shard serves. */
    modelPath,
    shard,
    tokenizer,
    auth,
    router,
    edge,
    async stop() {
      for (const service of [edge, router, tokenizer, auth, shard, ...(upstreamShard ? [upstreamShard] : [])]) await service.close(1_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
