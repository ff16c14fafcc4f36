import { getLlama, LlamaGrammarEvaluationState, LlamaLogLevel } from "node-llama-cpp";
import type { Llama, LlamaContext, LlamaContextSequence, LlamaGrammar, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { Code } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import type { LlamaCppBackend } from "../../../../lib/catalog/index.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import type { Engine, EngineChunk, EngineInfo, EngineLogprob, EngineRequest, EngineResult } from "../engine.js";
import { LogprobAligner } from "../logprob-aligner.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";
import { LogprobBuilder, TokenPieces } from "./llama-logprobs.js";
import type { SampledToken } from "./llama-logprobs.js";
import { DecodeStepper, sequenceOrderStrategy } from "./llama-batching.js";
import { guardedLlama, runGpuProbe } from "./llama-gpu-guard.js";
import type { GpuVerdict } from "./llama-gpu-guard.js";
import { JsonGrammars } from "./llama-json-grammar.js";
import { Utf8Guards } from "./llama-utf8-guard.js";
import type { Utf8Guard } from "./llama-utf8-guard.js";
import { availableCores, measureThreads, threadCandidates } from "./llama-threads.js";
import type { ThreadChoice } from "./llama-threads.js";
import { checkPromptFits, sharedContextSize } from "./llama-context.js";

let llamaPromise: Promise<{ llama: Llama; verdict: GpuVerdict }> | undefined;

/**
 * The process-wide llama.cpp binding: prebuilt binaries only, never a build.
 * With `gpu: "auto"`, a GPU that getLlama picks is first tried in a child
 * process (see llama-gpu-guard.ts); the verdict is kept for the process.
 */
export function loadLlama(backend: Pick<LlamaCppBackend, "gpu" | "model">, threads: number, log?: Logger): Promise<{ llama: Llama; verdict: GpuVerdict }> {
  llamaPromise ??= guardedLlama(backend, {
    getLlama: (gpu) => getLlama({ gpu, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error, progressLogs: false }),
    probe: (gpu, modelPath) => runGpuProbe(gpu, modelPath),
    warn: (fields, message) => (log ? log.warn(fields, message) : process.emitWarning(message)),
  });
  return llamaPromise;
}

/**
 * The llama.cpp engine: one model, one context with `sequences` parallel
 * sequences (continuous batching: with `batch_order: sequence`, every running
 * sequence's next token is decoded in the same llama_decode, see
 * llama-batching.ts). A free sequence is reused with the longest common
 * prompt prefix, so a shared system prompt is evaluated once.
 */
export class LlamaCppEngine implements Engine {
  readonly info: EngineInfo;
  /** The llama.cpp threads in use and, when measured at start, each candidate's decode tok/s. */
  readonly threads: ThreadChoice;
  /** The backend in use and, for `gpu: "auto"`, the probe's verdict. */
  readonly gpu: GpuVerdict;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #free: LlamaContextSequence[];
  readonly #stepper: DecodeStepper | undefined;
  readonly #decodes: { batches: number; items: number };
  readonly #grammars: JsonGrammars;
  readonly #pieces: TokenPieces;
  /** Keeps grammar output valid UTF-8, so a string's length is what the client sees (llama-utf8-guard.ts). */
  readonly #utf8: Utf8Guards;
  /** End-of-generation tokens: generated, counted, never shown as text. */
  readonly #eog: ReadonlySet<Token>;

  /** The loaded model (an embedding context shares its weights: llama-embeddings.ts). */
  get model(): LlamaModel {
    return this.#model;
  }

  /** Decode batches dispatched and sequences they held (sequence order only): their ratio is the mean batch width. */
  get batchStats(): { batches: number; items: number } {
    return { ...this.#decodes };
  }

  private constructor(parts: {
    llama: Llama;
    model: LlamaModel;
    context: LlamaContext;
    sequences: LlamaContextSequence[];
    info: EngineInfo;
    gpu: GpuVerdict;
    stepper?: DecodeStepper;
    decodes: { batches: number; items: number };
    threads: ThreadChoice;
  }) {
    this.threads = parts.threads;
    this.#model = parts.model;
    this.#context = parts.context;
    this.#free = parts.sequences;
    this.#stepper = parts.stepper;
    this.#decodes = parts.decodes;
    this.#grammars = new JsonGrammars(parts.llama);
    this.#pieces = new TokenPieces(parts.model);
    this.#utf8 = new Utf8Guards(parts.model);
    this.#eog = new Set([parts.model.tokens.eos, parts.model.tokens.eot].filter((t): t is Token => t != null));
    this.info = parts.info;
    this.gpu = parts.gpu;
  }

  static async create(modelName: string, backend: LlamaCppBackend, log?: Logger): Promise<LlamaCppEngine> {
    const candidates = backend.threads ? [backend.threads] : threadCandidates(availableCores());
    const { llama, verdict } = await loadLlama(backend, Math.max(...candidates), log);
    const model = await llama.loadModel({ modelPath: backend.model });
    // On a GPU the threads only feed it; the calibration is for CPU decoding.
    const choice: ThreadChoice = llama.gpu ? { threads: candidates.at(-1)!, tokensPerSecond: {} } : await measureThreads(model, candidates);
    const threads = choice.threads;
    if (candidates.length > 1)
      log?.info({ threads, candidates: choice.tokensPerSecond }, "llama.cpp threads measured at start (decode tok/s per thread count)");
    const trainContext = model.trainContextSize;
    const contextSize = sharedContextSize(backend, trainContext);
    let created: LlamaContext | undefined;
    const decodes = { batches: 0, items: 0 };
    const bySequence = backend.batch_order === "sequence";
    const stepper = bySequence ? new DecodeStepper() : undefined;
    const context = await model.createContext({
      sequences: backend.sequences,
      contextSize,
      threads,
      batchSize: Math.max(512, backend.sequences * 16),
      batching: bySequence
        ? {
            itemPrioritizationStrategy: sequenceOrderStrategy(
              () => created,
              decodes,
              () => stepper?.members ?? 0,
            ),
          }
        : undefined,
    });
    created = context;
    const sequences = Array.from({ length: backend.sequences }, () => context.getSequence());
    const perSequence = Math.min(trainContext, Math.floor(context.contextSize / backend.sequences));
    return new LlamaCppEngine({
      llama,
      model,
      context,
      sequences,
      gpu: verdict,
      stepper,
      decodes,
      info: {
        engine: "llama.cpp",
        model: modelName,
        contextLength: perSequence,
        maxSequences: backend.sequences,
        systemFingerprint: `llama.cpp-${llama.gpu || "cpu"}`,
      },
      threads: choice,
    });
  }

  async *generate(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    const prompt = request.promptTokenIds as Token[];
    const { sampling } = request;
    checkPromptFits(prompt.length, sampling.maxTokens, this.info.contextLength);
    const grammar = sampling.jsonSchema ? await this.#grammars.get(sampling.jsonSchema) : undefined;
    const sequence = this.#takeSequence(prompt);
    if (!sequence) throw meshError(Code.ResourceExhausted, "no free sequence");
    try {
      const reused = await reusePrefix(sequence, prompt);
      if (sampling.maxTokens === 0) return { finishReason: "length", promptTokens: prompt.length, completionTokens: 0 };
      const detokenizer = new IncrementalDetokenizer(this.#model);
      // Logprobs only when asked: the sampled token's probability alone, every candidate's only for alternatives.
      const logprobs = sampling.logprobs ? new LogprobBuilder(this.#pieces, sampling.topLogprobs) : undefined;
      const metadata = { confidence: logprobs !== undefined, probabilities: logprobs?.wantsProbabilities ?? false };
      const guard = grammar ? this.#utf8.create() : undefined;
      const options = this.#evaluateOptions(request, grammar, guard);
      const run = new TokenRun(sequence, prompt.slice(reused), metadata, options, sampling.maxTokens, this.#stepper, signal, guard);
      const json = grammar ? new JsonTail() : undefined;
      // The JSON tail holds back and trims text: entries follow what it shows.
      const aligner = logprobs && json ? new LogprobAligner() : undefined;
      let completionTokens = 0;
      let finishReason: EngineResult["finishReason"] = "stop";
      try {
        for (;;) {
          const sampled = await run.next();
          if (sampled === undefined) break;
          const token = sampled.token;
          completionTokens++;
          const eog = this.#eog.has(token);
          const text = eog ? "" : detokenizer.push(token);
          const shown = json ? json.push(text) : text;
          // An end-of-generation token is never shown, so it has no entry.
          let entries = logprobs && !eog ? logprobs.push(sampled, text, detokenizer.holding) : undefined;
          if (aligner) entries = aligner.push(entries, text, shown);
          yield { tokenIds: [token], text: shown, ...(entries ? { logprobs: entries } : {}) };
          if (json?.complete) break;
          if (completionTokens >= sampling.maxTokens) {
            finishReason = "length";
            break;
          }
        }
      } finally {
        await run.stop();
      }
      if (signal.aborted) finishReason = "cancelled";
      const tail = detokenizer.flush();
      const shownTail = json ? json.push(tail) : tail;
      let tailEntries: EngineLogprob[] | undefined = logprobs?.flush(tail);
      if (aligner) tailEntries = [...aligner.push(tailEntries, tail, shownTail), ...aligner.end()];
      if (shownTail || tailEntries?.length) yield { tokenIds: [], text: shownTail, ...(tailEntries ? { logprobs: tailEntries } : {}) };
      return { finishReason, promptTokens: prompt.length, completionTokens };
    } finally {
      this.#free.push(sequence);
    }
  }

  #evaluateOptions(request: EngineRequest, grammar: LlamaGrammar | undefined, guard?: Utf8Guard): SequenceEvaluateOptions {
    const { sampling } = request;
    const options: SequenceEvaluateOptions = {
      temperature: sampling.temperature,
      topP: sampling.topP,
      topK: sampling.topK,
      minP: sampling.minP,
      seed: sampling.seed,
      yieldEogToken: sampling.ignoreEos && !grammar,
    };
    if (grammar) options.grammarEvaluationState = new LlamaGrammarEvaluationState({ model: this.#model, grammar });
    if (guard) options.tokenBias = guard.bias;
    if (sampling.repetitionPenalty !== undefined || sampling.frequencyPenalty || sampling.presencePenalty) {
      options.repeatPenalty = {
        punishTokens: () => [], // replaced by TokenRun with the tokens it generated
        penalty: sampling.repetitionPenalty ?? 1,
        frequencyPenalty: sampling.frequencyPenalty || undefined,
        presencePenalty: sampling.presencePenalty || undefined,
      };
    }
    return options;
  }

  /** The free sequence whose context shares the longest prefix with `prompt`. */
  #takeSequence(prompt: readonly Token[]): LlamaContextSequence | undefined {
    let best = -1;
    let bestLength = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const length = commonPrefixLength(this.#free[i].contextTokens, prompt);
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
 * One sequence's generation, run ahead of its consumer: it takes each next
 * token as soon as the step barrier lets it (so a slow client never holds
 * back the others' decode step) and buffers what the consumer has not read.
 * The buffer is bounded by max_tokens.
 */
class TokenRun {
  readonly #buffer: SampledToken[] = [];
  readonly #done: Promise<void>;
  #finished = false;
  #stopped = false;
  #failure: unknown;
  #wake: (() => void) | undefined;
  /** Tokens generated so far, kept only for a repetition penalty. */
  #generated: Token[] | undefined;
  readonly #onAbort = (): void => {
    this.#stopped = true;
    this.#notify();
  };

  constructor(
    sequence: LlamaContextSequence,
    input: Token[],
    metadata: { confidence: boolean; probabilities: boolean },
    options: SequenceEvaluateOptions,
    private readonly maxTokens: number,
    private readonly stepper: DecodeStepper | undefined,
    private readonly signal: AbortSignal,
    /** Sees each token as it is sampled, before the next sample (its bias is in `options`). */
    private readonly guard?: Utf8Guard,
  ) {
    if (options.repeatPenalty) {
      const generated: Token[] = [];
      options.repeatPenalty = { ...options.repeatPenalty, punishTokens: () => generated.slice(-64) };
      this.#generated = generated;
    }
    signal.addEventListener("abort", this.#onAbort);
    this.#done = this.#produce(sequence.evaluateWithMetadata(input, metadata, options));
  }

  /** The next token (with its probabilities when asked), or undefined when generation ended (EOS, max_tokens, stop, abort). */
  async next(): Promise<SampledToken | undefined> {
    for (;;) {
      if (this.signal.aborted) return undefined;
      if (this.#buffer.length > 0) return this.#buffer.shift();
      if (this.#finished) {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- the engine's own caught error, passed on as it came
        if (this.#failure !== undefined && !this.#stopped) throw this.#failure;
        return undefined;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Stops generating and waits until the sequence is idle. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.signal.removeEventListener("abort", this.#onAbort);
    await this.#done;
  }

  async #produce(tokens: AsyncGenerator<SampledToken, void, void>): Promise<void> {
    const stepper = this.stepper;
    let member = false;
    let produced = 0;
    try {
      while (!this.#stopped && produced < this.maxTokens) {
        // A member waits for the step; the prompt only joins a step being gathered.
        const wait = member ? stepper?.arrive() : stepper?.enter();
        if (wait) await wait;
        if (this.#stopped) break;
        const next = await tokens.next();
        if (next.done) break;
        if (!member && stepper) {
          stepper.join();
          member = true;
        }
        produced++;
        this.#generated?.push(next.value.token);
        this.guard?.push(next.value.token);
        this.#buffer.push(next.value);
        this.#notify();
      }
    } catch (err) {
      this.#failure = err;
    } finally {
      if (member) stepper?.leave();
      this.#finished = true;
      this.#notify();
      await tokens.return(undefined).catch(() => undefined);
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * Output under a JSON grammar: node-llama-cpp's JSON grammars end in a run
 * of newlines ("\n" × 4 is their stop trigger, and trailing whitespace is
 * to be trimmed). Whitespace is held back until something follows it; four
 * newlines end the generation.
 */
class JsonTail {
  #held = "";
  complete = false;

  push(text: string): string {
    if (this.complete || !text) return "";
    const all = this.#held + text;
    const trigger = all.indexOf(JSON_STOP_TRIGGER);
    if (trigger >= 0) {
      this.complete = true;
      this.#held = "";
      return all.slice(0, trigger).trimEnd();
    }
    const body = all.trimEnd();
    this.#held = all.slice(body.length);
    return body;
  }
}

/** node-llama-cpp's stop trigger for its JSON grammars. */
const JSON_STOP_TRIGGER = "\n".repeat(4);

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
