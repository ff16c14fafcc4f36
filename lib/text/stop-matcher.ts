/**
 * Finds stop sequences in streamed text across chunk (token) boundaries.
 * Text that might be the start of a stop sequence is held back until it is
 * known not to be; a matched stop sequence and everything after it is never
 * emitted.
 */
export class StopMatcher {
  readonly #stops: readonly string[];
  readonly #longest: number;
  #held = "";
  #stopped = false;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
    this.#longest = Math.max(0, ...this.#stops.map((s) => s.length));
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Feeds text; returns what may be emitted now. */
  push(text: string): string {
    if (this.#stopped) return "";
    if (this.#stops.length === 0) return text;
    const buffer = this.#held + text;
    let cut = -1;
    for (const stop of this.#stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.#stopped = true;
      this.#held = "";
      return buffer.slice(0, cut);
    }
    const keep = this.#partialSuffixLength(buffer);
    this.#held = buffer.slice(buffer.length - keep);
    return buffer.slice(0, buffer.length - keep);
  }

  /** The held-back text, when the stream ends without a match. */
  flush(): string {
    const rest = this.#stopped ? "" : this.#held;
    this.#held = "";
    return rest;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of a stop sequence. */
  #partialSuffixLength(buffer: string): number {
    for (let length = Math.min(this.#longest - 1, buffer.length); length > 0; length--) {
      const suffix = buffer.slice(buffer.length - length);
      if (this.#stops.some((stop) => stop.startsWith(suffix))) return length;
    }
    return 0;
  }
}
