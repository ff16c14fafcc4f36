export { findLlamaServer, llamaRelease, llamaServerBinary, llamaServerCacheDir, LLAMA_SERVER_HINT } from "./build.js";
export { defaultBatchThreads, llamaServerArgs, startLlamaServerProcess } from "./process.js";
export { batchThreadsFor, readModelShape } from "./model-shape.js";
export type { ModelShape } from "./model-shape.js";
export type { LlamaServerProcess, LlamaServerProcessOptions } from "./process.js";
