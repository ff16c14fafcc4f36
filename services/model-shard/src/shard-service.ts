import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { EmbedResponseSchema, FinishReason, ShardServiceGenerateResponseSchema, WatchLoadResponseSchema } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type {
  EmbedRequest,
  ShardServiceGenerateRequest,
  ShardServiceGenerateResponse,
  ShardService as ShardServiceDesc,
  WatchLoadResponse,
} from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { StopMatcher } from "../../../lib/text/index.js";
import { asConnectError, Code, meshError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { coalesce } from "../../../lib/streaming/index.js";
import { MAX_TOP_LOGPROBS } from "./engine.js";
import type { Embedder, Engine, EngineChunk, EngineLogprob, EngineResult, EngineToolCallPiece } from "./engine.js";
import { LogprobAligner } from "./logprob-aligner.js";
import type { Load, SlotPool } from "./slot-pool.js";
import type { ShardMetrics } from "./shard-metrics.js";
import { ShardTelemetry } from "./shard-telemetry.js";

const FINISH_REASONS: Record<EngineResult["finishReason"], FinishReason> = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  cancelled: FinishReason.CANCELLED,
  tool_calls: FinishReason.TOOL_CALLS,
};

/**
 * The model-shard's RPC handlers: admission through the slot pool, stop
 * sequences on top of any engine, and load reports.
 */
export class ShardService implements ServiceImpl<typeof ShardServiceDesc> {
  readonly #telemetry: ShardTelemetry;

  constructor(
    private readonly engine: Engine,
    private readonly pool: SlotPool,
    private readonly log: Logger,
    private readonly metrics?: ShardMetrics,
    private readonly embedder?: Embedder,
  ) {
    this.#telemetry = new ShardTelemetry(engine.info.engine);
  }

  /** Embeds a batch of inputs; Unimplemented on engines that do not embed. */
  async embed(req: EmbedRequest, ctx: HandlerContext) {
    if (!this.embedder)
      throw meshError(Code.Unimplemented, `the ${this.engine.info.engine} engine does not serve embeddings`, { reason: "unsupported_model", param: "model" });
    if (req.inputs.length === 0) throw meshError(Code.InvalidArgument, "input must not be empty", { param: "input" });
    const inputs = req.inputs.map((i) => (i.text || i.tokenIds.length === 0 ? i.text : i.tokenIds));
    const { vectors, promptTokens } = await this.embedder.embed(req.requestId, inputs, req.dimensions, ctx.signal);
    return create(EmbedResponseSchema, { embeddings: vectors.map((v) => ({ values: Array.from(v) })), promptTokens });
  }

