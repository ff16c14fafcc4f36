import type { EngineLogprob } from "./engine.js";

const utf8 = new TextEncoder();

/**
 * Keeps logprob entries in step with text that a filter holds back or cuts
 * (stop sequences, the end of a JSON output): an entry is released once the
 * text its token spells has been released, so the entries sent always spell
 * the text sent. When the filter ends, an entry whose text was shown only in
 * part is released with its `token` cut to that part (and `bytes` to match);
 * the entries of text never shown are dropped.
 *
 * It relies on the filter releasing a prefix of what it was given, and on the
 * entries spelling what the engine produced. Entries that do not (an
 * upstream's own token strings) pass through unchanged as long as the filter
 * holds nothing back.
 */
export class LogprobAligner {
  #pending: EngineLogprob[] = [];
  /** Characters (UTF-16 units) released but not yet matched to an entry. */
  #shown = 0;

  /** `entries` spell `given`; the filter released `released` of it (and of what it held). Returns the entries to send now. */
  push(entries: readonly EngineLogprob[] | undefined, given: string, released: string): EngineLogprob[] {
    if (this.#pending.length === 0 && this.#shown === 0 && released === given) return entries ? [...entries] : [];
    if (entries) this.#pending.push(...entries);
    this.#shown += released.length;
    return this.#take();
  }

  /** The filter ended after releasing `released` more: the rest, the last cut to what was shown. */
  end(released = ""): EngineLogprob[] {
    this.#shown += released.length;
    const out = this.#take();
    const partial = this.#pending[0];
    if (partial && this.#shown > 0) {
      const token = partial.token.slice(0, this.#shown);
      out.push({ ...partial, token, bytes: utf8.encode(token) });
    }
    this.#pending = [];
    this.#shown = 0;
    return out;
  }

  #take(): EngineLogprob[] {
    const out: EngineLogprob[] = [];
    while (this.#pending.length > 0 && this.#pending[0].token.length <= this.#shown) {
      const entry = this.#pending.shift()!;
      this.#shown -= entry.token.length;
      out.push(entry);
    }
    return out;
  }
}
