import { z } from "zod";
import { checkSupported, invalidParam, MAX_CHOICES, parseWith, samplingFields, samplingOf } from "./chat-request.js";
import type { GenerationInput } from "./generation.js";

/** OpenAI's default `max_tokens` for the legacy completions endpoint. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;
/** Longest prompt accepted, in characters (the body limit bounds it too). */
const MAX_PROMPT_CHARS = 1_000_000;

/** The legacy text completion request (POST /v1/completions). */
export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union([z.string().min(1).max(MAX_PROMPT_CHARS), z.array(z.string().min(1).max(MAX_PROMPT_CHARS)).min(1)], {
    error: "expected a non-empty string (token-id prompts are not supported)",
  }),
  echo: z.boolean().nullable().optional(),
  suffix: z.string().nullable().optional(),
  best_of: z.number().int().min(1).max(20).nullable().optional(),
  logprobs: z.number().int().min(0).max(5).nullable().optional(),
});

export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** Validates a parsed JSON body; a 400 naming the bad `param` otherwise. */
export function parseCompletionRequest(body: unknown): CompletionRequest {
  const request = parseWith(completionRequestSchema, body);
  checkSupported(request, MAX_CHOICES);
  if (Array.isArray(request.prompt) && request.prompt.length > 1) {
    throw invalidParam("prompt", "Only one prompt per request is supported by this mesh.", "unsupported_value");
  }
  if (request.echo === true) throw invalidParam("echo", "echo is not supported by this mesh.", "unsupported_parameter");
  if (request.suffix) throw invalidParam("suffix", "suffix is not supported by this mesh.", "unsupported_parameter");
  // best_of = n asks for n and returns the n: the same as n alone. More than n would need scoring the mesh does not do.
  if (request.best_of != null && request.best_of !== (request.n ?? 1)) {
    throw invalidParam("best_of", "Only best_of equal to n (or unset) is supported by this mesh.", "unsupported_value");
  }
  return request;
}

/** A validated text completion request as the protocol-neutral generation input. */
export function completionGenerationInput(request: CompletionRequest): GenerationInput {
  return {
    model: request.model,
    messages: [],
    prompt: typeof request.prompt === "string" ? request.prompt : request.prompt[0],
    sampling: samplingOf(request, request.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS),
    ...(request.logprobs != null ? { logprobs: { top: request.logprobs } } : {}),
    user: request.user ?? "",
    request,
  };
}
