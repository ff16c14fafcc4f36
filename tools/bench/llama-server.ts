/**
 * llama.cpp's own `llama-server` as a benchmark peer (lib/llama-server:
 * built once from the llama.cpp source node-llama-cpp ships, so both run the
 * same llama.cpp on the same GGUF).
 */
import { batchThreadsFor, startLlamaServerProcess } from "../../lib/llama-server/index.js";
import type { RunningTarget } from "./targets.js";
import { availableCores, measureThreads, threadCandidates } from "../../services/model-shard/src/engines/llama-threads.js";

export { llamaRelease, llamaServerBinary, llamaServerCacheDir } from "../../lib/llama-server/index.js";

/** How llama-server is started: the same slots, threads and per-slot context as the mesh's engine. */
export interface LlamaServerOptions {
  binary: string;
  model: string;
  /** The model name requests carry (llama-server serves one model, whatever the name). */
  name: string;
  slots: number;
  threads: number;
  /** `-tb`; default: what the mesh's llama-server runtime picks for the model (defaultBatchThreads). */
  threadsBatch?: number;
  /** Total context (all slots), tokens. */
  contextSize: number;
}

/** Starts llama-server on a free loopback port and waits until /health answers. */
export async function startLlamaServer(o: LlamaServerOptions): Promise<RunningTarget & { args: string[] }> {
  const threadsBatch = o.threadsBatch ?? (await batchThreadsFor(o.model, o.threads));
  const server = await startLlamaServerProcess({ ...o, threadsBatch });
  // cpp-httplib closes idle keep-alive sockets on its own clock, which a pooled client then finds dead
  // ("socket hang up"): one connection per request instead (a loopback connect is ~22 µs here).
  const target = { url: `${server.url}/v1`, model: o.name, headers: { connection: "close" } };
  return { name: "llama-server", args: server.args, target, stop: () => server.stop() };
}

/** The thread count the mesh's llama.cpp engine picks for `modelPath` on this machine (measured the same way). */
export async function threadsLikeTheEngine(modelPath: string): Promise<number> {
  const candidates = threadCandidates(availableCores());
  if (candidates.length === 1) return candidates[0];
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: Math.max(...candidates), logLevel: LlamaLogLevel.error, progressLogs: false });
  const model = await llama.loadModel({ modelPath });
  try {
    return (await measureThreads(model, candidates)).threads;
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}
