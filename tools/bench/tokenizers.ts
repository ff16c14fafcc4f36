/**
 * Model tokenizers for prompt shaping: a GGUF's own vocabulary loaded the
 * way the mesh's tokenizer service loads it (GgufTokenizer), or the word
 * estimate.
 */
import { approximateTokenizer } from "./lengths.js";
import type { BenchTokenizer } from "./lengths.js";

/** A tokenizer that counts exactly as llama.cpp does for this GGUF. */
export async function ggufTokenizer(modelPath: string): Promise<BenchTokenizer & { dispose(): Promise<void> }> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const { GgufTokenizer } = await import("../../services/tokenizer/src/gguf-tokenizer.js");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const tokenizer = await GgufTokenizer.load(llama, modelPath);
  return {
    name: `gguf:${modelPath.split("/").pop()}`,
    exact: true,
    count: (text) => tokenizer.tokenize(text, false).length,
    dispose: () => llama.dispose(), // disposes the vocabulary too
  };
}

/** The tokenizer for `--tokenizer FILE.gguf`, or the word estimate without one. */
export async function openTokenizer(file: string | undefined): Promise<BenchTokenizer & { dispose(): Promise<void> }> {
  if (!file) return { ...approximateTokenizer, async dispose() {} };
  if (!file.endsWith(".gguf")) throw new Error(`--tokenizer must be a .gguf file, got ${file}`);
  return ggufTokenizer(file);
}
