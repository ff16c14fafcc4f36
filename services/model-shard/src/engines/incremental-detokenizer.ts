import type { LlamaModel, Token } from "node-llama-cpp";

/** Tokens of context kept for SentencePiece's leading-space handling. */
const CONTEXT_TOKENS = 4;

/**
 * Turns a token stream into text deltas. A token that ends inside a
 * multi-byte UTF-8 character is held back until the character is complete,
 * so every delta is valid text and the deltas concatenate to
 * `detokenize(allTokens)`.
 */
export class IncrementalDetokenizer {
  readonly #model: LlamaModel;
  #emitted: Token[] = [];
  #pending: Token[] = [];
  /** Called with every token pushed (used for repetition penalties). */
  onToken: ((token: Token) => void) | undefined;

  constructor(model: LlamaModel) {
    this.#model = model;
  }

  /** Adds a token; returns the text that is now complete. */
  push(token: Token): string {
    this.onToken?.(token);
    this.#pending.push(token);
    const context = this.#emitted.slice(-CONTEXT_TOKENS);
    const text = this.#model.detokenize(this.#pending, false, context);
    if (text.endsWith("\uFFFD") && this.#pending.length < 8) return "";
    this.#emitted.push(...this.#pending);
    if (this.#emitted.length > 64) this.#emitted = this.#emitted.slice(-CONTEXT_TOKENS);
    this.#pending = [];
    return text;
  }

  /** Whatever is still held back (an incomplete character at the end). */
  flush(): string {
    if (this.#pending.length === 0) return "";
    const text = this.#model.detokenize(this.#pending, false, this.#emitted.slice(-CONTEXT_TOKENS));
    this.#pending = [];
    return text;
  }
}
