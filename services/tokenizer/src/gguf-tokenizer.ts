import { readGgufFileInfo } from "node-llama-cpp";
import type { Llama, LlamaModel, Token } from "node-llama-cpp";
import { ChatTemplate } from "./chat-template.js";
import type { TemplateMessage } from "./chat-template.js";

export type { TemplateMessage };

/** What every tokenizer of the service can do (GGUF or tokenizer.json). */
export interface ModelTokenizer {
  readonly contextLength: number;
  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean): string;
  tokenize(text: string, specialTokens: boolean): number[];
  detokenize(tokenIds: readonly number[]): string;
}

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
  ) {}

  static async load(llama: Llama, path: string, options: { template?: string; contextLength?: number } = {}): Promise<GgufTokenizer> {
    const info = await readGgufFileInfo(path, { logWarnings: false });
    const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
    const source = options.template ?? info.metadata.tokenizer?.chat_template;
    const tokenText = (id: Token | null): string => (id == null ? "" : model.detokenize([id], true));
    return new GgufTokenizer(
      model,
      new ChatTemplate(source, { bos_token: tokenText(model.tokens.bos), eos_token: tokenText(model.tokens.eos) }),
      options.contextLength ?? (Number((info.architectureMetadata as { context_length?: number }).context_length) || model.trainContextSize),
    );
  }

  renderChat(messages: readonly TemplateMessage[], addGenerationPrompt: boolean): string {
    return this.template.render(messages, addGenerationPrompt);
  }

  tokenize(text: string, specialTokens: boolean): number[] {
    return this.model.tokenize(text, specialTokens) as number[];
  }

  detokenize(tokenIds: readonly number[]): string {
    return this.model.detokenize(tokenIds as Token[]);
  }
}
