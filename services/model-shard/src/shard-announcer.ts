import { randomUUID } from "node:crypto";
import { networkInterfaces } from "node:os";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { SHARD_HEARTBEAT_MS } from "../../../lib/nats/index.js";
import type { MeshNatsNames, ShardAnnouncement } from "../../../lib/nats/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { SlotPool } from "./slot-pool.js";

/**
 * The address routers should dial: `host:port` when the shard listens on a
 * specific host, else the first non-internal IPv4 address (a pod's IP) when
 * it listens on every interface.
 */
export function advertisedAddress(host: string, port: number): string {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return `${a.address}:${port}`;
  }
  return `127.0.0.1:${port}`;
}

/**
 * Heartbeats one shard's announcement (address, model, backend, capacity,
 * load) on NATS every SHARD_HEARTBEAT_MS, answers routers' probes at once,
 * and says `leaving` on a clean stop. A shard that dies just stops
 * announcing; routers drop it after SHARD_EXPIRY_MS. While NATS is away
 * nothing is published (the connection reconnects; routers keep serving from
 * what they knew until the expiry).
 */
export class ShardAnnouncer {
  readonly id = randomUUID();
  #timer: NodeJS.Timeout | undefined;
  #probes: Subscription | undefined;

  constructor(
    readonly nc: NatsConnection,
    private readonly names: MeshNatsNames,
    private readonly shard: { address: string; model: string; backend: string; engine: string; pool: SlotPool },
    private readonly log: Logger,
    private readonly heartbeatMs = SHARD_HEARTBEAT_MS,
  ) {}

  /** The announcement as of now. */
  announcement(leaving = false): ShardAnnouncement {
    const { address, model, backend, engine, pool } = this.shard;
    const load = pool.load;
    return {
      id: this.id,
      address,
      model,
      backend,
      engine,
      capacity: { sequences: pool.slots, queue: pool.maxQueue },
      load: { running: load.running, queued: load.queued },
      ...(leaving ? { leaving: true } : {}),
    };
  }

  start(): void {
    this.#publish();
    this.#timer = setInterval(() => this.#publish(), this.heartbeatMs);
    this.#timer.unref();
    this.#probes = this.nc.subscribe(this.names.shardProbeSubject, { callback: () => this.#publish() });
    this.log.info({ id: this.id, address: this.shard.address }, "announcing this shard on NATS");
  }

  /** Stops the heartbeat and tells routers this shard is leaving. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#probes?.unsubscribe();
    this.#publish(true);
    await this.nc.flush().catch(() => {});
  }

  #publish(leaving = false): void {
    try {
      this.nc.publish(this.names.shardAnnounceSubject(this.id), JSON.stringify(this.announcement(leaving)));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "shard announcement not sent");
    }
  }
}
