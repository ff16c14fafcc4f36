import { z } from "zod";
import { parseConfig, portSchema } from "../../../lib/runtime/index.js";

const schema = z.object({
  PORT: portSchema.default(0),
  HOST: z.string().default("127.0.0.1"),
  /** Where the SQLite file, the first key and the admin token live. */
  MESH_DATA_DIR: z.string().default(".mesh"),
  /** Registers this exact key on first start (for scripts and CI). */
  MESH_BOOTSTRAP_API_KEY: z.string().optional(),
  /** The operator's admin token; else `<data dir>/admin-token` if present; else the admin API is closed. */
  MESH_ADMIN_TOKEN: z.string().optional(),
  /** Where accounts, keys and usage live: the embedded SQLite file, or NATS JetStream (scale-out). */
  MESH_STORE: z.enum(["sqlite", "nats"]).default("sqlite"),
  /** NATS servers for MESH_STORE=nats: one URL or a comma-separated cluster seed list. */
  MESH_NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  /** JetStream replicas of the auth bucket and streams (3 on a 3-node cluster). */
  MESH_NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** Prefix of bucket, stream and subject names, so meshes can share one NATS. */
  MESH_NATS_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/)
    .default("mesh"),
  /** Prometheus `GET /metrics` on this port (unset: not served; 0: a free port). */
  METRICS_PORT: portSchema.optional(),
});

export interface AuthConfig {
  port: number;
  host: string;
  dataDir: string;
  bootstrapApiKey: string | undefined;
  adminToken?: string | undefined;
  /** Store selection; absent means the SQLite defaults. */
  store?: "sqlite" | "nats";
  natsUrl?: string;
  natsReplicas?: number;
  natsPrefix?: string;
  metricsPort?: number;
}

export function loadAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const raw = parseConfig("auth", schema, env);
  return {
    port: raw.PORT,
    host: raw.HOST,
    dataDir: raw.MESH_DATA_DIR,
    bootstrapApiKey: raw.MESH_BOOTSTRAP_API_KEY || undefined,
    adminToken: raw.MESH_ADMIN_TOKEN || undefined,
    store: raw.MESH_STORE,
    natsUrl: raw.MESH_NATS_URL,
    metricsPort: raw.METRICS_PORT,
    natsReplicas: raw.MESH_NATS_REPLICAS,
    natsPrefix: raw.MESH_NATS_PREFIX,
  };
}
