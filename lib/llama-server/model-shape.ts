import { defaultBatchThreads } from "./process.js";

/** What llama-server's settings depend on in a GGUF's header. */
export interface ModelShape {
  /** The context length it was trained for (4096 where the header says none). */
  trainContext: number;
  /** Its embedding length (0 where the header says none). */
  embeddingLength: number;
}

/** Reads the GGUF's header (not its tensors) through node-llama-cpp. */
export async function readModelShape(modelPath: string): Promise<ModelShape> {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const gguf = await readGgufFileInfo(modelPath, { readTensorInfo: false });
  const meta = gguf.architectureMetadata as { context_length?: number; embedding_length?: number };
  return { trainContext: Number(meta.context_length ?? 4096), embeddingLength: Number(meta.embedding_length ?? 0) };
}

/** `-tb` for the model at `modelPath` with `threads` decode threads, as the llama-server runtime picks it (defaultBatchThreads). */
export async function batchThreadsFor(modelPath: string, threads: number): Promise<number> {
  return defaultBatchThreads((await readModelShape(modelPath)).embeddingLength, threads);
}
