import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "../runtime/index.js";

/** How long `open` waits for the bucket's current values. */
export const MIRROR_SYNC_TIMEOUT_MS = 10_000;
const RESTART_WATCH_MS = 100;
/** How often the mirror compares itself with the bucket's newest revision. */
export const MIRROR_CHECK_INTERVAL_MS = 1_000;
/** A watch this far behind for this long is presumed dead (its consumer lived on a lost node) and restarted. */
export const MIRROR_STALL_MS = 1_500;

/** One change the mirror saw after it was in sync. */
export interface MirrorChange {
  key: string;
  /** Undefined when the key was deleted or purged. */
  value: Uint8Array | undefined;
  previous: Uint8Array | undefined;
  revision: number;
}

/**
 * A local, watch-fed copy of a KV bucket: reads are memory lookups (and keep
 * working while NATS is away), every replica sees every change in revision
 * order, and a writer can wait until its own write is visible here
 * (read-your-writes) before it returns.
 */
export class KvMirror {
  readonly #values = new Map<string, Uint8Array>();
  readonly #waiters = new Set<{ revision: number; resolve: (ok: boolean) => void }>();
  readonly #listeners = new Set<(change: MirrorChange) => void>();
  #revision = 0;
  #syncRevision = 0;
  #stopped = false;
  #stopWatch: (() => void) | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #behindSince: number | undefined;
  #synced!: () => void;
  readonly #syncedPromise = new Promise<void>((r) => (this.#synced = r));

  private constructor(
    private readonly kv: KV,
    private readonly log: Logger | undefined,
  ) {}

  /** Starts watching and resolves once the bucket's current values are here. */
  static async open(kv: KV, options: { log?: Logger; syncTimeoutMs?: number } = {}): Promise<KvMirror> {
    const mirror = new KvMirror(kv, options.log);
    // The newest message of the bucket's stream is always the newest of its key, so the watch delivers it.
    mirror.#syncRevision = (await kv.status()).streamInfo.state.last_seq;
    if (mirror.#syncRevision === 0) mirror.#synced();
    void mirror.#run();
    mirror.#checkTimer = setInterval(() => void mirror.#check(), MIRROR_CHECK_INTERVAL_MS);
    mirror.#checkTimer.unref();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("KV mirror did not sync in time")), options.syncTimeoutMs ?? MIRROR_SYNC_TIMEOUT_MS);
    });
    try {
      await Promise.race([mirror.#syncedPromise, timeout]);
    } catch (err) {
      mirror.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return mirror;
  }

  /** The newest revision seen. */
  get revision(): number {
    return this.#revision;
  }

  get(key: string): Uint8Array | undefined {
    return this.#values.get(key);
  }

  /** Every key and value under `prefix`. */
  *entries(prefix: string): Generator<[string, Uint8Array]> {
    for (const entry of this.#values) if (entry[0].startsWith(prefix)) yield entry;
  }

  /** Calls `listener` for every change after sync; returns the unsubscribe function. */
  onChange(listener: (change: MirrorChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves true once `revision` is visible here, false after `timeoutMs`. */
  waitFor(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.#revision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        revision,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#checkTimer);
    this.#stopWatch?.();
    for (const w of [...this.#waiters]) w.resolve(false);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        const watch = await this.kv.watch(this.#revision > 0 ? { resumeFromRevision: this.#revision + 1, include: "history" } : {});
        this.#stopWatch = () => watch.stop();
        if (this.#stopped) watch.stop();
        for await (const entry of watch) this.#apply(entry);
      } catch (err) {
        if (!this.#stopped) this.log?.warn({ err: (err as Error).message }, "KV watch failed; restarting");
      }
      if (!this.#stopped) await new Promise((r) => setTimeout(r, RESTART_WATCH_MS));
    }
  }

  /**
   * The library's ordered consumer notices a lost consumer only after missed
   * heartbeats (10 s and more); comparing revisions notices it in about two
   * seconds, so a revocation is not held up by a dead node.
   */
  async #check(): Promise<void> {
    let last: number;
    try {
      last = (await this.kv.status()).streamInfo.state.last_seq;
    } catch {
      return; // NATS away: the connection's reconnect brings the watch back.
    }
    if (last <= this.#revision) {
      this.#behindSince = undefined;
      return;
    }
    const now = Date.now();
    this.#behindSince ??= now;
    if (now - this.#behindSince >= MIRROR_STALL_MS && !this.#stopped) {
      this.log?.warn({ revision: this.#revision, last }, "KV watch stalled; restarting it");
      this.#behindSince = undefined;
      this.#stopWatch?.();
    }
  }

  #apply(entry: KvWatchEntry): void {
    if (entry.revision <= this.#revision) return;
    this.#revision = entry.revision;
    const previous = this.#values.get(entry.key);
    const value = entry.operation === "PUT" ? entry.value : undefined;
    if (value) this.#values.set(entry.key, value);
    else this.#values.delete(entry.key);
    const wasSynced = entry.revision > this.#syncRevision;
    if (this.#revision >= this.#syncRevision) this.#synced();
    if (wasSynced) for (const listener of this.#listeners) listener({ key: entry.key, value, previous, revision: entry.revision });
    for (const w of [...this.#waiters]) if (w.revision <= this.#revision) w.resolve(true);
  }
}
