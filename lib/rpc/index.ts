export { HealthState, ServingStatus } from "./health.js";
export { startRpcServer } from "./server.js";
export type { RpcServer, RpcServerOptions } from "./server.js";
export { grpcClient, closeChannel, hasChannel } from "./client.js";
export { localClient } from "./local-client.js";
export type { ServiceRegistrar } from "./grpc-registrar.js";
export { checkHealth } from "./health-check.js";
export type { GrpcClientOptions } from "./client.js";
export {
  generateServiceToken,
  isServiceToken,
  processServiceToken,
  ServiceTokenCheck,
  SERVICE_TOKEN_ENV,
  SERVICE_TOKEN_FILE,
  SERVICE_TOKEN_METADATA,
} from "./service-token.js";
export { MAX_MESSAGE_BYTES } from "./limits.js";
