export { PROMPT_FORMATS, promptFormat } from "./prompt-formats.js";
export type { PromptFormat } from "./prompt-formats.js";
