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
});

export interface AuthConfig {
  port: number;
  host: string;
  dataDir: string;
  bootstrapApiKey: string | undefined;
  adminToken?: string | undefined;
}

export function loadAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const raw = parseConfig("auth", schema, env);
  return {
    port: raw.PORT,
    host: raw.HOST,
    dataDir: raw.MESH_DATA_DIR,
    bootstrapApiKey: raw.MESH_BOOTSTRAP_API_KEY || undefined,
    adminToken: raw.MESH_ADMIN_TOKEN || undefined,
  };
}
