import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { TokenizerService as TokenizerServiceDesc } from "../../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import { tokenizerSource } from "../../../lib/catalog/index.js";
import type { Catalog } from "../../../lib/catalog/index.js";
import { startRpcServer } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import { ConfigError } from "../../../lib/runtime/index.js";
import type { TokenizerConfig } from "./config.js";
import { GgufTokenizer } from "./gguf-tokenizer.js";
import type { ModelTokenizer } from "./gguf-tokenizer.js";
import { TokenizerService } from "./tokenizer-service.js";

/** Loads one tokenizer per catalog model. */
export async function loadTokenizers(catalog: Catalog): Promise<Map<string, ModelTokenizer>> {
  const tokenizers = new Map<string, ModelTokenizer>();
  const ggufModels = catalog.models.filter((m) => tokenizerSource(m)?.endsWith(".gguf"));
  const llama = ggufModels.length > 0 ? await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error }) : undefined;
  for (const model of catalog.models) {
    const source = tokenizerSource(model);
    if (!source) throw new ConfigError(`tokenizer: model "${model.name}" names no tokenizer file`);
    if (source.endsWith(".gguf") && llama) {
      tokenizers.set(model.name, await GgufTokenizer.load(llama, source, { contextLength: model.context_length }));
    } else {
      throw new ConfigError(`tokenizer: model "${model.name}": unsupported tokenizer file "${source}"`);
    }
  }
  return tokenizers;
}

export async function build(config: TokenizerConfig, log: Logger): Promise<RunningService> {
  const tokenizers = await loadTokenizers(config.catalog);
  log.info({ models: [...tokenizers.keys()] }, "tokenizers loaded");
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [TokenizerServiceDesc.typeName],
    routes: (router) => router.service(TokenizerServiceDesc, new TokenizerService(tokenizers)),
  });
  return { port: server.port, close: (drainMs) => server.close(drainMs) };
}
