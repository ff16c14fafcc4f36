import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { ConfigError } from "../../../lib/runtime/index.js";
import type { ModelTokenizer, TemplateMessage } from "./gguf-tokenizer.js";
import { ChatTemplate } from "./chat-template.js";

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
  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    readonly contextLength: number,
  ) {}

  static async load(file: string, options: { template?: string; contextLength?: number } = {}): Promise<HfTokenizer> {
    const json = await readJson<object>(file);
    const configFile = path.join(path.dirname(file), "tokenizer_config.json");
    const config = existsSync(configFile) ? await readJson<TokenizerConfigJson>(configFile) : {};
    const tokenizer = new Tokenizer(json, config);
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

  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean): string {
    return this.template.render(messages, addGenerationPrompt);
  }

  tokenize(text: string, specialTokens: boolean): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: !specialTokens }).ids;
  }

  detokenize(tokenIds: readonly number[]): string {
    return this.tokenizer.decode([...tokenIds], { skip_special_tokens: true });
  }
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
