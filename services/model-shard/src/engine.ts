import type { ChatMessage, SamplingParams, ToolSettings } from "../../../src/gen/mesh/shard/v1/shard_pb.js";

/** One generation request as an engine sees it. */
export interface EngineRequest {
  requestId: string;
  /** Prompt token ids with the chat template applied (llama.cpp, sim). */
  promptTokenIds: readonly number[];
  /** The conversation, for engines that template it themselves. */
  messages: readonly ChatMessage[];
  /** Raw prompt text, for text completions on upstream engines. */
  prompt: string;
  sampling: SamplingParams;
  /** Function tools, for engines that take them natively (openai-upstream). */
  tools?: ToolSettings;
  /** W3C trace context for engines that call out (openai-upstream sends it as HTTP headers); absent when not tracing. */
  traceHeaders?: Record<string, string>;
}

/** A streamed piece of a tool call (the first of a call has its id and name). */
export interface EngineToolCallPiece {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

/** What a logprob of zero probability is reported as (OpenAI's stand-in; JSON has no -Infinity). */
export const MIN_LOGPROB = -9999;

/** Most alternatives per token a request may ask for (OpenAI's top_logprobs bound). */
export const MAX_TOP_LOGPROBS = 20;

/** One alternative at a position: its text, natural-log probability and bytes. */
export interface EngineTopLogprob {
  token: string;
  logprob: number;
  bytes: Uint8Array;
}

/**
 * The log probability of one generated token (only when `sampling.logprobs`),
 * with the most likely alternatives. The entries of a stream spell its text
 * (see `TokenLogprob` in shard.proto).
 */
export interface EngineLogprob extends EngineTopLogprob {
  topLogprobs: EngineTopLogprob[];
}

/** Tokens generated since the previous chunk, with their (UTF-8 complete) text. */
export interface EngineChunk {
  tokenIds: number[];
  text: string;
  /** Tokens this chunk stands for when ids are unknown (upstream engines). */
  tokenCount?: number;
  /** Tool-call pieces an upstream streamed. */
  toolCalls?: EngineToolCallPiece[];
  /** With `sampling.logprobs`: the entries of this chunk's tokens, spelling `text`. */
  logprobs?: EngineLogprob[];
}

export type EngineFinishReason = "stop" | "length" | "cancelled" | "tool_calls";

/** How a generation ended, with the engine's own token counts. */
export interface EngineResult {
  finishReason: EngineFinishReason;
  promptTokens: number;
  completionTokens: number;
}

export interface EngineInfo {
  engine: string;
  model: string;
  contextLength: number;
  maxSequences: number;
  systemFingerprint: string;
}

/**
 * An inference engine behind model-shard. `generate` yields chunks and
 * returns the result; it stops promptly when `signal` aborts (returning
 * finishReason "cancelled") and never throws a plain Error for a domain
 * failure (ConnectError with a precise Code).
 */
export interface Engine {
  readonly info: EngineInfo;
  generate(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineChunk, EngineResult>;
  close(): Promise<void>;
}

/** Inputs to embed: texts, or token ids. */
export type EmbedInputValue = string | readonly number[];

/** Embeddings of inputs, in order, and the tokens they took. */
export interface EmbedResult {
  vectors: ArrayLike<number>[];
  promptTokens: number;
}

/** An engine that embeds (llama.cpp's embedding context, an upstream's /embeddings). */
export interface Embedder {
  /** `dimensions` 0 means the model's own length; another the model cannot give is InvalidArgument. */
  embed(requestId: string, inputs: readonly EmbedInputValue[], dimensions: number, signal: AbortSignal): Promise<EmbedResult>;
}
