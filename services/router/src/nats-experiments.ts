import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectToken } from "../../../lib/nats/index.js";
import type { MeshNatsNames } from "../../../lib/nats/index.js";
import { KvMirror } from "../../../lib/nats/kv-mirror.js";
import { Code, meshError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { ExperimentStats } from "../../../lib/experiment-stats/index.js";
import type { ExperimentStatsSnapshot } from "../../../lib/experiment-stats/index.js";
import { sharedSnapshot } from "./experiment-metrics.js";
import type { PeerMeasurements } from "./experiment-metrics.js";
import type { ExperimentPeers, ExperimentRegistry, StoredExperiment } from "./experiment-registry.js";

/** How often each router publishes its experiments' statistics (only those that changed). */
export const STATS_PUBLISH_INTERVAL_MS = 1_000;
/** A router's statistics are kept this long after its last publish (a router gone for good still counts until then). */
export const STATS_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
/** How long a change through this router waits to see itself in the watched copy. */
const READ_YOUR_WRITE_MS = 5_000;
const JS_CALL_TIMEOUT_MS = 5_000;
/** The key of the experiments' config in its bucket: one value, so a change is atomic and ordered. */
export const CONFIG_KEY = "config";

interface StatsValue {
  experiment: string;
  phase: string;
  routerId: string;
  stats: ExperimentStatsSnapshot;
  shadow: ExperimentStatsSnapshot;
}

/**
 * Experiments shared by every router over NATS: the config (every
 * experiment, its state and phase) is one key of a KV bucket that each router
 * watches and applies; each router publishes its per-arm statistics under
 * `<experiment>.<router id>` of a second bucket and merges everyone's into its
 * reports. Assignment needs nothing shared: the hash is the same everywhere.
 */
export class NatsExperiments implements ExperimentPeers {
  readonly routerId = randomUUID();
  #timer: NodeJS.Timeout | undefined;
  readonly #published = new Map<string, string>();
  #stopWatch: (() => void) | undefined;

  private constructor(
    private readonly config: KV,
    private readonly configMirror: KvMirror,
    private readonly stats: KV,
    private readonly statsMirror: KvMirror,
    private readonly log: Logger,
  ) {}

  static async open(nc: NatsConnection, names: MeshNatsNames, options: { replicas?: number; log: Logger }): Promise<NatsExperiments> {
    const kvm = new Kvm(jetstream(nc, { timeout: JS_CALL_TIMEOUT_MS }));
    const replicas = options.replicas ?? 1;
    const config = await kvm.create(names.experimentsBucket, {
      history: 5,
      replicas,
      storage: StorageType.File,
      description: "mesh experiments: the config every router applies",
    });
    const stats = await kvm.create(names.experimentStatsBucket, {
      history: 1,
      replicas,
      storage: StorageType.File,
      ttl: STATS_MAX_AGE_MS,
      description: "mesh experiments: per-router per-arm statistics, merged into every report",
    });
    const [configMirror, statsMirror] = await Promise.all([KvMirror.open(config, { log: options.log }), KvMirror.open(stats, { log: options.log })]);
    return new NatsExperiments(config, configMirror, stats, statsMirror, options.log);
  }

  /** The stored experiments; undefined while none were ever stored. */
  load(): StoredExperiment[] | undefined {
    const value = this.configMirror.get(CONFIG_KEY);
    if (!value) return undefined;
    try {
      const parsed = JSON.parse(Buffer.from(value).toString("utf8")) as { experiments?: StoredExperiment[] };
      return Array.isArray(parsed.experiments) ? parsed.experiments : undefined;
    } catch {
      this.log.warn("experiments config on NATS is not JSON; ignored");
      return undefined;
    }
  }

  /**
   * Joins the cluster's experiments: the stored ones win; when none are
   * stored yet, this router's (the catalog's) become the stored ones (the
   * first router to start writes them, the others read them). Then applies
   * every later change, and starts publishing statistics.
   */
  async attach(registry: ExperimentRegistry): Promise<void> {
    if (!this.load()) {
      try {
        const revision = await this.config.create(CONFIG_KEY, JSON.stringify({ experiments: registry.snapshot() }));
        await this.configMirror.waitFor(revision, READ_YOUR_WRITE_MS);
      } catch {
        // Another router stored them first: theirs are read below.
        await this.configMirror.waitFor(this.configMirror.revision + 1, 1_000);
      }
    }
    const apply = (): void => {
      const stored = this.load();
      if (!stored) return;
      const problems = registry.load(stored);
      if (problems.length > 0) this.log.warn({ problems }, "experiments on NATS this router cannot run; skipped");
    };
    apply();
    this.#stopWatch = this.configMirror.onChange((c) => {
      if (c.key === CONFIG_KEY) apply();
    });
    this.#timer = setInterval(() => void this.publish(registry), STATS_PUBLISH_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Stores the registry's experiments for every router; resolves once this router sees the change. */
  async save(registry: ExperimentRegistry): Promise<void> {
    let revision: number;
    try {
      revision = await this.config.put(CONFIG_KEY, JSON.stringify({ experiments: registry.snapshot() }));
    } catch (err) {
      throw meshError(Code.Unavailable, "the experiments store (NATS) is unavailable; the change is not shared", { reason: "store_unavailable", cause: err });
    }
    await this.configMirror.waitFor(revision, READ_YOUR_WRITE_MS);
  }

  /** The other routers' statistics of `experiment` in `phase`. */
  measurements(experiment: string, phase: string): PeerMeasurements[] {
    const out: PeerMeasurements[] = [];
    for (const [key, value] of this.statsMirror.entries(`${subjectToken(experiment)}.`)) {
      try {
        const v = JSON.parse(Buffer.from(value).toString("utf8")) as StatsValue;
        if (v.phase !== phase || v.experiment !== experiment || v.routerId === this.routerId) continue;
        out.push({ routerId: v.routerId, stats: ExperimentStats.fromJSON(v.stats), shadow: ExperimentStats.fromJSON(v.shadow) });
      } catch {
        this.log.debug({ key }, "unreadable experiment statistics on NATS; skipped");
      }
    }
    return out;
  }

  /** Publishes this router's statistics of every experiment whose statistics changed since the last publish. */
  async publish(registry: ExperimentRegistry): Promise<void> {
    for (const entry of registry.list()) {
      const m = entry.measurements;
      if (m.stats.arms.size === 0 && m.shadow.arms.size === 0) continue;
      const value: StatsValue = {
        experiment: entry.config.name,
        phase: entry.phase,
        routerId: this.routerId,
        stats: sharedSnapshot(m.stats),
        shadow: sharedSnapshot(m.shadow),
      };
      const text = JSON.stringify(value);
      const key = `${subjectToken(entry.config.name)}.${this.routerId}`;
      if (this.#published.get(key) === text) continue;
      try {
        await this.stats.put(key, text);
        this.#published.set(key, text);
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, "experiment statistics not published (NATS away); retrying");
        return;
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#stopWatch?.();
    this.configMirror.stop();
    this.statsMirror.stop();
  }
}
