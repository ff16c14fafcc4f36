import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/index.js";

/** Wait between reconnect attempts to one server. */
export const RECONNECT_WAIT_MS = 500;
/** How long the first connection may take before `connectNats` fails. */
export const CONNECT_TIMEOUT_MS = 5_000;

export interface NatsConnectOptions {
  /** One URL or a comma-separated list (`nats://a:4222,nats://b:4222`): the seed servers of a cluster. */
  url: string;
  /** Shown in the server's connection list, e.g. "auth". */
  name: string;
  log?: Logger;
  reconnectWaitMs?: number;
  /** Keep retrying the first connection until this deadline instead of failing at once. */
  connectTimeoutMs?: number;
}

/** Splits a comma-separated server list. */
export function natsServers(url: string): string[] {
  return url
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Connects to NATS and reconnects forever: a NATS restart or a node lost
 * from a cluster is an outage to ride out, never a reason to exit. Status
 * changes are logged (never credentials: only server addresses).
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const servers = natsServers(options.url);
  if (servers.length === 0) throw new RangeError("no NATS server URL given");
  const deadline = Date.now() + (options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
  for (;;) {
    try {
      const nc = await connect({
        servers,
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: options.reconnectWaitMs ?? RECONNECT_WAIT_MS,
        reconnectJitter: 100,
        pingInterval: 10_000,
        maxPingOut: 3,
        timeout: 2_000,
      });
      if (options.log) void logStatus(nc, options.log);
      return nc;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, options.reconnectWaitMs ?? RECONNECT_WAIT_MS));
    }
  }
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === "disconnect") log.warn({ server: s.server }, "NATS disconnected");
    else if (s.type === "reconnect") log.info({ server: s.server }, "NATS reconnected");
    else if (s.type === "error") log.warn({ err: s.error.message }, "NATS error");
  }
}
