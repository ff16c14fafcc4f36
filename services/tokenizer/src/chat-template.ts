import { Template } from "@huggingface/jinja";
import { Code, meshError } from "../../../lib/errors.js";

/** A chat message as templates see it. */
export interface TemplateMessage {
  role: string;
  content: string;
}

/** The special-token strings templates refer to. */
export interface TemplateSpecials {
  bos_token: string;
  eos_token: string;
}

/**
 * A model's Jinja chat template (from its GGUF or tokenizer_config.json, or
 * a named prompt format), rendered the way Hugging Face renders it.
 */
export class ChatTemplate {
  readonly #template: Template | undefined;

  constructor(
    source: string | undefined,
    private readonly specials: TemplateSpecials,
  ) {
    this.#template = source ? new Template(source) : undefined;
  }

  render(messages: readonly TemplateMessage[], addGenerationPrompt: boolean): string {
    if (!this.#template) throw meshError(Code.FailedPrecondition, "this model has no chat template; use /v1/completions");
    try {
      return this.#template.render({ messages, add_generation_prompt: addGenerationPrompt, ...this.specials });
    } catch (err) {
      // Templates raise errors for conversations they refuse (e.g. roles out of order).
      throw meshError(Code.InvalidArgument, `the chat template refused the conversation: ${(err as Error).message}`, { cause: err });
    }
  }
}
