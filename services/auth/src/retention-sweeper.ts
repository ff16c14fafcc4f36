import type { Logger } from "../../../lib/runtime/index.js";
import type { KeyStore } from "./store/index.js";

/** How long request logs (content) are kept. */
export const RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** How often the sweeper runs. */
export const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

export interface RetentionSweeperOptions {
  retentionMs?: number;
  intervalMs?: number;
  /** Injectable clock (tests move it forward 30 days). */
  now?: () => number;
  log?: Logger;
}

/**
 * Deletes request logs older than the retention period: once at start,
 * then every interval. Usage counts are not request content and stay.
 */
export class RetentionSweeper {
  readonly #retentionMs: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: KeyStore,
    private readonly options: RetentionSweeperOptions = {},
  ) {
    this.#retentionMs = options.retentionMs ?? RETENTION_MS;
    this.#intervalMs = options.intervalMs ?? SWEEP_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Deletes every request log that is the retention period old or older; returns how many. */
  async sweep(): Promise<number> {
    const deleted = await this.store.deleteRequestLogsBefore(this.#now() - this.#retentionMs + 1);
    if (deleted > 0) this.options.log?.info({ deleted }, "retention sweep deleted request logs");
    return deleted;
  }

  start(): void {
    const run = (): void => {
      this.sweep().catch((err: unknown) => this.options.log?.error({ err }, "retention sweep failed"));
    };
    run();
    this.#timer = setInterval(run, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
