import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { TokenizerService as TokenizerServiceDesc } from "../../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import { tokenizerSource } from "../../../lib/catalog/index.js";
import type { Catalog } from "../../../lib/catalog/index.js";
import { startRpcServer } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import { ConfigError } from "../../../lib/runtime/index.js";
import type { TokenizerConfig } from "./config.js";
import { Code, meshError } from "../../../lib/errors.js";
import { PROMPT_FORMATS, promptFormat } from "../../../lib/templates/index.js";
import { GgufTokenizer } from "./gguf-tokenizer.js";
import { HfTokenizer } from "./hf-tokenizer.js";
import { PlaceholderTokenizer } from "./placeholder-tokenizer.js";
import type { ModelTokenizer } from "./model-tokenizer.js";
import { TokenizerService } from "./tokenizer-service.js";

let llamaForVocabularies: ReturnType<typeof getLlama> | undefined;

/** One CPU llama.cpp binding per process for vocabularies: a model added at run time loads its vocabulary without a second one. */
function vocabularyLlama(): ReturnType<typeof getLlama> {
  llamaForVocabularies ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  return llamaForVocabularies;
}

/** Frees the vocabularies' llama.cpp binding (a pool worker does, before its thread ends). */
export async function disposeVocabularies(): Promise<void> {
  const llama = llamaForVocabularies;
  llamaForVocabularies = undefined;
  if (llama) await (await llama).dispose();
}

/** Loads one tokenizer per catalog model. */
export async function loadTokenizers(catalog: Catalog): Promise<Map<string, ModelTokenizer>> {
  const tokenizers = new Map<string, ModelTokenizer>();
  const ggufModels = catalog.models.filter((m) => tokenizerSource(m)?.endsWith(".gguf"));
  const llama = ggufModels.length > 0 ? await vocabularyLlama() : undefined;
  for (const model of catalog.models) {
    const format = model.template ? promptFormat(model.template) : undefined;
    if (model.template && !format) {
      throw new ConfigError(`tokenizer: model "${model.name}": unknown template "${model.template}" (known: ${[...PROMPT_FORMATS.keys()].join(", ")})`);
    }
    const options = { template: format?.template, contextLength: model.context_length };
    const source = tokenizerSource(model);
    let tokenizer: ModelTokenizer;
    if (source?.endsWith(".gguf") && llama) {
      tokenizer = await GgufTokenizer.load(llama, source, options);
    } else if (source?.endsWith(".json")) {
      tokenizer = await HfTokenizer.load(source, options);
    } else if (!source && model.backends.every((b) => b.engine === "sim")) {
      tokenizer = new PlaceholderTokenizer(
        model.context_length ?? Math.min(...model.backends.map((b) => (b.engine === "sim" ? b.context_length : Infinity))),
        format?.template,
      );
    } else if (!source) {
      throw new ConfigError(`tokenizer: model "${model.name}" names no tokenizer file (a GGUF or a tokenizer.json in "tokenizer")`);
    } else {
      throw new ConfigError(`tokenizer: model "${model.name}": unsupported tokenizer file "${source}" (a .gguf or a tokenizer.json)`);
    }
    tokenizers.set(model.name, model.completion_only || format?.completionOnly ? completionOnly(tokenizer) : tokenizer);
  }
  return tokenizers;
}

/** A tokenizer whose chat rendering refuses: the model takes text completions only. */
function completionOnly(tokenizer: ModelTokenizer): ModelTokenizer {
  return {
    contextLength: tokenizer.contextLength,
    maxBytesPerToken: tokenizer.maxBytesPerToken,
    specialTokens: tokenizer.specialTokens,
    completionPrefix: tokenizer.completionPrefix,
    renderChat: () => {
      throw meshError(Code.FailedPrecondition, "this model is completion-only: use /v1/completions", { reason: "model_not_chat" });
    },
    encodeText: (text, continuation) => tokenizer.encodeText(text, continuation),
    tokenize: (text, specialTokens) => tokenizer.tokenize(text, specialTokens),
    detokenize: (ids) => tokenizer.detokenize(ids),
  };
}

/** `tokenizers`: already loaded ones to serve (the combined topology shares the router's). */
export async function build(config: TokenizerConfig, log: Logger, loaded?: ReadonlyMap<string, ModelTokenizer>): Promise<RunningService> {
  const tokenizers = loaded ?? (await loadTokenizers(config.catalog));
  log.info({ models: [...tokenizers.keys()] }, "tokenizers loaded");
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [TokenizerServiceDesc.typeName],
    routes: (router) => router.service(TokenizerServiceDesc, new TokenizerService(tokenizers)),
  });
  return { port: server.port, close: (drainMs) => server.close(drainMs) };
}
