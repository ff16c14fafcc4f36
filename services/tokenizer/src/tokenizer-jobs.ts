import { Code, meshError } from "../../../lib/errors.js";
import type { ModelTokenizer, TemplateMessage } from "./model-tokenizer.js";
import type { ToolFunction } from "../../../lib/tool-calls/index.js";
import { checkPromptBytes, contentBytes, encodeChat, encodeCompletion } from "./prompt-encoder.js";
import type { EncodedPrompt } from "./prompt-encoder.js";

/** One unit of tokenizer work: a chat to render and encode, or a completion prompt. */
export type TokenizerWork =
  | { kind: "chat"; model: string; messages: TemplateMessage[]; addGenerationPrompt: boolean; tools?: ToolFunction[] }
  | { kind: "completion"; model: string; text: string };

/** A unit of work as posted to a worker. */
export type TokenizerJob = TokenizerWork & { id: number };

/** What a worker answers: ids (transferred) or the error as code, message and metadata. */
export type TokenizerJobResult =
  { id: number; tokenIds: Uint32Array; contextLength: number } | { id: number; error: { code: Code; message: string; metadata: Array<[string, string]> } };

/** Runs a job against the loaded tokenizers (in a worker or inline). */
export function encodeJob(tokenizers: ReadonlyMap<string, ModelTokenizer>, job: TokenizerWork): EncodedPrompt {
  const tokenizer = tokenizerFor(tokenizers, job);
  return job.kind === "chat" ? encodeChat(tokenizer, job.messages, job.addGenerationPrompt, job.tools) : encodeCompletion(tokenizer, job.text);
}

/** The refusals that cost no tokenizing: unknown model, empty chat, more bytes than the context can hold. */
export function precheckJob(tokenizers: ReadonlyMap<string, ModelTokenizer>, job: TokenizerWork): void {
  const tokenizer = tokenizerFor(tokenizers, job);
  if (job.kind === "chat") checkPromptBytes(tokenizer, contentBytes(job.messages), "messages");
  else checkPromptBytes(tokenizer, Buffer.byteLength(job.text), "prompt");
}

function tokenizerFor(tokenizers: ReadonlyMap<string, ModelTokenizer>, job: TokenizerWork): ModelTokenizer {
  const tokenizer = tokenizers.get(job.model);
  if (!tokenizer) throw meshError(Code.NotFound, `model "${job.model}" has no tokenizer`);
  if (job.kind === "chat" && job.messages.length === 0) throw meshError(Code.InvalidArgument, "messages must not be empty", { param: "messages" });
  return tokenizer;
}

/** Characters of input a job holds (what decides inline or worker). */
export function jobChars(job: TokenizerWork): number {
  if (job.kind === "completion") return job.text.length;
  let chars = 0;
  for (const m of job.messages) chars += m.content.length;
  return chars;
}

/** Posted to an idle pool worker: free what it loaded and end its thread. */
export const WORKER_EXIT = "exit";
