import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";
import { until } from "../support/until.js";
import { encodeChat } from "../../services/tokenizer/src/prompt-encoder.js";

/** How soon after a client disconnects its shard sequence must be free. */
const SLOT_FREED_BOUND_MS = 2_000;

const headers = { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" };

describe("the request path edge → auth → router (tokenizing in process) → model-shard", () => {
  let mesh: InProcessMesh;

  beforeAll(async () => {
    mesh = await startInProcessMesh();
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it("serves grpc.health.v1 on every service", async () => {
    for (const port of [mesh.auth.port, mesh.router.port, mesh.tokenizer.port, mesh.shard.port, mesh.edge.port]) {
      const res = await grpcClient(Health, `127.0.0.1:${port}`).check({ service: "" }, { timeoutMs: 2_000 });
      expect(res.status).toBe(ServingStatus.SERVING);
    }
  });

  it("reports the engine's own token counts as usage", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "Count me" }], max_tokens: 5, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    // The conversation as the model's template renders it, tokenized by the tokenizer module, is what the shard evaluated.
    const expected = encodeChat(mesh.router.tokenizers.loaded.get("tiny-llama")!, [{ role: "user", content: "Count me" }], true).tokenIds.length;
    expect(body.usage.completion_tokens).toBe(5);
    expect(body.usage.prompt_tokens).toBe(expected);
    expect(expected).toBeGreaterThan(5);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(res.headers.get("x-mesh-backend")).toBe("local");
  });

  it("frees the shard's sequence when the client disconnects mid-stream", async () => {
    const abort = new AbortController();
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "Go on forever" }], max_tokens: 3_000, stream: true, ignore_eos: true }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await until(() => mesh.shard.pool.load.running === 1, 5_000);
    abort.abort();
    const freedMs = await until(() => mesh.shard.pool.load.running === 0, 5_000);
    console.log(`shard slot free ${freedMs.toFixed(1)} ms after the client disconnected`);
    expect(mesh.shard.pool.load.running).toBe(0);
    // A bounded-time goal: the cancel travels edge → router → shard at once (tens of ms); generous for a shared machine.
    expect(freedMs).toBeLessThan(SLOT_FREED_BOUND_MS);
  });
});
