import { setTimeout as sleep } from "node:timers/promises";
import { ShardService } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { CatalogBackend } from "../../../lib/catalog/index.js";
import { closeChannel, grpcClient } from "../../../lib/rpc/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { isDnsTarget } from "./dns-target.js";

/** Consecutive failures after which a replica is ejected. */
export const EJECT_AFTER_FAILURES = 3;
/** How long an ejected replica stays out the first time; doubles on each re-ejection. */
export const EJECT_BACKOFF_MS = 5_000;
/** The longest an ejection lasts. */
export const MAX_EJECT_BACKOFF_MS = 60_000;
/** Wait before re-following a broken load stream. */
const LOAD_WATCH_RETRY_MS = 500;

/** How a replica is chosen among the available ones. */
export type ReplicaChoice = "least-loaded-of-two" | "random";

/** One shard process of a backend, with what the router knows of it. */
export class Replica {
  running = 0;
  queued = 0;
  /** In-flight requests this router sent (fresh even between load reports). */
  inFlight = 0;
  consecutiveFailures = 0;
  /** Ejections in a row without a success in between (sets the back-off). */
  ejections = 0;
  ejectedUntilMs = 0;
  /** The last active health check's answer (true until one says otherwise). */
  healthy = true;
  readonly client;
  /** Aborts when the replica leaves its set (its load watch stops; in-flight calls finish). */
  readonly #removed = new AbortController();

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

  /** Not ejected at `now` (an ejected replica comes back on probation once its back-off ends). */
  available(now: number): boolean {
    return now >= this.ejectedUntilMs;
  }

  /** Aborted once the replica is dropped from its set. */
  get removedSignal(): AbortSignal {
    return this.#removed.signal;
  }

  /** Marks the replica as dropped from its set: its load watch stops and its channel closes (calls already on it finish). */
  remove(): void {
    this.#removed.abort();
    closeChannel(this.address);
  }

  succeeded(): void {
    this.consecutiveFailures = 0;
    this.ejections = 0;
  }

  /**
   * Counts a failure. After EJECT_AFTER_FAILURES in a row the replica is out
   * for a back-off; a replica on probation (just back) is ejected again at its
   * first failure, for twice as long.
   */
  failed(now: number): void {
    this.consecutiveFailures++;
    const onProbation = this.ejections > 0;
    if (onProbation || this.consecutiveFailures >= EJECT_AFTER_FAILURES) {
      this.ejectedUntilMs = now + Math.min(MAX_EJECT_BACKOFF_MS, EJECT_BACKOFF_MS * 2 ** this.ejections);
      this.ejections++;
    }
  }
}

/**
 * The replicas of one backend, picked by load (power of two choices). Built
 * from the backend's plain "host:port" addresses; `dns:///NAME:PORT` entries
 * are left to ReplicaDiscovery, shards announced on NATS to
 * NatsReplicaDiscovery; both call `setSource`.
 */
export class ReplicaSet {
  /** The current replicas (replaced, not mutated, by `setAddresses`). */
  replicas: Replica[];
  #watch: { signal: AbortSignal; log: Logger } | undefined;
  /** Addresses by where they came from ("catalog", expanded by DNS discovery; "nats"); the set is their union. */
  readonly #sources = new Map<string, readonly string[]>();

  constructor(
    readonly backend: CatalogBackend,
    private readonly random: () => number = Math.random,
    private readonly choice: ReplicaChoice = "least-loaded-of-two",
  ) {
    const plain = (backend.addresses ?? []).filter((a) => !isDnsTarget(a));
    this.#sources.set("catalog", plain);
    this.replicas = [...new Set(plain)].map((address) => new Replica(backend.name, address));
  }

  /**
   * Replaces the addresses one discovery source contributes ("catalog", "nats")
   * and makes the set their union with every other source's (see setAddresses).
   */
  setSource(source: string, addresses: Iterable<string>): { added: string[]; removed: string[] } {
    this.#sources.set(source, [...addresses]);
    return this.setAddresses([...this.#sources.values()].flat());
  }

  /**
   * Makes the set exactly `addresses` ("host:port", duplicates ignored): a
   * replica whose address stays keeps its state (load, ejection, health), a
   * new one is added (and its load followed if `watchLoad` runs), one that is
   * gone is dropped and its load watch stopped; calls already on it finish.
   */
  setAddresses(addresses: Iterable<string>): { added: string[]; removed: string[] } {
    const wanted = new Set(addresses);
    const current = new Map(this.replicas.map((r) => [r.address, r] as const));
    const added: Replica[] = [];
    this.replicas = [...wanted].map((address) => {
      const kept = current.get(address);
      if (kept) return kept;
      const replica = new Replica(this.backend.name, address);
      added.push(replica);
      return replica;
    });
    const removed = [...current.values()].filter((r) => !wanted.has(r.address));
    for (const r of removed) r.remove();
    const watch = this.#watch;
    if (watch && !watch.signal.aborted) for (const r of added) void followLoad(r, watch.signal, watch.log);
    return { added: added.map((r) => r.address), removed: removed.map((r) => r.address) };
  }

  /**
   * The less loaded of two random usable replicas, skipping `exclude`.
   * Usable: healthy by the active check and not ejected; when every healthy
   * replica is ejected, the ejected ones are tried anyway (panic mode) rather
   * than failing the model outright. Undefined when none is healthy.
   */
  pick(exclude: ReadonlySet<Replica> = new Set(), now = Date.now()): Replica | undefined {
    const healthy = this.replicas.filter((r) => !exclude.has(r) && r.healthy);
    let candidates = healthy.filter((r) => r.available(now));
    if (candidates.length === 0) candidates = healthy;
    if (candidates.length <= 1) return candidates[0];
    const a = candidates[Math.floor(this.random() * candidates.length)];
    if (this.choice === "random") return a;
    let b = candidates[Math.floor(this.random() * (candidates.length - 1))];
    if (b === a) b = candidates[candidates.length - 1]!;
    return b.score < a.score ? b : a;
  }

  /** Milliseconds until some replica may be usable again (for `retry-after`). */
  retryAfterMs(now = Date.now()): number {
    const waits = this.replicas.map((r) => Math.max(0, r.ejectedUntilMs - now)).filter((ms) => ms > 0);
    return waits.length > 0 ? Math.min(...waits) : 1_000;
  }

  /** Follows every replica's load stream (those added later too) until `signal` aborts or the replica is dropped. */
  watchLoad(signal: AbortSignal, log: Logger): void {
    this.#watch = { signal, log };
    for (const replica of this.replicas) void followLoad(replica, signal, log);
  }
}

async function followLoad(replica: Replica, stop: AbortSignal, log: Logger): Promise<void> {
  const signal = AbortSignal.any([stop, replica.removedSignal]);
  while (!signal.aborted) {
    try {
      for await (const load of replica.client.watchLoad({ minIntervalMs: 0 }, { signal })) {
        replica.running = load.running;
        replica.queued = load.queued;
      }
    } catch (err) {
      if (signal.aborted) return;
      log.debug({ replica: replica.address, err: (err as Error).message }, "load watch broken; retrying");
    }
    await sleep(LOAD_WATCH_RETRY_MS, undefined, { signal }).catch(() => {});
  }
}
