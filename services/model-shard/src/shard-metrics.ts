import { Counter, Gauge, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import { createRegistry, VLLM_BUCKETS } from "../../../lib/metrics/index.js";
import type { EngineFinishReason, EngineResult } from "./engine.js";
import type { SlotPool } from "./slot-pool.js";

/** vLLM's `finished_reason` label values for our finish reasons. */
const FINISHED_REASON: Record<EngineFinishReason, string> = { stop: "stop", length: "length", cancelled: "abort", tool_calls: "tool_calls" };

type Child<T extends { labels: (...args: never[]) => unknown }> = ReturnType<T["labels"]>;

/**
 * model-shard's Prometheus metrics under vLLM's own names (`vllm:*`, with a
 * `model_name` label) so vLLM dashboards and the Gateway API Inference
 * Extension's endpoint picker read our shards as they read vLLM; plus
 * `mesh_requests_cancelled_total` (callers that left, as TGI counts them)
 * and `mesh_requests_rejected_total` (answered "overloaded").
 * The load gauges are read from the slot pool at scrape time, so they
 * cost nothing on the request path.
 */
export class ShardMetrics {
  readonly registry: Registry;
  readonly #ttft: Child<Histogram>;
  readonly #itl: Child<Histogram>;
  readonly #e2e: Child<Histogram>;
  readonly #promptTokens: Child<Counter>;
  readonly #generationTokens: Child<Counter>;
  readonly #success: Counter<"model_name" | "finished_reason">;
  readonly #cancelled: Child<Counter>;
  readonly #rejected: Child<Counter>;
  readonly #model: string;

  constructor(model: string, pool: SlotPool, registry: Registry = createRegistry()) {
    this.registry = registry;
    this.#model = model;
    const labels = { model_name: model };
    const registers = [registry];
    const labelNames = ["model_name"] as const;
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.set(labels, read());
        },
      });
    };
    gauge("vllm:num_requests_running", "Number of requests holding a generation slot.", () => pool.load.running);
    gauge("vllm:num_requests_waiting", "Number of requests queued for a generation slot.", () => pool.load.queued);
    // llama.cpp gives each slot its own KV region: busy slots / all slots is the share in use.
    gauge("vllm:kv_cache_usage_perc", "KV-cache usage: 1 means 100 percent (busy slots over all slots).", () => pool.load.running / Math.max(1, pool.slots));
    // Series start at zero, so rates and dashboards see them before the first request.
    const histogram = (name: string, help: string, buckets: readonly number[]): Child<Histogram> => {
      const metric = new Histogram({ name, help, labelNames, registers, buckets: [...buckets] });
      metric.zero(labels);
      return metric.labels(labels);
    };
    this.#ttft = histogram(
      "vllm:time_to_first_token_seconds",
      "Time from arrival to the first streamed token, in seconds.",
      VLLM_BUCKETS.timeToFirstTokenSeconds,
    );
    this.#itl = histogram("vllm:inter_token_latency_seconds", "Time between successive output tokens, in seconds.", VLLM_BUCKETS.interTokenLatencySeconds);
    this.#e2e = histogram("vllm:e2e_request_latency_seconds", "Time from arrival to the end of a request, in seconds.", VLLM_BUCKETS.e2eRequestLatencySeconds);
    const counter = (name: string, help: string): Child<Counter> => {
      const child = new Counter({ name, help, labelNames, registers }).labels(labels);
      child.inc(0);
      return child;
    };
    this.#promptTokens = counter("vllm:prompt_tokens_total", "Prompt tokens processed.");
    this.#generationTokens = counter("vllm:generation_tokens_total", "Tokens generated.");
    this.#cancelled = counter("mesh_requests_cancelled_total", "Requests dropped because their caller left (queued or running).");
    this.#rejected = counter("mesh_requests_rejected_total", "Requests answered overloaded (queue full).");
    this.#success = new Counter({
      name: "vllm:request_success_total",
      help: "Finished requests, by finish reason.",
      labelNames: ["model_name", "finished_reason"],
      registers,
    });
  }

  /** Starts timing one request that arrived at `arrivedAt` (performance.now()). */
  start(arrivedAt: number): RequestTiming {
    return new RequestTiming(this, arrivedAt);
  }

  /** @internal */
  tokens(arrivedAt: number, last: number, now: number, count: number): void {
    // Tokens that come with the first one have no gap of their own to measure.
    if (last < 0) return this.#ttft.observe((now - arrivedAt) / 1000);
    const perToken = (now - last) / 1000 / count;
    for (let i = 0; i < count; i++) this.#itl.observe(perToken);
  }

  /** @internal */
  end(arrivedAt: number, result: EngineResult | undefined, callerLeft: boolean, rejected: boolean): void {
    if (rejected) return this.#rejected.inc();
    if (callerLeft || result?.finishReason === "cancelled") this.#cancelled.inc();
    if (!result) return;
    this.#e2e.observe((performance.now() - arrivedAt) / 1000);
    this.#promptTokens.inc(result.promptTokens);
    this.#generationTokens.inc(result.completionTokens);
    this.#success.inc({ model_name: this.#model, finished_reason: FINISHED_REASON[result.finishReason] });
  }
}

/** One request's timing: TTFT on its first tokens, ITL between messages. */
export class RequestTiming {
  #last = -1;

  constructor(
    private readonly metrics: ShardMetrics,
    private readonly arrivedAt: number,
  ) {}

  /**
   * Records a streamed message carrying `count` tokens: the first message
   * gives TTFT; each later one splits its gap since the previous message
   * evenly over its tokens for inter-token latency.
   */
  tokens(count: number): void {
    if (count <= 0) return;
    const now = performance.now();
    this.metrics.tokens(this.arrivedAt, this.#last, now, count);
    this.#last = now;
  }

  /** Records how the request ended: `result` absent when it failed or never ran. */
  end(result: EngineResult | undefined, callerLeft: boolean, rejected = false): void {
    this.metrics.end(this.arrivedAt, result, callerLeft, rejected);
  }
}
