import { collectDefaultMetrics, Registry } from "prom-client";

let processRegistry: Registry | undefined;

/**
 * A fresh registry for one service. Each service builds its own (never
 * prom-client's global one), so several services can share a process in
 * tests without their metric names colliding.
 */
export function createRegistry(): Registry {
  return new Registry();
}

/**
 * The process's own metrics (CPU, memory, event-loop lag, GC), collected
 * once per process however many services it runs; `/metrics` appends them.
 */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * vLLM's bucket boundaries (vllm/v1/metrics/loggers.py), so dashboards built
 * for vLLM read our histograms the same way.
 */
export const VLLM_BUCKETS = {
  timeToFirstTokenSeconds: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560],
  interTokenLatencySeconds: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
  e2eRequestLatencySeconds: [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680],
} as const;
