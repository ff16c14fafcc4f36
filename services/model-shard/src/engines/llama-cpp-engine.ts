import * as os from "node:os";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { Code } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import type { LlamaCppBackend } from "../../../../lib/catalog/index.js";
import type { Engine, EngineChunk, EngineInfo, EngineRequest, EngineResult } from "../engine.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";

/** Upper bound on the default shared context, in tokens. */
const DEFAULT_CONTEXT_CAP_TOKENS = 16_384;

let llamaPromise: Promise<Llama> | undefined;

/** The process-wide llama.cpp binding: prebuilt binaries only, never a build. */
export function loadLlama(gpu: LlamaCppBackend["gpu"], threads: number): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu,
    build: "never",
    maxThreads: threads,
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  });
  return llamaPromise;
}

/** The cores this process may use (node-llama-cpp's default of 4 is far too many on 2 cores). */
export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/**
 * The llama.cpp engine: one model, one context with `sequences` parallel
 * sequences (continuous batching: every running sequence's next token is
 * decoded in the same batch). A free sequence is reused with the longest
 * common prompt prefix, so a shared system prompt is evaluated once.
 */
export class LlamaCppEngine implements Engine {
  readonly info: EngineInfo;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #free: LlamaContextSequence[];

  private constructor(model: LlamaModel, context: LlamaContext, sequences: LlamaContextSequence[], info: EngineInfo) {
    this.#model = model;
    this.#context = context;
    this.#free = sequences;
    this.info = info;
  }

  static async create(modelName: string, backend: LlamaCppBackend): Promise<LlamaCppEngine> {
    const threads = backend.threads ?? defaultThreads();
    const llama = await loadLlama(backend.gpu, threads);
    const model = await llama.loadModel({ modelPath: backend.model });
    const trainContext = model.trainContextSize;
    const contextSize = backend.context_size ?? Math.min(trainContext * backend.sequences, DEFAULT_CONTEXT_CAP_TOKENS);
    const context = await model.createContext({
      sequences: backend.sequences,
      contextSize,
      threads,
      batchSize: Math.max(512, backend.sequences * 16),
    });
    const sequences = Array.from({ length: backend.sequences }, () => context.getSequence());
    const perSequence = Math.min(trainContext, Math.floor(context.contextSize / backend.sequences));
    return new LlamaCppEngine(model, context, sequences, {
      engine: "llama.cpp",
      model: modelName,
      contextLength: perSequence,
      maxSequences: backend.sequences,
      systemFingerprint: `llama.cpp-${llama.gpu || "cpu"}`,
    });
  }

  async *generate(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    const prompt = request.promptTokenIds as Token[];
    if (prompt.length === 0) throw meshError(Code.InvalidArgument, "empty prompt");
    const { sampling } = request;
    if (prompt.length + sampling.maxTokens > this.info.contextLength) {
      throw meshError(
        Code.InvalidArgument,
        `prompt (${prompt.length} tokens) + max_tokens (${sampling.maxTokens}) exceeds the context length ${this.info.contextLength}`,
      );
    }
    const sequence = this.#takeSequence(prompt);
    if (!sequence) throw meshError(Code.ResourceExhausted, "no free sequence");
    let completionTokens = 0;
    let finishReason: EngineResult["finishReason"] = "stop";
    try {
      const reused = await reusePrefix(sequence, prompt);
      const detokenizer = new IncrementalDetokenizer(this.#model);
      const eog = new Set<Token>([this.#model.tokens.eos, this.#model.tokens.eot].filter((t): t is Token => t != null));
      const options: SequenceEvaluateOptions = {
        temperature: sampling.temperature,
        topP: sampling.topP,
        topK: sampling.topK,
        minP: sampling.minP,
        seed: sampling.seed,
        yieldEogToken: sampling.ignoreEos,
      };
      if (sampling.repetitionPenalty !== undefined || sampling.frequencyPenalty || sampling.presencePenalty) {
        const generated: Token[] = [];
        options.repeatPenalty = {
          punishTokens: () => generated.slice(-64),
          penalty: sampling.repetitionPenalty ?? 1,
          frequencyPenalty: sampling.frequencyPenalty || undefined,
          presencePenalty: sampling.presencePenalty || undefined,
        };
        detokenizer.onToken = (token) => generated.push(token);
      }
      if (sampling.maxTokens === 0) return { finishReason: "length", promptTokens: prompt.length, completionTokens: 0 };
      finishReason = "stop";
      for await (const token of sequence.evaluate(prompt.slice(reused), options)) {
        if (signal.aborted) {
          finishReason = "cancelled";
          break;
        }
        completionTokens++;
        const text = eog.has(token) ? "" : detokenizer.push(token);
        yield { tokenIds: [token], text };
        if (completionTokens >= sampling.maxTokens) {
          finishReason = "length";
          break;
        }
      }
      if (signal.aborted) finishReason = "cancelled";
      const tail = detokenizer.flush();
      if (tail) yield { tokenIds: [], text: tail };
      return { finishReason, promptTokens: prompt.length, completionTokens };
    } finally {
      this.#free.push(sequence);
    }
  }

  /** The free sequence whose context shares the longest prefix with `prompt`. */
  #takeSequence(prompt: readonly Token[]): LlamaContextSequence | undefined {
    let best = -1;
    let bestLength = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const length = commonPrefixLength(this.#free[i]!.contextTokens, prompt);
      if (length > bestLength) {
        best = i;
        bestLength = length;
      }
    }
    return best < 0 ? undefined : this.#free.splice(best, 1)[0];
  }

  async close(): Promise<void> {
    await this.#context.dispose();
    await this.#model.dispose();
  }
}

/**
 * Keeps the part of the sequence's context that equals the prompt's start
 * and erases the rest; returns how many prompt tokens are already evaluated.
 * At least one prompt token is always evaluated again to get fresh logits.
 */
async function reusePrefix(sequence: LlamaContextSequence, prompt: readonly Token[]): Promise<number> {
  const keep = Math.min(commonPrefixLength(sequence.contextTokens, prompt), prompt.length - 1);
  if (keep <= 0) {
    await sequence.clearHistory();
    return 0;
  }
  if (keep < sequence.nextTokenIndex) {
    await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
  }
  return keep;
}

function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
