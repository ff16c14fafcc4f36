import { AuthService, KeyAdminService } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { ModelAdminService } from "../../../src/gen/mesh/auth/v1/models_pb.js";
import { ExperimentAdminService, RouterService } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { localClient } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import { build as buildAuth } from "../../auth/src/server.js";
import { loadAuthConfig } from "../../auth/src/config.js";
import { build as buildEdge } from "../../edge/src/server.js";
import { loadEdgeConfig } from "../../edge/src/config.js";
import { build as buildRouter } from "../../router/src/server.js";
import { loadRouterConfig } from "../../router/src/config.js";
import { build as buildTokenizer } from "../../tokenizer/src/server.js";
import { loadTokenizerConfig } from "../../tokenizer/src/config.js";

/** Where the in-process services' own gRPC servers listen (health, and gRPC callers such as tests and tools). */
const INTERNAL_PORT = "0";

/**
 * The combined topology: edge, auth, router and tokenizer in one process.
 * The edge calls auth and the router through the same generated service
 * interfaces as in split, in memory (`localClient`: no serialization, no
 * socket); the router tokenizes in process as it always does; model shards
 * stay their own processes over gRPC. Auth, router and tokenizer still serve
 * gRPC on loopback ports of their own for health checks and gRPC callers.
 * Configuration is the union of the four services' (one environment), with
 * PORT and HOST for the edge.
 */
export async function build(env: NodeJS.ProcessEnv, log: Logger): Promise<RunningService> {
  // METRICS_PORT set: auth and the router each serve metrics on a free port of their own (logged), not on one shared number.
  const internal = { ...env, PORT: INTERNAL_PORT, HOST: "127.0.0.1", METRICS_PORT: env.METRICS_PORT === undefined ? undefined : INTERNAL_PORT };
  // MESH_COMBINED_AUTH_PORT: the launcher watches auth's added models on a port it chose.
  const auth = await buildAuth(loadAuthConfig({ ...internal, PORT: env.MESH_COMBINED_AUTH_PORT ?? INTERNAL_PORT }), log.child({ service: "auth" }));
  // The router watches added models and asks rate-limit admission of auth in memory.
  const router = await buildRouter(loadRouterConfig(internal), log.child({ service: "router" }), {
    auth: localClient(AuthService, auth.auth),
    models: localClient(ModelAdminService, auth.models),
  });
  // One copy of every vocabulary in the process: the tokenizer service serves the router's.
  const tokenizer = await buildTokenizer(loadTokenizerConfig(internal), log.child({ service: "tokenizer" }), router.tokenizers.loaded);
  const authAddress = `127.0.0.1:${auth.port}`;
  const routerAddress = `127.0.0.1:${router.port}`;
  const edgeEnv = {
    ...env,
    MESH_AUTH_ADDR: authAddress,
    MESH_ROUTER_ADDR: routerAddress,
    // The launcher names the shards; the in-process services are added here.
    MESH_HEALTH_TARGETS: JSON.stringify({
      ...(env.MESH_HEALTH_TARGETS ? (JSON.parse(env.MESH_HEALTH_TARGETS) as Record<string, string>) : {}),
      auth: authAddress,
      router: routerAddress,
      tokenizer: `127.0.0.1:${tokenizer.port}`,
    }),
  };
  const edge = await buildEdge(loadEdgeConfig(edgeEnv), log.child({ service: "edge" }), {
    auth: localClient(AuthService, auth.auth),
    keyAdmin: localClient(KeyAdminService, auth.admin),
    router: localClient(RouterService, router.router),
    experimentAdmin: localClient(ExperimentAdminService, router.admin),
    modelAdmin: localClient(ModelAdminService, auth.models),
  });
  return {
    port: edge.port,
    async close(drainMs) {
      // Front to back, as the launcher stops split processes.
      await edge.close(drainMs);
      await router.close(drainMs);
      await tokenizer.close(drainMs);
      await auth.close(drainMs);
    },
  };
}
