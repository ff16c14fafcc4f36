import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { HealthState, ServingStatus } from "./health.js";

/** How long an idle HTTP/2 connection may stay silent before we ping it. */
const KEEPALIVE_PING_INTERVAL_MS = 30_000;

export interface RpcServerOptions {
  /** Loopback by default: services are internal. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Fully qualified names of the services `routes` registers (for health). */
  serviceNames: readonly string[];
  routes: (router: ConnectRouter) => void;
}

/** A running gRPC server (HTTP/2 cleartext) with `grpc.health.v1`. */
export interface RpcServer {
  readonly port: number;
  readonly health: HealthState;
  /**
   * Stops the server: NOT_SERVING, no new connections, in-flight calls get
   * up to `drainMs` to finish, then every connection is destroyed.
   */
  close(drainMs: number): Promise<void>;
}

/** Starts a gRPC server for internal services; marks it SERVING once bound. */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const health = new HealthState(options.serviceNames);
  const abortOnShutdown = new AbortController();
  const handler = connectNodeAdapter({
    grpc: true,
    grpcWeb: false,
    connect: true,
    shutdownSignal: abortOnShutdown.signal,
    routes: (router) => {
      health.register(router);
      options.routes(router);
    },
  });
  const server = http2.createServer({ settings: { maxConcurrentStreams: 10_000 } }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.setTimeout(0);
    const ping = setInterval(() => {
      if (!session.closed && !session.destroyed) session.ping(() => {});
    }, KEEPALIVE_PING_INTERVAL_MS);
    ping.unref();
    session.once("close", () => {
      clearInterval(ping);
      sessions.delete(session);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  health.setAll(ServingStatus.SERVING);
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    health,
    close(drainMs: number): Promise<void> {
      closing ??= (async () => {
        health.setAll(ServingStatus.NOT_SERVING);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const session of sessions) session.close();
        const timer = setTimeout(() => {
          abortOnShutdown.abort();
          for (const session of sessions) session.destroy();
        }, drainMs);
        await closed;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
