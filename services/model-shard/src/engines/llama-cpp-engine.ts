import * as os from "node:os";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import type {
  BatchItem,
  CustomBatchingPrioritizationStrategy,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  PrioritizedBatchItem,
  SequenceEvaluateOptions,
  Token,
} from "node-llama-cpp";
import { Code } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import type { LlamaCppBackend } from "../../../../lib/catalog/index.js";
import type { Engine, EngineChunk, EngineInfo, EngineRequest, EngineResult } from "../engine.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";

/** How long a decode waits at most for the other running sequences to queue theirs. */
const MAX_DISPATCH_WAIT_MS = 2;

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
  readonly #gather: DecodeGatherer;
  /** Batching counters (see DecodeGatherer.stats). */
  get batchStats(): { batches: number; items: number } {
    return this.#gather.stats;
  }

  private constructor(model: LlamaModel, context: LlamaContext, sequences: LlamaContextSequence[], info: EngineInfo, gather: DecodeGatherer) {
    this.#gather = gather;
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
    let created: LlamaContext | undefined;
    const gather = new DecodeGatherer();
    const context = await model.createContext({
      sequences: backend.sequences,
      contextSize,
      threads,
      batchSize: Math.max(512, backend.sequences * 16),
      batching:
        backend.batch_order === "sequence"
          ? { itemPrioritizationStrategy: sequenceOrderStrategy(() => created, gather.stats), dispatchSchedule: gather.schedule }
          : undefined,
    });
    created = context;
    gather.queued = () => queuedDecodes(context).length;
    const sequences = Array.from({ length: backend.sequences }, () => context.getSequence());
    const perSequence = Math.min(trainContext, Math.floor(context.contextSize / backend.sequences));
    return new LlamaCppEngine(model, context, sequences, {
      engine: "llama.cpp",
      model: modelName,
      contextLength: perSequence,
      maxSequences: backend.sequences,
      systemFingerprint: `llama.cpp-${llama.gpu || "cpu"}`,
    }, gather);
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
      const tokens = sequence.evaluate(prompt.slice(reused), options);
      this.#gather.active++;
      try {
        for (;;) {
          const next = await tokens.next();
          if (next.done) break;
          if (signal.aborted) {
            finishReason = "cancelled";
            break;
          }
          completionTokens++;
          const token = next.value;
          const text = eog.has(token) ? "" : detokenizer.push(token);
          yield { tokenIds: [token], text };
          if (completionTokens >= sampling.maxTokens) {
            finishReason = "length";
            break;
          }
        }
      } finally {
        this.#gather.active--;
        await tokens.return(undefined);
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

/**
 * node-llama-cpp's dispatch schedule, made to wait (MAX_DISPATCH_WAIT_MS at
 * most) until every running sequence has queued its next decode, so one
 * decode step evaluates them all in one batch instead of several.
 */
export class DecodeGatherer {
  /** Decode batches dispatched, and sequences they held (sequence order only): their ratio is the mean batch width. */
  readonly stats = { batches: 0, items: 0 };
  /** Sequences generating now. */
  active = 0;
  /** How many decodes are queued in the context (set once the context exists). */
  queued: () => number = () => Infinity;

  readonly schedule = (dispatch: () => void): void => {
    const until = performance.now() + MAX_DISPATCH_WAIT_MS;
    const check = (): void => {
      if (this.queued() >= this.active || performance.now() >= until) dispatch();
      else setImmediate(check);
    };
    setImmediate(check);
  };
}

/** What node-llama-cpp keeps per queued decode (internal; read only to learn each item's sequence id). */
interface QueuedDecode {
  tokens: readonly Token[];
  sequenceId: number;
}

/**
 * Batch items ordered by sequence id, each given an equal share of the
 * batch. llama.cpp with a non-unified KV cache splits a batch into runs of
 * consecutive sequence ids, and node-llama-cpp queues decodes in completion
 * order, so without this one decode step of 8 sequences often runs as
 * several. Items whose sequence cannot be told keep their place at the end.
 */
export function sequenceOrderStrategy(
  context: () => LlamaContext | undefined,
  stats?: { batches: number; items: number },
): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    if (stats) {
      stats.batches++;
      stats.items += items.length;
    }
    const created = context();
    const queued = created ? queuedDecodes(created) : [];
    const ids = new Map<readonly Token[], number>(queued.map((q) => [q.tokens, q.sequenceId]));
    const ordered = [...items].sort((a, b) => (ids.get(a.tokens) ?? Infinity) - (ids.get(b.tokens) ?? Infinity));
    return fairShare(ordered, size);
  };
}

/** The decodes node-llama-cpp has queued (an internal field, read only; empty if it is ever renamed). */
function queuedDecodes(context: LlamaContext): readonly QueuedDecode[] {
  const queued = (context as unknown as { _queuedDecodes?: QueuedDecode[] })._queuedDecodes;
  return Array.isArray(queued) ? queued : [];
}

/** Every item gets an equal share of `size` tokens; what is left goes to items still wanting more, in order. */
function fairShare(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const result: PrioritizedBatchItem[] = [];
  let left = size;
  const share = Math.max(1, Math.floor(size / Math.max(1, items.length)));
  for (const item of items) {
    if (left <= 0) break;
    const amount = Math.min(item.tokens.length, share, left);
    result.push({ item, processAmount: amount });
    left -= amount;
  }
  for (const entry of result) {
    if (left <= 0) break;
    const more = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += more;
    left -= more;
  }
  return result;
}

function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
