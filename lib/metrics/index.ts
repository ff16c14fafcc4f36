export { createRegistry, processMetrics, VLLM_BUCKETS } from "./registry.js";
export { serveMetrics, startMetricsServer } from "./metrics-server.js";
export type { MetricsServer } from "./metrics-server.js";
