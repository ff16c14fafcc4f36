import { z } from "zod";
import { catalogSchema } from "../../../lib/catalog/index.js";
import type { Catalog } from "../../../lib/catalog/index.js";
import { jsonSchema, parseConfig, portSchema } from "../../../lib/runtime/index.js";

const schema = z.object({
  PORT: portSchema.default(0),
  HOST: z.string().default("127.0.0.1"),
  /** The model catalog (JSON): which tokenizer file and template each model uses. */
  MESH_CATALOG: jsonSchema(catalogSchema),
});

export interface TokenizerConfig {
  port: number;
  host: string;
  catalog: Catalog;
}

export function loadTokenizerConfig(env: NodeJS.ProcessEnv): TokenizerConfig {
  const raw = parseConfig("tokenizer", schema, env);
  return { port: raw.PORT, host: raw.HOST, catalog: raw.MESH_CATALOG };
}
