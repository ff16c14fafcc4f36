import { ShardService } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { CatalogBackend } from "../../../lib/catalog/index.js";
import { grpcClient } from "../../../lib/rpc/index.js";
import type { Logger } from "../../../lib/runtime/index.js";

/** Consecutive failures after which a replica is ejected. */
export const EJECT_AFTER_FAILURES = 3;
/** How long an ejected replica stays out before it is tried again. */
export const EJECT_BACKOFF_MS = 5_000;
/** Wait before re-following a broken load stream. */
const LOAD_WATCH_RETRY_MS = 500;

/** One shard process of a backend, with what the router knows of it. */
export class Replica {
  running = 0;
  queued = 0;
  freeSlots = 1;
  /** In-flight requests this router sent (fresh even between load reports). */
  inFlight = 0;
  consecutiveFailures = 0;
  ejectedUntilMs = 0;
  readonly client;

  constructor(
    readonly backend: string,
    readonly address: string,
  ) {
    this.client = grpcClient(ShardService, address);
  }

  /** The load score: reported running + queued, or our own count when higher. */
  get score(): number {
    return Math.max(this.running + this.queued, this.inFlight);
  }

  available(now: number): boolean {
    return now >= this.ejectedUntilMs;
  }

  succeeded(): void {
    this.consecutiveFailures = 0;
  }

  failed(now: number): void {
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= EJECT_AFTER_FAILURES) this.ejectedUntilMs = now + EJECT_BACKOFF_MS;
  }
}

/** The replicas of one backend, picked by load (power of two choices). */
export class ReplicaSet {
  readonly replicas: Replica[];

  constructor(
    readonly backend: CatalogBackend,
    private readonly random: () => number = Math.random,
  ) {
    this.replicas = (backend.addresses ?? []).map((address) => new Replica(backend.name, address));
  }

  /** The less loaded of two random available replicas, skipping `exclude`. */
  pick(exclude: ReadonlySet<Replica> = new Set(), now = Date.now()): Replica | undefined {
    let candidates = this.replicas.filter((r) => !exclude.has(r) && r.available(now));
    if (candidates.length === 0) candidates = this.replicas.filter((r) => !exclude.has(r));
    if (candidates.length <= 1) return candidates[0];
    const a = candidates[Math.floor(this.random() * candidates.length)]!;
    let b = candidates[Math.floor(this.random() * (candidates.length - 1))]!;
    if (b === a) b = candidates[candidates.length - 1]!;
    return b.score < a.score ? b : a;
  }

  /** Follows every replica's load stream until `signal` aborts. */
  watchLoad(signal: AbortSignal, log: Logger): void {
    for (const replica of this.replicas) void followLoad(replica, signal, log);
  }
}

async function followLoad(replica: Replica, signal: AbortSignal, log: Logger): Promise<void> {
  while (!signal.aborted) {
    try {
      for await (const load of replica.client.watchLoad({ minIntervalMs: 0 }, { signal })) {
        replica.running = load.running;
        replica.queued = load.queued;
        replica.freeSlots = load.freeSlots;
      }
    } catch (err) {
      if (signal.aborted) return;
      log.debug({ replica: replica.address, err: (err as Error).message }, "load watch broken; retrying");
    }
    await new Promise((r) => setTimeout(r, LOAD_WATCH_RETRY_MS));
  }
}
