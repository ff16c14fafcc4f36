import { Counter, Gauge, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import { createRegistry, VLLM_BUCKETS } from "../../../lib/metrics/index.js";
import type { Replica } from "./replicas.js";

/** One routed request's outcome, as the metrics see it. */
export interface RoutedOutcome {
  model: string;
  backend: string;
  /** "ok", "error" or "cancelled". */
  status: string;
  experiment?: string;
  arm?: string;
  /** Seconds from arrival at the router to the first token (absent: none came). */
  ttftSeconds?: number;
  /** Seconds per output token after the first. */
  tpotSeconds?: number;
}

/**
 * The router's Prometheus metrics: requests by model, backend and status,
 * retries, per replica in-flight, reported queue and running, and whether it
 * is ejected (read at scrape time), and per experiment arm requests, TTFT,
 * TPOT and errors. Labels are catalog names, replica addresses and
 * experiment names: bounded by configuration, never by what clients send.
 */
export class RouterMetrics {
  readonly registry: Registry;
  readonly #requests: Counter<"model" | "backend" | "status">;
  readonly #retries: Counter<"model" | "backend">;
  readonly #armRequests: Counter<"experiment" | "arm" | "status">;
  readonly #armTtft: Histogram<"experiment" | "arm">;
  readonly #armTpot: Histogram<"experiment" | "arm">;

  constructor(replicas: () => Replica[], registry: Registry = createRegistry()) {
    this.registry = registry;
    const registers = [registry];
    this.#requests = new Counter({
      name: "mesh_router_requests_total",
      help: "Requests routed, by model, backend and status.",
      labelNames: ["model", "backend", "status"],
      registers,
    });
    this.#retries = new Counter({
      name: "mesh_router_retries_total",
      help: "Shard calls retried on another replica before the first token.",
      labelNames: ["model", "backend"],
      registers,
    });
    this.#armRequests = new Counter({
      name: "mesh_experiment_requests_total",
      help: "Experiment requests by arm and status.",
      labelNames: ["experiment", "arm", "status"],
      registers,
    });
    this.#armTtft = new Histogram({
      name: "mesh_experiment_time_to_first_token_seconds",
      help: "Time to first token per experiment arm, seconds.",
      labelNames: ["experiment", "arm"],
      buckets: [...VLLM_BUCKETS.timeToFirstTokenSeconds],
      registers,
    });
    this.#armTpot = new Histogram({
      name: "mesh_experiment_time_per_output_token_seconds",
      help: "Time per output token after the first, per experiment arm, seconds.",
      labelNames: ["experiment", "arm"],
      buckets: [...VLLM_BUCKETS.interTokenLatencySeconds],
      registers,
    });
    const perReplica = (name: string, help: string, value: (r: Replica) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["backend", "replica"],
        registers,
        collect() {
          this.reset();
          for (const r of replicas()) this.set({ backend: r.backend, replica: r.address }, value(r));
        },
      });
    };
    perReplica("mesh_router_replica_in_flight", "Requests this router has in flight on the replica.", (r) => r.inFlight);
    perReplica("mesh_router_replica_queued", "Requests waiting on the replica, as it last reported.", (r) => r.queued);
    perReplica("mesh_router_replica_running", "Requests running on the replica, as it last reported.", (r) => r.running);
    perReplica("mesh_router_replica_ejected", "1 while the replica is ejected after failures, else 0.", (r) => (r.available(Date.now()) ? 0 : 1));
  }

  retried(model: string, backend: string): void {
    this.#retries.inc({ model, backend });
  }

  routed(o: RoutedOutcome): void {
    this.#requests.inc({ model: o.model, backend: o.backend, status: o.status });
    if (!o.experiment || !o.arm) return;
    const arm = { experiment: o.experiment, arm: o.arm };
    this.#armRequests.inc({ ...arm, status: o.status });
    if (o.ttftSeconds !== undefined) this.#armTtft.observe(arm, o.ttftSeconds);
    if (o.tpotSeconds !== undefined) this.#armTpot.observe(arm, o.tpotSeconds);
  }
}
