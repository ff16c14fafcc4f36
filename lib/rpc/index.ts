export { HealthState, ServingStatus } from "./health.js";
export { startRpcServer } from "./server.js";
export type { RpcServer, RpcServerOptions } from "./server.js";
export { grpcClient, grpcTransport } from "./client.js";
export { checkHealth } from "./health-check.js";
