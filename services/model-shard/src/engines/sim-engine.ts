import { Code } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import { SIM_SYSTEM_FINGERPRINT } from "../../../../lib/catalog/index.js";
import type { SimBackend } from "../../../../lib/catalog/index.js";
import type { Engine, EngineChunk, EngineInfo, EngineRequest, EngineResult } from "../engine.js";

/** Placeholder output: token ids from this base upward, each with this text. */
const PLACEHOLDER_TOKEN_BASE = 1_000;
const PLACEHOLDER_TEXT = " sim";

/**
 * The simulator's explicit latency model. Pure: the property tests check it
 * and the engine sleeps by it.
 */
export class SimLatencyModel {
  constructor(
    readonly prefillTokensPerS: number,
    readonly decodeMsPerToken: number,
    readonly decodeMsPerExtraSequence: number,
    readonly maxBatch: number,
  ) {}

  static of(backend: Pick<SimBackend, "prefill_tokens_per_s" | "decode_ms_per_token" | "decode_ms_per_extra_sequence" | "max_batch">): SimLatencyModel {
    return new SimLatencyModel(backend.prefill_tokens_per_s, backend.decode_ms_per_token, backend.decode_ms_per_extra_sequence, backend.max_batch);
  }

  /** Time to evaluate a prompt, in ms (time to first token when nothing waits). */
  prefillMs(promptTokens: number): number {
    return (Math.max(0, promptTokens) / this.prefillTokensPerS) * 1000;
  }

  /** One decode step (one token of every running sequence), in ms, with `running` sequences in the batch. */
  decodeStepMs(running: number): number {
    const batch = Math.min(Math.max(1, running), this.maxBatch);
    return this.decodeMsPerToken + this.decodeMsPerExtraSequence * (batch - 1);
  }

  /** Tokens per second one stream sees with `running` sequences. */
  perStreamTokensPerS(running: number): number {
    const step = this.decodeStepMs(running);
    return step > 0 ? 1000 / step : Infinity;
  }

  /** End-to-end time of one request at a steady `running`, in ms. */
  requestMs(promptTokens: number, outputTokens: number, running: number): number {
    return this.prefillMs(promptTokens) + Math.max(0, outputTokens) * this.decodeStepMs(running);
  }
}

/**
 * A load-test engine: no model, placeholder tokens, latency from an explicit
 * model. For benchmarking the mesh only; `system_fingerprint` says so. The
 * shard's slot pool admits at most `max_batch` sequences (`maxSequences`)
 * and queues the rest, so load reports are real.
 */
export class SimEngine implements Engine {
  readonly info: EngineInfo;
  readonly latency: SimLatencyModel;
  #running = 0;

  constructor(
    modelName: string,
    private readonly backend: SimBackend,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.latency = SimLatencyModel.of(backend);
    this.info = {
      engine: "sim",
      model: modelName,
      contextLength: backend.context_length,
      maxSequences: backend.max_batch,
      systemFingerprint: SIM_SYSTEM_FINGERPRINT,
    };
  }

  /** Sequences decoding now. */
  get running(): number {
    return this.#running;
  }

  async *generate(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    const promptTokens = request.promptTokenIds.length;
    const { maxTokens, ignoreEos } = request.sampling;
    if (request.sampling.logprobs) {
      const message = "the sim engine (a latency model) has no token probabilities";
      throw meshError(Code.InvalidArgument, message, { reason: "unsupported_parameter", param: "logprobs" });
    }
    if (promptTokens + maxTokens > this.info.contextLength) {
      throw meshError(
        Code.InvalidArgument,
        `prompt (${promptTokens} tokens) + max_tokens (${maxTokens}) exceeds the context length ${this.info.contextLength}`,
      );
    }
    const eosAfter = !ignoreEos && this.backend.eos_after_tokens !== undefined ? this.backend.eos_after_tokens : Infinity;
    const target = Math.min(maxTokens, eosAfter);
    let generated = 0;
    if (!(await sleepUntil(this.now() + this.latency.prefillMs(promptTokens), this.now, signal))) {
      return { finishReason: "cancelled", promptTokens, completionTokens: 0 };
    }
    this.#running++;
    try {
      // Deadline-based: sleeping late never accumulates drift; overdue tokens go out together.
      let due = this.now();
      while (generated < target) {
        due += this.latency.decodeStepMs(this.#running);
        if (!(await sleepUntil(due, this.now, signal))) return { finishReason: "cancelled", promptTokens, completionTokens: generated };
        const ids: number[] = [];
        let text = "";
        const now = this.now();
        do {
          ids.push(PLACEHOLDER_TOKEN_BASE + (generated % 1000));
          text += PLACEHOLDER_TEXT;
          generated++;
          if (now < due + this.latency.decodeStepMs(this.#running)) break;
          due += this.latency.decodeStepMs(this.#running);
        } while (generated < target);
        yield { tokenIds: ids, text };
      }
      return { finishReason: generated >= maxTokens ? "length" : "stop", promptTokens, completionTokens: generated };
    } finally {
      this.#running--;
    }
  }

  async close(): Promise<void> {}
}

/** Sleeps until `at` (ms on `now`'s clock); false when `signal` aborted first. */
function sleepUntil(at: number, now: () => number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  const ms = at - now();
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
