import type { TemplateMessage } from "./chat-template.js";
import type { ToolFunction } from "../../../lib/tool-calls/index.js";

export type { TemplateMessage };

/**
 * What every tokenizer of the mesh can do (a GGUF's vocabulary, a Hugging
 * Face tokenizer.json, the simulator's placeholder). The chat path never
 * calls `tokenize(text, true)` on a rendered prompt: it goes through
 * `encodePrompt` (prompt-encoder.ts), which lets only the template's own
 * text become control tokens.
 */
export interface ModelTokenizer {
  readonly contextLength: number;
  /**
   * The most UTF-8 bytes one token can stand for. A text of B bytes has at
   * least ceil(B / maxBytesPerToken) tokens, so a prompt that must exceed the
   * context is refused before any tokenizing.
   */
  readonly maxBytesPerToken: number;
  /** Control-token text → id, as the engine parses it in trusted (template) text. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Renders the chat template; `tools` go to a template that reads them, else into the default tool prompt. */
  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean, tools?: readonly ToolFunction[]): string;
  /**
   * Tokenizes plain text with special-token parsing off. `continuation`:
   * the text continues a longer run cut for tokenizing (no leading-space
   * prefix of its own).
   */
  encodeText(text: string, continuation: boolean): number[];
  /** The ids a raw completion prompt starts with (its BOS, when the model adds one). */
  readonly completionPrefix: readonly number[];
  /** Tokenizes text as given; `specialTokens` parses control-token text (trusted callers only). */
  tokenize(text: string, specialTokens: boolean): number[];
  detokenize(tokenIds: readonly number[]): string;
}
