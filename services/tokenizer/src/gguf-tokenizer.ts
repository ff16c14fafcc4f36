import { readGgufFileInfo } from "node-llama-cpp";
import type { Llama, LlamaModel, Token } from "node-llama-cpp";
import { ChatTemplate } from "./chat-template.js";
import type { ToolFunction } from "../../../lib/tool-calls/index.js";
import type { ModelTokenizer, TemplateMessage } from "./model-tokenizer.js";

export type { ModelTokenizer, TemplateMessage };

/**
 * The tokenizer of a GGUF model: its vocabulary loaded by llama.cpp itself
 * (vocabulary only, no weights), and the chat template from the file's
 * `tokenizer.chat_template`, so ids equal the engine's token for token.
 */
export class GgufTokenizer implements ModelTokenizer {
  private constructor(
    private readonly model: LlamaModel,
    private readonly template: ChatTemplate,
    readonly contextLength: number,
    readonly specialTokens: ReadonlyMap<string, number>,
    readonly maxBytesPerToken: number,
    readonly completionPrefix: readonly number[],
  ) {}

  static async load(llama: Llama, path: string, options: { template?: string; contextLength?: number } = {}): Promise<GgufTokenizer> {
    const info = await readGgufFileInfo(path, { logWarnings: false });
    const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
    const source = options.template ?? info.metadata.tokenizer?.chat_template;
    const tokenText = (id: Token | null): string => (id == null ? "" : model.detokenize([id], true));
    const { specials, maxBytes } = scanVocabulary(model);
    const addsBos = (info.metadata.tokenizer?.ggml as { add_bos_token?: boolean } | undefined)?.add_bos_token !== false;
    return new GgufTokenizer(
      model,
      new ChatTemplate(source, { bos_token: tokenText(model.tokens.bos), eos_token: tokenText(model.tokens.eos) }),
      options.contextLength ?? (Number((info.architectureMetadata as { context_length?: number }).context_length) || model.trainContextSize),
      specials,
      maxBytes,
      addsBos && model.tokens.bos != null ? [model.tokens.bos] : [],
    );
  }

  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean, tools?: readonly ToolFunction[]): string {
    return this.template.render(messages, addGenerationPrompt, tools);
  }

  encodeText(text: string, continuation: boolean): number[] {
    // "trimLeadingSpace" is node-llama-cpp's way to tokenize a continuation
    // without SentencePiece's leading-space prefix.
    return continuation ? this.model.tokenize(text, false, "trimLeadingSpace") : this.model.tokenize(text, false);
  }

  tokenize(text: string, specialTokens: boolean): number[] {
    return this.model.tokenize(text, specialTokens);
  }

  detokenize(tokenIds: readonly number[]): string {
    return this.model.detokenize(tokenIds as Token[]);
  }
}

/** Control tokens (as llama.cpp parses them in special-aware text) and the longest piece in bytes. */
function scanVocabulary(model: LlamaModel): { specials: Map<string, number>; maxBytes: number } {
  const specials = new Map<string, number>();
  let maxBytes = 1;
  for (const token of model.iterateAllTokens()) {
    const attributes = model.getTokenAttributes(token);
    if (attributes.control || attributes.unknown) {
      const text = model.detokenize([token], true);
      if (text && !specials.has(text)) specials.set(text, token);
      continue;
    }
    maxBytes = Math.max(maxBytes, Buffer.byteLength(model.detokenize([token], false)));
  }
  return { specials, maxBytes };
}
