import type { IncomingMessage, ServerResponse } from "node:http";
import { AuthService } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { RouterService } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { grpcClient, HealthState, ServingStatus } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import type { EdgeConfig } from "./config.js";
import { EdgeService } from "./edge-service.js";
import { listenDualProtocol } from "./http-listener.js";
import { ChatCompletions } from "./openai/chat-completions.js";
import { PrincipalCache } from "./principal-cache.js";
import { UsageRecorder } from "./usage-recorder.js";

/** Builds and starts the edge: OpenAI REST on HTTP/1.1 and h2c, one port. */
export async function build(config: EdgeConfig, log: Logger): Promise<RunningService & { principals: PrincipalCache }> {
  const auth = grpcClient(AuthService, config.authAddress);
  const router = grpcClient(RouterService, config.routerAddress);
  const principals = new PrincipalCache(auth, log);
  const stopWatch = new AbortController();
  void principals.follow(stopWatch.signal);
  const usage = new UsageRecorder(auth, log);
  const chat = new ChatCompletions(router, usage, config.requestTimeoutMs);
  const edge = new EdgeService({ router, principals, chat, healthTargets: config.healthTargets, log });
  const health = new HealthState([]);
  const rpc = connectNodeAdapter({ grpc: true, grpcWeb: true, connect: true, routes: (r) => health.register(r) });
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    if (isRpcPath(req.url)) rpc(req, res);
    else edge.listener(req, res);
  };
  const server = await listenDualProtocol(config.host, config.port, route, (req, res) =>
    route(req as unknown as IncomingMessage, res as unknown as ServerResponse),
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

/** RPC paths ("/package.Service/Method") go to the Connect/gRPC handler, the rest is REST. */
function isRpcPath(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith("/grpc.") || url.startsWith("/mesh."));
}
