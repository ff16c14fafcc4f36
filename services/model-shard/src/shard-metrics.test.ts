import { describe, expect, it } from "vitest";
import { ShardMetrics } from "./shard-metrics.js";
import { SlotPool } from "./slot-pool.js";

describe("shard metrics", () => {
  it("exports vLLM's names with a model_name label, load read from the slot pool", async () => {
    const pool = new SlotPool(4, 8);
    const metrics = new ShardMetrics("tiny", pool);
    const release = await pool.acquire(new AbortController().signal);
    const text = await metrics.registry.metrics();
    for (const name of [
      "vllm:num_requests_running",
      "vllm:num_requests_waiting",
      "vllm:kv_cache_usage_perc",
      "vllm:time_to_first_token_seconds",
      "vllm:inter_token_latency_seconds",
      "vllm:e2e_request_latency_seconds",
      "vllm:request_success_total",
      "vllm:prompt_tokens_total",
      "vllm:generation_tokens_total",
      "mesh_requests_cancelled_total",
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('vllm:num_requests_running{model_name="tiny"} 1');
    expect(text).toContain('vllm:kv_cache_usage_perc{model_name="tiny"} 0.25');
    release();
  });

  it("observes TTFT once and one inter-token latency per token of each later message", async () => {
    const metrics = new ShardMetrics("tiny", new SlotPool(1, 1));
    const timing = metrics.start(performance.now());
    timing.tokens(2);
    timing.tokens(3);
    timing.tokens(0);
    timing.end({ finishReason: "length", promptTokens: 7, completionTokens: 5 }, false);
    const text = await metrics.registry.metrics();
    expect(text).toContain('vllm:time_to_first_token_seconds_count{model_name="tiny"} 1');
    expect(text).toContain('vllm:inter_token_latency_seconds_count{model_name="tiny"} 3');
    expect(text).toContain('vllm:e2e_request_latency_seconds_count{model_name="tiny"} 1');
    expect(text).toContain('vllm:request_success_total{model_name="tiny",finished_reason="length"} 1');
    expect(text).toContain('vllm:prompt_tokens_total{model_name="tiny"} 7');
    expect(text).toContain('vllm:generation_tokens_total{model_name="tiny"} 5');
    expect(text).toContain('mesh_requests_cancelled_total{model_name="tiny"} 0');
  });

  it("counts a caller that left as cancelled (finished_reason abort) and an overload as rejected", async () => {
    const metrics = new ShardMetrics("tiny", new SlotPool(1, 1));
    metrics.start(performance.now()).end({ finishReason: "cancelled", promptTokens: 3, completionTokens: 1 }, true);
    metrics.start(performance.now()).end(undefined, true);
    metrics.start(performance.now()).end(undefined, false, true);
    const text = await metrics.registry.metrics();
    expect(text).toContain('mesh_requests_cancelled_total{model_name="tiny"} 2');
    expect(text).toContain('mesh_requests_rejected_total{model_name="tiny"} 1');
    expect(text).toContain('vllm:request_success_total{model_name="tiny",finished_reason="abort"} 1');
  });
});
