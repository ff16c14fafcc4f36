import { catalogSchema } from "../../lib/catalog/index.js";
import type { LlamaCppBackend } from "../../lib/catalog/index.js";

/** A llama.cpp backend entry on `model` as the catalog parses it (CPU, one thread), with `extra` over the defaults. */
export function llamaBackend(model: string, extra: Record<string, unknown> = {}): LlamaCppBackend {
  const catalog = catalogSchema.parse({ models: [{ name: "t", backends: [{ name: "l", engine: "llama.cpp", model, gpu: false, threads: 1, ...extra }] }] });
  return catalog.models[0].backends[0] as LlamaCppBackend;
}
