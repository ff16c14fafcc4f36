import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import { ConnectError } from "@connectrpc/connect";
import { Code } from "../../../lib/errors.js";
import { createRegistry } from "../../../lib/metrics/index.js";
import type { AuthService } from "./auth-service.js";

/** Usage lag buckets, seconds: batches leave the edge every ~10 ms, a NATS outage may hold them for minutes. */
const LAG_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Auth's Prometheus metrics: admissions by result (`admitted`,
 * `rate_limited`, `error`), usage batches and records, and usage lag (from a
 * record's creation at the edge to its recording here). Labels are fixed
 * words: never a key id, never an account.
 */
export class AuthMetrics {
  readonly registry: Registry;
  readonly #admissions: Counter<"result">;
  readonly #batches: Counter;
  readonly #records: Counter<"recorded">;
  readonly #lag: Histogram;

  constructor(registry: Registry = createRegistry()) {
    this.registry = registry;
    const registers = [registry];
    this.#admissions = new Counter({ name: "mesh_auth_admissions_total", help: "Admission decisions by result.", labelNames: ["result"], registers });
    this.#batches = new Counter({ name: "mesh_auth_usage_batches_total", help: "RecordUsageBatch calls received.", registers });
    this.#records = new Counter({
      name: "mesh_auth_usage_records_total",
      help: "Usage records received; recorded=false: a repeat, counted once already.",
      labelNames: ["recorded"],
      registers,
    });
    this.#lag = new Histogram({
      name: "mesh_auth_usage_lag_seconds",
      help: "From a usage record's creation at the edge to its recording, seconds.",
      buckets: LAG_BUCKETS_SECONDS,
      registers,
    });
  }

  /**
   * Counts what `auth` does by wrapping its admission and usage handlers on
   * the instance, so the gRPC server and in-process clients (combined
   * topology) are counted alike without touching the service's logic.
   */
  instrument(auth: AuthService): void {
    const admit = auth.admit.bind(auth);
    auth.admit = async (req) => {
      try {
        const res = await admit(req);
        this.#admissions.inc({ result: "admitted" });
        return res;
      } catch (err) {
        this.#admissions.inc({ result: err instanceof ConnectError && err.code === Code.ResourceExhausted ? "rate_limited" : "error" });
        throw err;
      }
    };
    const recordUsage = auth.recordUsage.bind(auth);
    auth.recordUsage = async (req) => {
      const res = await recordUsage(req);
      this.#records.inc({ recorded: String(res.recorded) });
      const createdAtMs = Number(req.createdAtMs);
      if (res.recorded && createdAtMs > 0) this.#lag.observe(Math.max(0, Date.now() - createdAtMs) / 1000);
      return res;
    };
    const recordUsageBatch = auth.recordUsageBatch.bind(auth);
    auth.recordUsageBatch = async (req) => {
      this.#batches.inc();
      return recordUsageBatch(req);
    };
  }
}
