import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { grpcClient } from "./client.js";

/** Asks a service's overall `grpc.health.v1` status; false on any failure. */
export async function checkHealth(address: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    const res = await grpcClient(Health, address).check({ service: "" }, { timeoutMs });
    return res.status === ServingStatus.SERVING;
  } catch {
    return false;
  }
}
