import type { ChatMessage, SamplingParams } from "../../../src/gen/mesh/shard/v1/shard_pb.js";

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
}

/** Tokens generated since the previous chunk, with their (UTF-8 complete) text. */
export interface EngineChunk {
  tokenIds: number[];
  text: string;
  /** Tokens this chunk stands for when ids are unknown (upstream engines). */
  tokenCount?: number;
}

export type EngineFinishReason = "stop" | "length" | "cancelled";

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
