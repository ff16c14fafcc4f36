import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { Tokenizer as HfTokenizerImpl } from "@huggingface/tokenizers";
import { ConfigError } from "../../../lib/runtime/index.js";
import type { ModelTokenizer, TemplateMessage } from "./model-tokenizer.js";
import { ChatTemplate } from "./chat-template.js";
import type { ToolFunction } from "../../../lib/tool-calls/index.js";

/**
 * The part of `@huggingface/tokenizers`' Tokenizer used here. Its own .d.ts files import each other without file
 * extensions, which NodeNext resolution cannot follow, so the class arrives untyped; this names what we call.
 */
interface Tokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(tokenIds: number[], options?: { skip_special_tokens?: boolean }): string;
}
const TokenizerClass = HfTokenizerImpl as unknown as new (tokenizer: object, config: object) => Tokenizer;

/** model_max_length values above this are the "unlimited" sentinel, not a real length. */
const MAX_REAL_CONTEXT_TOKENS = 10_000_000;

interface TokenizerConfigJson {
  chat_template?: string | Array<{ name: string; template: string }>;
  bos_token?: string | { content: string };
  eos_token?: string | { content: string };
  model_max_length?: number;
}

/**
 * The tokenizer of a model served by an OpenAI-compatible upstream: a
 * Hugging Face `tokenizer.json` (with `tokenizer_config.json` beside it, when
 * present, for the chat template, special tokens and context length), so the
 * mesh counts prompt tokens as the upstream does.
 *
 * `tokenize(text, specialTokens)`: a rendered chat prompt (specialTokens
 * true) already holds its BOS, so none is added, as vLLM's chat endpoint
 * does; a raw completion prompt (false) gets the tokenizer's own special
 * tokens, as vLLM's completions endpoint does.
 */
export class HfTokenizer implements ModelTokenizer {
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly maxBytesPerToken: number;
  readonly completionPrefix: readonly number[];

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    readonly contextLength: number,
  ) {
    const added = (tokenizer as unknown as { added_tokens: Array<{ content: string; id: number }> }).added_tokens ?? [];
    this.specialTokens = new Map(added.filter((t) => t.content.length > 1).map((t) => [t.content, t.id]));
    this.maxBytesPerToken = longestPiece(tokenizer);
    this.completionPrefix = tokenizer.encode("", { add_special_tokens: true }).ids;
  }

  static async load(file: string, options: { template?: string; contextLength?: number } = {}): Promise<HfTokenizer> {
    const json = await readJson<object>(file);
    const configFile = path.join(path.dirname(file), "tokenizer_config.json");
    const config = existsSync(configFile) ? await readJson<TokenizerConfigJson>(configFile) : {};
    const tokenizer = new TokenizerClass(json, config);
    const source = options.template ?? chatTemplateOf(config);
    const maxLength = config.model_max_length && config.model_max_length < MAX_REAL_CONTEXT_TOKENS ? config.model_max_length : undefined;
    const contextLength = options.contextLength ?? maxLength;
    if (!contextLength) throw new ConfigError(`tokenizer: ${file}: no context length (set context_length in the catalog)`);
    return new HfTokenizer(
      tokenizer,
      new ChatTemplate(source, { bos_token: tokenText(config.bos_token), eos_token: tokenText(config.eos_token) }),
      contextLength,
    );
  }

  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean, tools?: readonly ToolFunction[]): string {
    return this.template.render(messages, addGenerationPrompt, tools);
  }

  /**
   * Hugging Face tokenizers always split added tokens out of the input, so
   * text that holds one is cut inside it (after its first character) and
   * the pieces encoded apart: the added token's text stays text.
   */
  encodeText(text: string, _continuation: boolean): number[] {
    const ids: number[] = [];
    let rest = text;
    while (rest) {
      const cut = cutInsideSpecial(this.specialTokens, rest);
      for (const id of this.tokenizer.encode(rest.slice(0, cut), { add_special_tokens: false }).ids) ids.push(id);
      rest = rest.slice(cut);
    }
    return ids;
  }

  tokenize(text: string, specialTokens: boolean): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: !specialTokens }).ids;
  }

  detokenize(tokenIds: readonly number[]): string {
    return this.tokenizer.decode([...tokenIds], { skip_special_tokens: true });
  }
}

/** Where to end the next piece: just after the first character of the first added token, or the end. */
function cutInsideSpecial(specials: ReadonlyMap<string, number>, text: string): number {
  let first = -1;
  for (const special of specials.keys()) {
    const at = text.indexOf(special);
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first < 0 ? text.length : first + 1;
}

/** An upper bound of the UTF-8 bytes one token stands for (byte-level markers count double: safe). */
function longestPiece(tokenizer: Tokenizer): number {
  const vocab = (tokenizer as unknown as { model?: { vocab?: unknown } }).model?.vocab;
  const pieces: string[] = Array.isArray(vocab) ? (vocab as string[]) : vocab instanceof Map ? [...(vocab as Map<string, number>).keys()] : [];
  let max = 1;
  for (const piece of pieces) if (typeof piece === "string") max = Math.max(max, Buffer.byteLength(piece));
  return pieces.length > 0 ? max : 64;
}

async function readJson<T>(file: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch (err) {
    throw new ConfigError(`tokenizer: ${file}: ${(err as Error).message}`);
  }
}

function chatTemplateOf(config: TokenizerConfigJson): string | undefined {
  const t = config.chat_template;
  if (typeof t === "string") return t;
  return t?.find((x) => x.name === "default")?.template;
}

function tokenText(token: string | { content: string } | undefined): string {
  return typeof token === "string" ? token : (token?.content ?? "");
}
