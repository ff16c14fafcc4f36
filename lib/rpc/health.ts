import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import type { HealthCheckRequest, HealthCheckResponse } from "../../src/gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/**
 * Hand-written rather than grpc-health-check: that package plugs only into a grpc-js Server through proto-loader,
 * while this one is served in the one handler style by grpc-js, connect-node (the edge) and the in-process client.
 *
 * The `grpc.health.v1` state of one process. The overall status lives under
 * the empty service name; each served service has its own entry.
 */
export class HealthState {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #watchers = new Set<() => void>();

  constructor(serviceNames: readonly string[]) {
    this.#statuses.set("", ServingStatus.NOT_SERVING);
    for (const name of serviceNames) this.#statuses.set(name, ServingStatus.NOT_SERVING);
  }

  /** Sets every service (and the overall status) to `status`. */
  setAll(status: ServingStatus): void {
    for (const name of this.#statuses.keys()) this.#statuses.set(name, status);
    for (const wake of this.#watchers) wake();
  }

  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Registers the Health service on a Connect router. */
  register(router: { service(service: typeof Health, implementation: object): unknown }): void {
    router.service(Health, {
      check: (req: HealthCheckRequest): HealthCheckResponse => {
        const status = this.#statuses.get(req.service);
        if (status === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
        return create(HealthCheckResponseSchema, { status });
      },
      watch: (req: HealthCheckRequest, ctx: HandlerContext) => this.#watch(req.service, ctx.signal),
    });
  }

  async *#watch(service: string, signal: AbortSignal): AsyncGenerator<HealthCheckResponse> {
    let last: ServingStatus | undefined;
    while (!signal.aborted) {
      const status = this.#statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
      if (status !== last) {
        last = status;
        yield create(HealthCheckResponseSchema, { status });
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#watchers.delete(wake);
          signal.removeEventListener("abort", wake);
          resolve();
        };
        this.#watchers.add(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }
}
