import { Code } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import type { LlamaCppBackend } from "../../../../lib/catalog/index.js";

/** Upper bound on the default shared context, in tokens. */
const DEFAULT_CONTEXT_CAP_TOKENS = 16_384;

/** The context shared by a llama.cpp backend's sequences: the catalog's, else sequences × the model's, capped. */
export function sharedContextSize(backend: Pick<LlamaCppBackend, "context_size" | "sequences">, trainContext: number): number {
  return backend.context_size ?? Math.min(trainContext * backend.sequences, DEFAULT_CONTEXT_CAP_TOKENS);
}

/** Refuses (InvalidArgument) an empty prompt, or one whose tokens and max_tokens do not fit a sequence's context. */
export function checkPromptFits(promptTokens: number, maxTokens: number, contextLength: number): void {
  if (promptTokens === 0) throw meshError(Code.InvalidArgument, "empty prompt");
  if (promptTokens + maxTokens > contextLength) {
    throw meshError(Code.InvalidArgument, `prompt (${promptTokens} tokens) + max_tokens (${maxTokens}) exceeds the context length ${contextLength}`);
  }
}
