import { z } from "zod";
import { catalogSchema } from "../../../lib/catalog/index.js";
import type { Catalog } from "../../../lib/catalog/index.js";
import { jsonSchema, parseConfig, portSchema } from "../../../lib/runtime/index.js";

const schema = z.object({
  PORT: portSchema.default(0),
  HOST: z.string().default("127.0.0.1"),
  /** The model catalog (JSON) with each backend's replica addresses. */
  MESH_CATALOG: jsonSchema(catalogSchema),
  /** host:port of the tokenizer service. */
  MESH_TOKENIZER_ADDR: z.string().min(1),
});

export interface RouterConfig {
  port: number;
  host: string;
  catalog: Catalog;
  tokenizerAddress: string;
}

export function loadRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  const raw = parseConfig("router", schema, env);
  return { port: raw.PORT, host: raw.HOST, catalog: raw.MESH_CATALOG, tokenizerAddress: raw.MESH_TOKENIZER_ADDR };
}
