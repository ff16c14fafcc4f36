/**
 * Named prompt formats (Jinja chat templates in the Hugging Face
 * `chat_template` dialect), written from each model family's published
 * format. A catalog model picks one with `template: NAME`; without it the
 * model's own template (GGUF `tokenizer.chat_template` or
 * tokenizer_config.json `chat_template`) is used.
 */

/** Splits a leading system message off; enforces user/assistant alternation. */
const SPLIT_SYSTEM = `
{%- if messages[0]['role'] == 'system' -%}
  {%- set system_message = messages[0]['content'] -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set system_message = '' -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/... after an optional system message') -}}
  {%- endif -%}
{%- endfor -%}`;

/**
 * Mistral 7B Instruct: `<s>[INST] Instruction [/INST] Model answer</s>[INST] Follow-up instruction [/INST]`
 * (docs.mistral.ai, "Instruction format"). Mistral has no system role: a
 * system message goes before the first instruction, separated by a blank
 * line, as Mistral's own chat templates do.
 */
const MISTRAL_INSTRUCT = `${SPLIT_SYSTEM}
{{- bos_token -}}
{%- for message in loop_messages -%}
  {%- if message['role'] == 'user' -%}
    {%- if loop.first and system_message != '' -%}
      {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' -}}
    {%- else -%}
      {{- '[INST] ' + message['content'] + ' [/INST]' -}}
    {%- endif -%}
  {%- else -%}
    {{- ' ' + message['content'] + eos_token -}}
  {%- endif -%}
{%- endfor -%}`;

/**
 * Llama 2 chat, as Meta's reference code (llama/generation.py,
 * chat_completion) builds it: every exchange is `<s>[INST] {user} [/INST] {answer} </s>`,
 * the system prompt wrapped in `<<SYS>>\n…\n<</SYS>>\n\n` and put before the
 * first instruction, the whole instruction stripped.
 */
const LLAMA_2_CHAT = `${SPLIT_SYSTEM}
{%- for message in loop_messages -%}
  {%- if message['role'] == 'user' -%}
    {%- if loop.first and system_message != '' -%}
      {%- set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] -%}
    {%- else -%}
      {%- set content = message['content'] -%}
    {%- endif -%}
    {{- bos_token + '[INST] ' + (content | trim) + ' [/INST]' -}}
  {%- else -%}
    {{- ' ' + (message['content'] | trim) + ' ' + eos_token -}}
  {%- endif -%}
{%- endfor -%}`;

/**
 * Code Llama - Instruct (meta-llama/codellama, llama/generation.py): the
 * Llama 2 chat format, the same reference code; kept as its own name so a
 * catalog says what the model was trained on.
 */
const CODELLAMA_INSTRUCT = LLAMA_2_CHAT;

/** A completion-only model (replit-code): it has no chat format; chat requests are refused. */
const COMPLETION_ONLY = `{{- raise_exception('This model is completion-only: use /v1/completions') -}}`;

/** A named prompt format. */
export interface PromptFormat {
  name: string;
  /** Jinja source (Hugging Face chat_template dialect). */
  template: string;
  /** True when the format has no chat form (requests must be text completions). */
  completionOnly: boolean;
  /** Where the format is published. */
  reference: string;
}

/** Every named prompt format, by name. */
export const PROMPT_FORMATS: ReadonlyMap<string, PromptFormat> = new Map(
  (
    [
      {
        name: "mistral-instruct",
        template: MISTRAL_INSTRUCT,
        completionOnly: false,
        reference: "https://docs.mistral.ai/ (Instruction format); Mistral-7B-Instruct model card",
      },
      {
        name: "llama-2-chat",
        template: LLAMA_2_CHAT,
        completionOnly: false,
        reference: "https://github.com/meta-llama/llama/blob/main/llama/generation.py (chat_completion)",
      },
      {
        name: "codellama-instruct",
        template: CODELLAMA_INSTRUCT,
        completionOnly: false,
        reference: "https://github.com/meta-llama/codellama/blob/main/llama/generation.py (chat_completion)",
      },
      { name: "completion-only", template: COMPLETION_ONLY, completionOnly: true, reference: "replit/replit-code-v1_5-3b model card (code completion only)" },
    ] satisfies PromptFormat[]
  ).map((f) => [f.name, f] as const),
);

/** The prompt format of that name, or undefined. */
export function promptFormat(name: string): PromptFormat | undefined {
  return PROMPT_FORMATS.get(name);
}
