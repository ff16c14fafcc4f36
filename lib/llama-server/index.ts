export { findLlamaServer, llamaRelease, llamaServerBinary, llamaServerCacheDir, LLAMA_SERVER_HINT } from "./build.js";
export { defaultBatchThreads, llamaServerArgs, startLlamaServerProcess } from "./process.js";
export type { LlamaServerProcess, LlamaServerProcessOptions } from "./process.js";
