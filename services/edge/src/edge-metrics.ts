import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import { createRegistry } from "../../../lib/metrics/index.js";

/** Request-duration buckets in seconds: sub-millisecond health checks up to long generations. */
const DURATION_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * The edge's Prometheus metrics, served on its own HTTP port at
 * `GET /metrics`: `mesh_http_requests_total{route,status}` and
 * `mesh_request_duration_seconds{route}`.
 */
export class EdgeMetrics {
  readonly registry: Registry;
  readonly #requests: Counter<"route" | "status">;
  readonly #duration: Histogram<"route">;

  constructor(registry: Registry = createRegistry()) {
    this.registry = registry;
    const registers = [registry];
    this.#requests = new Counter({
      name: "mesh_http_requests_total",
      help: "HTTP requests answered, by route and status.",
      labelNames: ["route", "status"],
      registers,
    });
    this.#duration = new Histogram({
      name: "mesh_request_duration_seconds",
      help: "Time from request arrival to the end of the response, in seconds.",
      labelNames: ["route"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
  }

  /**
   * Records one finished (or abandoned) request that arrived at `startedAt`
   * (performance.now()); `route` is the label its route-table entry carries, "other" when none matched.
   */
  record(route: string, status: number, startedAt: number): void {
    this.#requests.inc({ route, status: String(status) });
    this.#duration.observe({ route }, (performance.now() - startedAt) / 1000);
  }
}
