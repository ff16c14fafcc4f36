import { z } from "zod";
import { catalogSchema } from "../../../lib/catalog/index.js";
import type { Catalog } from "../../../lib/catalog/index.js";
import { jsonSchema, parseConfig, portSchema } from "../../../lib/runtime/index.js";
import { HEALTH_CHECK_INTERVAL_MS } from "./health-checker.js";
import { DEFAULT_RESOLVE_INTERVAL_MS } from "./replica-discovery.js";
import { DEFAULT_MAX_IN_FLIGHT_PER_MODEL } from "./router-service.js";

const schema = z.object({
  PORT: portSchema.default(0),
  HOST: z.string().default("127.0.0.1"),
  /** The model catalog (JSON) with each backend's replica addresses. */
  MESH_CATALOG: jsonSchema(catalogSchema),
  /** Worker threads that template and tokenize large prompts off the event loop. */
  MESH_TOKENIZER_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  /** Requests admitted per model at once; beyond it 429 with retry-after. */
  MESH_ROUTER_MAX_IN_FLIGHT_PER_MODEL: z.coerce.number().int().positive().default(DEFAULT_MAX_IN_FLIGHT_PER_MODEL),
  /** Active grpc.health.v1 checks of the replicas; 0 turns them off. */
  MESH_ROUTER_HEALTH_CHECK_INTERVAL_MS: z.coerce.number().int().min(0).default(HEALTH_CHECK_INTERVAL_MS),
  /** How often `dns:///NAME:PORT` replica addresses are resolved again. */
  MESH_ROUTER_RESOLVE_INTERVAL_MS: z.coerce.number().int().positive().default(DEFAULT_RESOLVE_INTERVAL_MS),
  /** "least-loaded-of-two" (default) or "random" (for comparison only). */
  MESH_ROUTER_REPLICA_CHOICE: z.enum(["least-loaded-of-two", "random"]).default("least-loaded-of-two"),
  /** Where experiments changed at run time are kept across restarts (JSON); unset: not kept. */
  MESH_ROUTER_EXPERIMENTS_FILE: z.string().min(1).optional(),
  /** Auth's gRPC address: models added at run time are watched there, and rate-limit admission asked there. */
  MESH_AUTH_ADDR: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  /** The launcher's file of shard addresses for models added at run time (JSON, watched). */
  MESH_ROUTER_SHARDS_FILE: z.string().min(1).optional(),
  /** Prometheus `GET /metrics` on this port (unset: not served; 0: a free port). */
  METRICS_PORT: portSchema.optional(),
  /** NATS seed servers (comma-separated): set, shards are discovered and experiments shared there (cluster mode); unset or empty, neither. */
  MESH_NATS_URL: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  /** Prefix of every NATS name (several meshes on one NATS). */
  MESH_NATS_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/)
    .default("mesh"),
  /** JetStream replicas of the router's KV buckets (3 on a 3-node NATS cluster). */
  MESH_NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
});

export interface RouterConfig {
  port: number;
  host: string;
  catalog: Catalog;
  /** Worker threads for large prompts (default 1). */
  tokenizerWorkers?: number;
  maxInFlightPerModel?: number;
  healthCheckIntervalMs?: number;
  replicaChoice?: "least-loaded-of-two" | "random";
  resolveIntervalMs?: number;
  experimentsFile?: string;
  metricsPort?: number;
  /** Auth (added models, rate-limit admission); unset: only the catalog's models, and no admission. */
  authAddress?: string;
  shardsFile?: string;
  /** Cluster mode: shards and experiments on NATS. */
  natsUrl?: string;
  natsPrefix?: string;
  natsReplicas?: number;
}

export function loadRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  const raw = parseConfig("router", schema, env);
  return {
    port: raw.PORT,
    host: raw.HOST,
    catalog: raw.MESH_CATALOG,
    tokenizerWorkers: raw.MESH_TOKENIZER_WORKERS,
    maxInFlightPerModel: raw.MESH_ROUTER_MAX_IN_FLIGHT_PER_MODEL,
    healthCheckIntervalMs: raw.MESH_ROUTER_HEALTH_CHECK_INTERVAL_MS,
    replicaChoice: raw.MESH_ROUTER_REPLICA_CHOICE,
    resolveIntervalMs: raw.MESH_ROUTER_RESOLVE_INTERVAL_MS,
    experimentsFile: raw.MESH_ROUTER_EXPERIMENTS_FILE,
    metricsPort: raw.METRICS_PORT,
    authAddress: raw.MESH_AUTH_ADDR,
    shardsFile: raw.MESH_ROUTER_SHARDS_FILE,
    natsUrl: raw.MESH_NATS_URL,
    natsPrefix: raw.MESH_NATS_PREFIX,
    natsReplicas: raw.MESH_NATS_REPLICAS,
  };
}
