import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ShardService } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { loadShardConfig } from "../../services/model-shard/src/config.js";
import { build as buildShard } from "../../services/model-shard/src/server.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

/** One sample's value from a Prometheus text exposition (undefined: no such series). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("model-shard with METRICS_PORT=0", () => {
  let dir: string;
  let shard: Awaited<ReturnType<typeof buildShard>>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-metrics-"));
    const model = path.join(dir, "tiny.gguf");
    await writeTinyModel(model);
    const log = createLogger("test");
    log.level = "warn";
    const backend = { name: "local", engine: "llama.cpp", model, sequences: 2, threads: 1, gpu: false };
    const config = loadShardConfig({ PORT: "0", METRICS_PORT: "0", MESH_SHARD_MODEL: "tiny-llama", MESH_SHARD_BACKEND: JSON.stringify(backend) });
    shard = await buildShard(config, log);
  });

  afterAll(async () => {
    await shard?.close(1_000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("moves vLLM's counters and histograms by one generation's numbers", async () => {
    expect(shard.metricsPort).toBeGreaterThan(0);
    const scrape = async (): Promise<string> => {
      const res = await fetch(`http://127.0.0.1:${shard.metricsPort}/metrics`);
      expect(res.status).toBe(200);
      return res.text();
    };
    const before = await scrape();
    const m = '{model_name="tiny-llama"}';
    expect(sample(before, `vllm:generation_tokens_total${m}`)).toBe(0);
    expect(sample(before, `vllm:time_to_first_token_seconds_count${m}`)).toBe(0);

    const client = grpcClient(ShardService, `127.0.0.1:${shard.port}`);
    const promptTokenIds = [1, 5, 6, 7];
    let completionTokens = -1;
    let messages = 0;
    for await (const res of client.generate(
      { requestId: "metrics", promptTokenIds, sampling: { temperature: 0, maxTokens: 6, ignoreEos: true } },
      { timeoutMs: 30_000 },
    )) {
      if (res.finishReason) completionTokens = res.completionTokens;
      else messages++;
    }
    expect(completionTokens).toBe(6);

    const after = await scrape();
    expect(sample(after, `vllm:generation_tokens_total${m}`)).toBe(completionTokens);
    expect(sample(after, `vllm:prompt_tokens_total${m}`)).toBe(promptTokenIds.length);
    expect(sample(after, `vllm:time_to_first_token_seconds_count${m}`)).toBe(1);
    expect(sample(after, `vllm:e2e_request_latency_seconds_count${m}`)).toBe(1);
    // Every token after the first message's gets an inter-token latency.
    expect(sample(after, `vllm:inter_token_latency_seconds_count${m}`)).toBeLessThanOrEqual(completionTokens - 1);
    if (messages === completionTokens) expect(sample(after, `vllm:inter_token_latency_seconds_count${m}`)).toBe(completionTokens - 1);
    expect(sample(after, 'vllm:request_success_total{model_name="tiny-llama",finished_reason="length"}')).toBe(1);
    expect(sample(after, `vllm:num_requests_running${m}`)).toBe(0);
    expect(sample(after, `vllm:num_requests_waiting${m}`)).toBe(0);
    expect(sample(after, `vllm:kv_cache_usage_perc${m}`)).toBe(0);
    expect(sample(after, `mesh_requests_cancelled_total${m}`)).toBe(0);
  });
});

describe("the edge's GET /metrics", () => {
  let mesh: InProcessMesh;

  beforeAll(async () => {
    mesh = await startInProcessMesh();
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it("counts requests by route and status on the edge's own port", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }),
    });
    expect(res.status).toBe(200);
    await res.json();
    expect((await fetch(`${mesh.url}/no/such/path/123`)).status).toBe(404);
    const metrics = await fetch(`${mesh.url}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(sample(text, 'mesh_http_requests_total{route="/v1/chat/completions",status="200"}')).toBe(1);
    expect(sample(text, 'mesh_http_requests_total{route="other",status="404"}')).toBe(1);
    expect(sample(text, 'mesh_request_duration_seconds_count{route="/v1/chat/completions"}')).toBe(1);
    expect(text).toContain("# TYPE process_resident_memory_bytes gauge");
  });
});
