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
  /** The last tokens emitted (at most CONTEXT_TOKENS). */
  #context: Token[] = [];
  #pending: Token[] = [];

  constructor(model: LlamaModel) {
    this.#model = model;
  }

  /** Whether bytes of an incomplete character are held back. */
  get holding(): boolean {
    return this.#pending.length > 0;
  }

  /** Adds a token; returns the text that is now complete. */
  push(token: Token): string {
    this.#pending.push(token);
    const text = this.#model.detokenize(this.#pending, false, this.#context);
    if (text.endsWith("\uFFFD") && this.#pending.length < 8) return "";
    this.#context = this.#context.concat(this.#pending).slice(-CONTEXT_TOKENS);
    this.#pending = [];
    return text;
  }

  /** Whatever is still held back (an incomplete character at the end). */
  flush(): string {
    if (this.#pending.length === 0) return "";
    const text = this.#model.detokenize(this.#pending, false, this.#context);
    this.#pending = [];
    return text;
  }
}