  async *generate(req: ShardServiceGenerateRequest, ctx: HandlerContext): AsyncGenerator<ShardServiceGenerateResponse> {
    const started = performance.now();
    const sampling = req.sampling;
    if (!sampling) throw meshError(Code.InvalidArgument, "sampling parameters are required");
    if (sampling.topLogprobs > MAX_TOP_LOGPROBS) {
      throw meshError(Code.InvalidArgument, `top_logprobs must be at most ${MAX_TOP_LOGPROBS}`, { param: "top_logprobs" });
    }
    const timing = this.metrics?.start(started);
    const span = this.#telemetry.begin(req, ctx.requestHeader);
    let result: EngineResult | undefined;
    let failure: ReturnType<typeof asConnectError> | undefined;
    const release = await this.pool.acquire(ctx.signal).catch((err: unknown) => {
      timing?.end(undefined, ctx.signal.aborted, !ctx.signal.aborted && asConnectError(err).code === Code.ResourceExhausted);
      span?.end(undefined, performance.now() - started, asConnectError(err));
      throw err;
    });
    span?.slotAcquired();
    let batches: AsyncGenerator<EngineChunk[], EngineResult> | undefined;
    let generated = 0;
    try {
      const stops = new StopMatcher(sampling.stop);
      // Stop sequences hold back and cut text: logprob entries follow what is sent.
      const aligner = sampling.logprobs ? new LogprobAligner() : undefined;
      const generation = this.engine.generate(
        {
          requestId: req.requestId,
          promptTokenIds: req.promptTokenIds,
          messages: req.messages,
          prompt: req.prompt,
          sampling,
          tools: req.tools,
          traceHeaders: span?.headers(),
        },
        ctx.signal,
      );
      batches = coalesce(generation);
      while (!result) {
        const next = await batches.next();
        if (next.done) {
          result = next.value;
          break;
        }
        const tokenIds: number[] = [];
        let text = "";
        let tokenCount = 0;
        const toolCalls: EngineToolCallPiece[] = [];
        const logprobs: EngineLogprob[] = [];
        for (const chunk of next.value) {
          if (chunk.toolCalls) toolCalls.push(...chunk.toolCalls);
          const count = chunk.tokenCount ?? chunk.tokenIds.length;
          generated += count;
          tokenCount += count;
          tokenIds.push(...chunk.tokenIds);
          const released = stops.push(chunk.text);
          text += released;
          if (aligner) logprobs.push(...aligner.push(chunk.logprobs, chunk.text, released));
          if (stops.stopped) break;
        }
        if (aligner && stops.stopped) logprobs.push(...aligner.end());
        timing?.tokens(tokenCount);
        if (tokenCount > 0) span?.tokens();
        if (text || tokenIds.length > 0 || toolCalls.length > 0 || logprobs.length > 0) {
          yield create(ShardServiceGenerateResponseSchema, { tokenIds, text, tokenCount, toolCalls, logprobs });
        }
        if (stops.stopped) {
          // The engine's generator is ended below (finally), off the response path.
          result = { finishReason: "stop", promptTokens: req.promptTokenIds.length, completionTokens: generated };
        }
      }
      const rest = stops.flush();
      yield create(ShardServiceGenerateResponseSchema, {
        text: rest,
        logprobs: aligner?.end(rest) ?? [],
        finishReason: FINISH_REASONS[result.finishReason],
        promptTokens: result.promptTokens,
        completionTokens: result.completionTokens,
        engineMs: performance.now() - started,
      });
    } catch (err) {
      const error = asConnectError(err);
      failure = error;
      if (!ctx.signal.aborted) this.log.warn({ requestId: req.requestId, code: error.code, err: error.message }, "generate failed");
      throw error;
    } finally {
      // The slot goes back only once the engine has let go of its sequence
      // (after its pending step): a waiter granted it earlier would find no
      // free sequence and be answered overloaded (R1 in docs/reliability.md).
      if (batches)
        void batches
          .return(undefined as never)
          .catch(() => {})
          .finally(release);
      else release();
      // A stream cancelled between messages has no engine result: count what it generated.
      const counted =
        result ?? (generated > 0 ? { finishReason: "cancelled" as const, promptTokens: req.promptTokenIds.length, completionTokens: generated } : undefined);
      timing?.end(counted, ctx.signal.aborted);
      span?.end(result, performance.now() - started, failure);
    }
  }

  async *watchLoad(req: { minIntervalMs: number }, ctx: HandlerContext): AsyncGenerator<WatchLoadResponse> {
    const minIntervalMs = Math.max(req.minIntervalMs, 0);
    let latest: Load = this.pool.load;
    let wake: (() => void) | undefined;
    let dirty = true;
    const unsubscribe = this.pool.onChange((load) => {
      latest = load;
      dirty = true;
      wake?.();
    });
    const onAbort = (): void => wake?.();
    ctx.signal.addEventListener("abort", onAbort);
    try {
      while (!ctx.signal.aborted) {
        if (dirty) {
          dirty = false;
          yield create(WatchLoadResponseSchema, { ...latest, kvCacheUsage: latest.running / Math.max(1, this.pool.slots) });
          if (minIntervalMs > 0) await new Promise((r) => setTimeout(r, minIntervalMs));
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      unsubscribe();
      ctx.signal.removeEventListener("abort", onAbort);
    }
  }
}
