/** Restart back-off: doubles from the first delay up to the cap. */
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
/** A process that stayed up this long gets its back-off reset. */
const STABLE_AFTER_MS = 30_000;

/**
 * How long to wait before starting a process again that exited on its own:
 * 0.5 s, doubling to 30 s, back to 0.5 s once a start stayed up 30 s. Call
 * `started()` at every start (a failed one too), `nextDelayMs()` at every exit.
 */
export class RestartBackoff {
  #restarts = 0;
  #startedAt = 0;

  started(now = Date.now()): void {
    this.#startedAt = now;
  }

  nextDelayMs(now = Date.now()): number {
    if (now - this.#startedAt > STABLE_AFTER_MS) this.#restarts = 0;
    const delay = Math.min(FIRST_DELAY_MS * 2 ** this.#restarts, MAX_DELAY_MS);
    this.#restarts++;
    return delay;
  }
}
