import { z } from "zod";
import { jsonSchema, parseConfig, portSchema, positiveIntSchema } from "../../../lib/runtime/index.js";

const schema = z.object({
  PORT: portSchema.default(8080),
  /** The edge faces clients; bind all interfaces unless told otherwise. */
  HOST: z.string().default("0.0.0.0"),
  MESH_AUTH_ADDR: z.string().min(1),
  MESH_ROUTER_ADDR: z.string().min(1),
  /** Services /healthz reports on (JSON object name → address); default: auth and router. */
  MESH_HEALTH_TARGETS: jsonSchema(z.record(z.string(), z.string())).optional(),
  /** Deadline of one inference request, end to end. */
  MESH_REQUEST_TIMEOUT_MS: positiveIntSchema.default(600_000),
});

export interface EdgeConfig {
  port: number;
  host: string;
  authAddress: string;
  routerAddress: string;
  healthTargets: Record<string, string>;
  requestTimeoutMs: number;
}

export function loadEdgeConfig(env: NodeJS.ProcessEnv): EdgeConfig {
  const raw = parseConfig("edge", schema, env);
  return {
    port: raw.PORT,
    host: raw.HOST,
    authAddress: raw.MESH_AUTH_ADDR,
    routerAddress: raw.MESH_ROUTER_ADDR,
    healthTargets: raw.MESH_HEALTH_TARGETS ?? { auth: raw.MESH_AUTH_ADDR, router: raw.MESH_ROUTER_ADDR },
    requestTimeoutMs: raw.MESH_REQUEST_TIMEOUT_MS,
  };
}
