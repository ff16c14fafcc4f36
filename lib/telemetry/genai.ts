import { SpanStatusCode } from "@opentelemetry/api";
import type { Attributes, Span } from "@opentelemetry/api";
import { ATTR_ERROR_TYPE } from "@opentelemetry/semantic-conventions";

/**
 * Attribute names of the OpenTelemetry GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/), copied rather than
 * imported from the package's unstable `incubating` entry point, as the
 * semantic-conventions package advises.
 */
export const GEN_AI = {
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  requestModel: "gen_ai.request.model",
  requestMaxTokens: "gen_ai.request.max_tokens",
  requestTemperature: "gen_ai.request.temperature",
  requestTopP: "gen_ai.request.top_p",
  requestTopK: "gen_ai.request.top_k",
  requestSeed: "gen_ai.request.seed",
  requestStopSequences: "gen_ai.request.stop_sequences",
  responseModel: "gen_ai.response.model",
  responseId: "gen_ai.response.id",
  responseFinishReasons: "gen_ai.response.finish_reasons",
  usageInputTokens: "gen_ai.usage.input_tokens",
  usageOutputTokens: "gen_ai.usage.output_tokens",
  inputMessages: "gen_ai.input.messages",
  outputMessages: "gen_ai.output.messages",
} as const;

/** The mesh's own span attributes. */
export const MESH = {
  requestId: "mesh.request_id",
  backend: "mesh.backend",
  replica: "mesh.replica",
  experiment: "mesh.experiment",
  arm: "mesh.arm",
  attempt: "mesh.attempt",
  retry: "mesh.retry",
  engine: "mesh.engine",
  engineMs: "mesh.engine_ms",
  overheadMs: "mesh.overhead_ms",
} as const;

/** The span event marking the first generated token. */
export const FIRST_TOKEN_EVENT = "gen_ai.first_token";
/** `gen_ai.provider.name` for the mesh itself. */
export const PROVIDER_NAME = "llm-mesh";

/** `chat` for a conversation, `text_completion` for a raw prompt. */
export type GenAiOperation = "chat" | "text_completion";

/** The span name the conventions ask for: `{operation} {model}`. */
export function genAiSpanName(operation: GenAiOperation, model: string): string {
  return `${operation} ${model}`;
}

/** Sampling parameters as the request attributes (zero/unset values are left out). */
export interface SamplingLike {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: bigint | number;
  stop?: readonly string[];
}

/** The request-side GenAI attributes of one generation. */
export function requestAttributes(operation: GenAiOperation, model: string, sampling: SamplingLike | undefined): Attributes {
  const attributes: Attributes = { [GEN_AI.operationName]: operation, [GEN_AI.providerName]: PROVIDER_NAME, [GEN_AI.requestModel]: model };
  if (!sampling) return attributes;
  if (sampling.maxTokens) attributes[GEN_AI.requestMaxTokens] = sampling.maxTokens;
  if (sampling.temperature !== undefined) attributes[GEN_AI.requestTemperature] = sampling.temperature;
  if (sampling.topP) attributes[GEN_AI.requestTopP] = sampling.topP;
  if (sampling.topK) attributes[GEN_AI.requestTopK] = sampling.topK;
  if (sampling.seed !== undefined && sampling.seed !== 0 && sampling.seed !== 0n) attributes[GEN_AI.requestSeed] = Number(sampling.seed);
  if (sampling.stop && sampling.stop.length > 0) attributes[GEN_AI.requestStopSequences] = [...sampling.stop];
  return attributes;
}

/** Usage and finish attributes of a finished generation. */
export function responseAttributes(model: string, finishReason: string, inputTokens: number, outputTokens: number): Attributes {
  return {
    [GEN_AI.responseModel]: model,
    [GEN_AI.responseFinishReasons]: [finishReason],
    [GEN_AI.usageInputTokens]: inputTokens,
    [GEN_AI.usageOutputTokens]: outputTokens,
  };
}

/** `gen_ai.input.messages` in the conventions' shape (role + text parts), as JSON text. */
export function inputMessagesJson(messages: readonly { role: string; content: string }[], prompt: string): string {
  const list = messages.length > 0 ? messages : [{ role: "user", content: prompt }];
  return JSON.stringify(list.map((m) => ({ role: m.role, parts: [{ type: "text", content: m.content }] })));
}

/** `gen_ai.output.messages` for one completion, as JSON text. */
export function outputMessagesJson(text: string, finishReason: string): string {
  return JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: text }], finish_reason: finishReason }]);
}

/** Marks a span failed with `error.type` (a code name, never a message that may carry input). */
export function failSpan(span: Span, errorType: string): void {
  span.setAttribute(ATTR_ERROR_TYPE, errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
}
