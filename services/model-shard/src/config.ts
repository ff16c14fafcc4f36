import { z } from "zod";
import { backendSchema } from "../../../lib/catalog/index.js";
import { jsonSchema, parseConfig, portSchema } from "../../../lib/runtime/index.js";

const schema = z.object({
  PORT: portSchema.default(0),
  HOST: z.string().default("127.0.0.1"),
  /** The model name this shard serves, as the catalog knows it. */
  MESH_SHARD_MODEL: z.string().min(1),
  /** The backend entry of the catalog (JSON), engine settings included. */
  MESH_SHARD_BACKEND: jsonSchema(backendSchema),
  /** Serves Prometheus `GET /metrics` on this port (0: a free one); unset: no metrics listener. */
  METRICS_PORT: portSchema.optional(),
  /** NATS seed servers (comma-separated): set, the shard announces itself there for routers to find; unset or empty, it does not. */
  MESH_NATS_URL: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  /** Prefix of every NATS name (several meshes on one NATS). */
  MESH_NATS_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/)
    .default("mesh"),
  /** The "host:port" announced to routers; default: HOST:PORT, or this machine's first IPv4 address when HOST is 0.0.0.0. */
  MESH_SHARD_ADVERTISE_ADDR: z
    .string()
    .regex(/^[^\s]+:\d{1,5}$/, "host:port")
    .optional(),
});

/** model-shard's configuration, from the environment. */
export interface ShardConfig {
  port: number;
  host: string;
  model: string;
  backend: z.infer<typeof backendSchema>;
  /** Prometheus `GET /metrics` port (0: a free one); absent: off. */
  metricsPort?: number;
  /** Announce on NATS (cluster mode). */
  natsUrl?: string;
  natsPrefix?: string;
  advertiseAddress?: string;
}

export function loadShardConfig(env: NodeJS.ProcessEnv): ShardConfig {
  const raw = parseConfig("model-shard", schema, env);
  return {
    port: raw.PORT,
    host: raw.HOST,
    model: raw.MESH_SHARD_MODEL,
    backend: raw.MESH_SHARD_BACKEND,
    metricsPort: raw.METRICS_PORT,
    natsUrl: raw.MESH_NATS_URL,
    natsPrefix: raw.MESH_NATS_PREFIX,
    advertiseAddress: raw.MESH_SHARD_ADVERTISE_ADDR,
  };
}
