import { ChatTemplate } from "./chat-template.js";
import type { ModelTokenizer, TemplateMessage } from "./model-tokenizer.js";

/** Roughly one token per word or punctuation mark, with its leading space. */
const PIECE = /\s*[\p{L}\p{N}]+|\s*[^\s\p{L}\p{N}]|\s+$/gu;
const PLAIN_CHAT = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

/**
 * The tokenizer of a simulator-only model that names no tokenizer file:
 * one token per word or punctuation mark (ids are hashes), so benchmarks
 * can size prompts in tokens. Never used for a real model.
 */
export class PlaceholderTokenizer implements ModelTokenizer {
  readonly #template: ChatTemplate;
  readonly specialTokens: ReadonlyMap<string, number> = new Map();
  readonly completionPrefix: readonly number[] = [];
  /** A piece is a word: bound it generously (a 4 KiB word is one token). */
  readonly maxBytesPerToken = 4_096;

  constructor(
    readonly contextLength: number,
    template?: string,
  ) {
    this.#template = new ChatTemplate(template ?? PLAIN_CHAT, { bos_token: "", eos_token: "" });
  }

  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean): string {
    return this.#template.render(messages, addGenerationPrompt);
  }

  encodeText(text: string): number[] {
    return this.tokenize(text);
  }

  tokenize(text: string): number[] {
    return (text.match(PIECE) ?? []).map(hash);
  }

  detokenize(tokenIds: readonly number[]): string {
    return tokenIds.map(() => " sim").join("");
  }
}

function hash(piece: string): number {
  let h = 2166136261;
  for (let i = 0; i < piece.length; i++) h = Math.imul(h ^ piece.charCodeAt(i), 16777619);
  return (h >>> 0) % 32_000;
}
