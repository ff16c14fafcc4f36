import { Template } from "@huggingface/jinja";
import { Code, meshError } from "../../../lib/errors.js";
import { templateHandlesTools, templateInput } from "../../../lib/tool-calls/index.js";
import type { ToolFunction, ToolMessage } from "../../../lib/tool-calls/index.js";

/** A chat message as templates see it (tool calls and results optional). */
export type TemplateMessage = ToolMessage;

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
  readonly #handlesTools: boolean;

  constructor(
    source: string | undefined,
    private readonly specials: TemplateSpecials,
  ) {
    this.#template = source ? new Template(source) : undefined;
    this.#handlesTools = templateHandlesTools(source);
  }

  /** Renders a conversation; tools go to a template that reads them, else into the documented default (lib/tool-calls/tool-prompt.ts). */
  render(messages: readonly TemplateMessage[], addGenerationPrompt: boolean, tools: readonly ToolFunction[] = []): string {
    if (!this.#template) throw meshError(Code.FailedPrecondition, "this model has no chat template; use /v1/completions");
    try {
      const input = templateInput(messages, tools, this.#handlesTools);
      return this.#template.render({ ...input, add_generation_prompt: addGenerationPrompt, ...this.specials });
    } catch (err) {
      // Templates raise errors for conversations they refuse (e.g. roles out of order).
      throw meshError(Code.InvalidArgument, `the chat template refused the conversation: ${(err as Error).message}`, { cause: err });
    }
  }
}
