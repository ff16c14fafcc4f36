/**
 * Model tokenizers for prompt shaping: a GGUF's own vocabulary through
 * node-llama-cpp (vocabulary only, no weights), or the word estimate.
 */
import { approximateTokenizer } from "./lengths.js";
import type { BenchTokenizer } from "./lengths.js";

/** A tokenizer that counts exactly as llama.cpp does for this GGUF. */
export async function ggufTokenizer(modelPath: string): Promise<BenchTokenizer & { dispose(): Promise<void> }> {
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath, vocabOnly: true });
  return {
    name: `gguf:${modelPath.split("/").pop()}`,
    exact: true,
    count: (text) => model.tokenize(text).length,
    async dispose() {
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** The tokenizer for `--tokenizer FILE.gguf`, or the word estimate without one. */
export async function openTokenizer(file: string | undefined): Promise<BenchTokenizer & { dispose(): Promise<void> }> {
  if (!file) return { ...approximateTokenizer, async dispose() {} };
  if (!file.endsWith(".gguf")) throw new Error(`--tokenizer must be a .gguf file, got ${file}`);
  return ggufTokenizer(file);
}
