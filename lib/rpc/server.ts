import * as grpc from "@grpc/grpc-js";
import { HealthState, ServingStatus } from "./health.js";
import { grpcRegistrar } from "./grpc-registrar.js";
import type { ServiceRegistrar } from "./grpc-registrar.js";
import { processServiceToken, SERVICE_TOKEN_ENV, ServiceTokenCheck } from "./service-token.js";
import { ConfigError } from "../runtime/config.js";
import { MAX_MESSAGE_BYTES } from "./limits.js";

/** Keepalive: ping an idle connection this often, give up when no answer in time. */
const KEEPALIVE_TIME_MS = 30_000;
const KEEPALIVE_TIMEOUT_MS = 10_000;

export interface RpcServerOptions {
  /** Loopback by default: services are internal. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Fully qualified names of the services `routes` registers (for health). */
  serviceNames: readonly string[];
  /** Registers connect-style service implementations. */
  routes: (router: ServiceRegistrar) => void;
  /**
   * The mesh's service token every call but health must carry; default
   * MESH_SERVICE_TOKEN. Without one the server runs open, which it allows
   * only on a loopback address.
   */
  serviceToken?: string;
}

/** A running gRPC server with `grpc.health.v1`. */
export interface RpcServer {
  readonly port: number;
  readonly health: HealthState;
  /**
   * Stops the server: NOT_SERVING, no new calls, in-flight calls get up to
   * `drainMs` to finish, then the rest are cancelled.
   */
  close(drainMs: number): Promise<void>;
}

/**
 * Starts a gRPC server (grpc-js, HTTP/2 cleartext) for an internal service;
 * marks it SERVING once bound. Implementations are written in connect's
 * style (see grpc-registrar.ts).
 */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const host = options.host ?? "127.0.0.1";
  const serviceToken = options.serviceToken ?? processServiceToken();
  if (!serviceToken && !isLoopback(host)) {
    throw new ConfigError(
      `${SERVICE_TOKEN_ENV} is not set: an internal gRPC server on ${host} would accept calls from anyone who can reach it (set it, or bind 127.0.0.1)`,
    );
  }
  const health = new HealthState(options.serviceNames);
  const shutdown = new AbortController();
  const server = new grpc.Server({
    "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    "grpc.http2.min_ping_interval_without_data_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  });
  const draining = new AbortController();
  const registrar = grpcRegistrar(server, shutdown.signal, draining.signal, serviceToken ? new ServiceTokenCheck(serviceToken) : undefined);
  health.register(registrar);
  options.routes(registrar);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  health.setAll(ServingStatus.SERVING);
  let closing: Promise<void> | undefined;
  return {
    port,
    health,
    close(drainMs: number): Promise<void> {
      closing ??= (async () => {
        health.setAll(ServingStatus.NOT_SERVING);
        draining.abort();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            shutdown.abort();
            server.forceShutdown();
            resolve();
          }, drainMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      })();
      return closing;
    },
  };
}

/** Whether `host` is a loopback address (reachable from this machine only). */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
