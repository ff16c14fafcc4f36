import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { SHARD_EXPIRY_MS, parseShardAnnouncement } from "../../../lib/nats/index.js";
import type { MeshNatsNames, ShardAnnouncement } from "../../../lib/nats/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ReplicaSet } from "./replicas.js";

/** How often announcements past their expiry are swept out. */
export const SWEEP_INTERVAL_MS = 250;

/**
 * Keeps ReplicaSets in step with the shards that announce themselves on NATS
 * (see ShardAnnouncer): a shard heard from is a replica of the backend its
 * announcement names (the "nats" source of the set, beside the catalog's and
 * DNS's addresses); one silent for `expiryMs`, or saying it is leaving, is
 * dropped, and its channel closed. Announcements for a model or backend this
 * router does not route are ignored. On start it probes, so shards answer at
 * once instead of at their next heartbeat.
 *
 * While this router's own NATS connection is down nothing expires (silence
 * then says nothing about the shards): the pools stay as they were, and the
 * active health checks and ejection still take dead shards out of choice. On
 * reconnect every shard gets a fresh expiry and a probe asks all to announce.
 */
export class NatsReplicaDiscovery {
  readonly #seen = new Map<string, { announcement: ShardAnnouncement; at: number }>();
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #connected = true;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: MeshNatsNames,
    /** The set of `model`'s backend `backend`, if this router routes it. */
    private readonly setFor: (model: string, backend: string) => ReplicaSet | undefined,
    private readonly log: Logger,
    private readonly expiryMs = SHARD_EXPIRY_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The announcements currently counted (fresh ones only). */
  get shards(): ShardAnnouncement[] {
    return [...this.#seen.values()].map((s) => s.announcement);
  }

  /** Subscribes, probes, and waits up to `settleMs` for the shards' first answers. */
  async start(signal: AbortSignal, settleMs = 200): Promise<void> {
    this.#sub = this.nc.subscribe(this.names.shardAnnounceSubjects, {
      callback: (err, msg) => {
        if (err) return;
        const announcement = parseShardAnnouncement(msg.data);
        if (announcement) this.#heard(announcement);
      },
    });
    this.#timer = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#timer.unref();
    signal.addEventListener("abort", () => this.stop(), { once: true });
    void this.#followConnection();
    this.nc.publish(this.names.shardProbeSubject);
    await new Promise((r) => setTimeout(r, settleMs));
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
  }

  async #followConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") this.#connected = false;
      else if (s.type === "reconnect") {
        this.#connected = true;
        const now = this.now();
        for (const seen of this.#seen.values()) seen.at = now;
        this.nc.publish(this.names.shardProbeSubject);
      }
    }
  }

  #heard(a: ShardAnnouncement): void {
    if (!this.setFor(a.model, a.backend)) return;
    const known = this.#seen.get(a.id);
    if (a.leaving) {
      if (known) {
        this.#seen.delete(a.id);
        this.#apply(a.model, a.backend, "left");
      }
      return;
    }
    this.#seen.set(a.id, { announcement: a, at: this.now() });
    if (!known || known.announcement.address !== a.address) this.#apply(a.model, a.backend, "announced");
  }

  #sweep(): void {
    if (!this.#connected || this.nc.isClosed()) return;
    const now = this.now();
    for (const [id, s] of this.#seen) {
      if (now - s.at < this.expiryMs) continue;
      this.#seen.delete(id);
      this.#apply(s.announcement.model, s.announcement.backend, "expired");
    }
  }

  #apply(model: string, backend: string, why: string): void {
    const set = this.setFor(model, backend);
    if (!set) return;
    const addresses = [...this.#seen.values()]
      .filter((s) => s.announcement.model === model && s.announcement.backend === backend)
      .map((s) => s.announcement.address);
    const { added, removed } = set.setSource("nats", addresses);
    if (added.length > 0 || removed.length > 0) this.log.info({ model, backend, added, removed, why }, "replicas changed (NATS)");
  }
}
