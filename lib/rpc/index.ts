export { HealthState, ServingStatus } from "./health.js";
export { startRpcServer } from "./server.js";
export type { RpcServer, RpcServerOptions } from "./server.js";
export { grpcClient } from "./client.js";
export { localClient } from "./local-client.js";
export type { ServiceRegistrar } from "./grpc-router.js";
export { checkHealth } from "./health-check.js";
