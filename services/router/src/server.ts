import { RouterService as RouterServiceDesc } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { TokenizerService } from "../../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import { grpcClient, startRpcServer } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import type { RouterConfig } from "./config.js";
import { RouterService } from "./router-service.js";

export async function build(config: RouterConfig, log: Logger): Promise<RunningService & { router: RouterService }> {
  const router = new RouterService(config.catalog, grpcClient(TokenizerService, config.tokenizerAddress), log);
  const stopWatching = new AbortController();
  router.watchLoad(stopWatching.signal);
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [RouterServiceDesc.typeName],
    routes: (r) => r.service(RouterServiceDesc, router),
  });
  return {
    port: server.port,
    router,
    async close(drainMs) {
      await server.close(drainMs);
      stopWatching.abort();
    },
  };
}
