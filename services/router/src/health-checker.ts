import { setTimeout as sleep } from "node:timers/promises";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../../src/gen/grpc/health/v1/health_pb.js";
import { grpcClient } from "../../../lib/rpc/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { Replica } from "./replicas.js";

/** How often each replica's `grpc.health.v1` status is asked. */
export const HEALTH_CHECK_INTERVAL_MS = 2_000;
/** How long one check may take before it counts as a failure. */
export const HEALTH_CHECK_TIMEOUT_MS = 1_000;
/** Failed checks in a row before a replica is marked unhealthy (one success marks it healthy). */
export const UNHEALTHY_AFTER_CHECKS = 2;

/**
 * Active health checking: asks every replica's overall `grpc.health.v1`
 * status on an interval and keeps `replica.healthy` current. A replica that
 * answers NOT_SERVING (draining) is out at once; one that does not answer is
 * out after UNHEALTHY_AFTER_CHECKS misses. Passive ejection (replicas.ts) is
 * separate: it reacts to failed requests between checks; a replica that
 * turns healthy again leaves its ejection early, on probation.
 */
export class HealthChecker {
  readonly #misses = new WeakMap<Replica, number>();

  constructor(
    private readonly replicas: () => Iterable<Replica>,
    private readonly log: Logger,
    private readonly intervalMs = HEALTH_CHECK_INTERVAL_MS,
    private readonly timeoutMs = HEALTH_CHECK_TIMEOUT_MS,
  ) {}

  /** Checks every replica until `signal` aborts. */
  start(signal: AbortSignal): void {
    const loop = async (): Promise<void> => {
      while (!signal.aborted) {
        await this.checkAll(signal);
        await sleep(this.intervalMs, undefined, { signal }).catch(() => {});
      }
    };
    void loop();
  }

  /** One round of checks, all replicas in parallel. */
  async checkAll(signal?: AbortSignal): Promise<void> {
    await Promise.all([...this.replicas()].map((replica) => this.#check(replica, signal)));
  }

  async #check(replica: Replica, signal?: AbortSignal): Promise<void> {
    let status: ServingStatus | undefined;
    try {
      const res = await grpcClient(Health, replica.address).check({ service: "" }, { timeoutMs: this.timeoutMs, signal });
      status = res.status;
    } catch {
      if (signal?.aborted) return;
    }
    const was = replica.healthy;
    if (status === ServingStatus.SERVING) {
      this.#misses.set(replica, 0);
      replica.healthy = true;
      // Back after being out (a restarted shard): end the ejection its
      // failures while down earned (up to a minute) and let it serve on
      // probation; its first failure ejects it again (R2 in docs/reliability.md).
      if (!was) replica.ejectedUntilMs = 0;
    } else if (status === ServingStatus.NOT_SERVING) {
      replica.healthy = false;
    } else {
      const misses = (this.#misses.get(replica) ?? 0) + 1;
      this.#misses.set(replica, misses);
      if (misses >= UNHEALTHY_AFTER_CHECKS) replica.healthy = false;
    }
    if (was !== replica.healthy) this.log.warn({ replica: replica.address, backend: replica.backend, healthy: replica.healthy }, "replica health changed");
  }
}
