import type { LlamaEmbeddingContext, LlamaModel, Token } from "node-llama-cpp";
import { Code, meshError } from "../../../../lib/errors.js";
import type { EmbedInputValue, EmbedResult, Embedder } from "../engine.js";

/** Largest embedding context made (tokens per input). */
const MAX_EMBEDDING_CONTEXT_TOKENS = 8192;

/**
 * Embeddings from llama.cpp through node-llama-cpp's embedding context
 * (`model.createEmbeddingContext`, `getEmbeddingFor`), sharing the loaded
 * model's weights with generation. The context is made on first use; inputs
 * are embedded one after another (one context), so one request's batch is
 * one queue turn. An input longer than the context is InvalidArgument.
 */
export class LlamaEmbedder implements Embedder {
  #context: Promise<LlamaEmbeddingContext> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly model: LlamaModel,
    private readonly threads: number,
  ) {}

  /** The model's own vector length. */
  get dimensions(): number {
    return this.model.embeddingVectorSize;
  }

  embed(_requestId: string, inputs: readonly EmbedInputValue[], dimensions: number, signal: AbortSignal): Promise<EmbedResult> {
    if (dimensions !== 0 && dimensions !== this.dimensions) {
      return Promise.reject(
        meshError(
          Code.InvalidArgument,
          `This model's embeddings have ${this.dimensions} dimensions and cannot be shortened: leave dimensions out or give ${this.dimensions}.`,
          {
            reason: "invalid_value",
            param: "dimensions",
          },
        ),
      );
    }
    const run = this.#queue.then(() => this.#embedAll(inputs, signal));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #embedAll(inputs: readonly EmbedInputValue[], signal: AbortSignal): Promise<EmbedResult> {
    const context = await (this.#context ??= this.model.createEmbeddingContext({
      contextSize: { max: Math.min(this.model.trainContextSize, MAX_EMBEDDING_CONTEXT_TOKENS) },
      threads: this.threads,
    }));
    const vectors: ArrayLike<number>[] = [];
    let promptTokens = 0;
    for (const [i, raw] of inputs.entries()) {
      if (signal.aborted) throw meshError(Code.Canceled, "the caller cancelled");
      const input = typeof raw === "string" ? raw : ([...raw] as Token[]);
      const length = context.calculateInputLength(input);
      const limit = Math.min(this.model.trainContextSize, MAX_EMBEDDING_CONTEXT_TOKENS);
      if (length > limit) {
        throw meshError(Code.InvalidArgument, `input[${i}] is ${length} tokens; this model embeds at most ${limit}.`, {
          reason: "context_length_exceeded",
          param: "input",
        });
      }
      promptTokens += length;
      vectors.push((await context.getEmbeddingFor(input)).vector);
    }
    return { vectors, promptTokens };
  }
}
