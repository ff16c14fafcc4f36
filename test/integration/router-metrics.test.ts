import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";
import { until } from "../support/until.js";

describe("router and auth metrics", () => {
  let mesh: InProcessMesh;
  beforeAll(async () => {
    mesh = await startInProcessMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it("counts routed requests by model, backend and status and reports every replica's load, with tracing off", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TEST_API_KEY}`,
        "content-type": "application/json",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 3 }),
    });
    expect(res.status).toBe(200);
    const text = await mesh.router.metrics.registry.metrics();
    expect(text).toContain('mesh_router_requests_total{model="tiny-llama",backend="local",status="ok"} 1');
    expect(text).toMatch(/^mesh_router_replica_in_flight\{backend="local",replica="127\.0\.0\.1:\d+"\} 0$/m);
    expect(text).toMatch(/^mesh_router_replica_ejected\{backend="local",replica="127\.0\.0\.1:\d+"\} 0$/m);
    expect(text).toContain("# TYPE mesh_router_retries_total counter");
    expect(text).toContain("# TYPE mesh_experiment_requests_total counter");
    // The edge's /metrics: the GenAI metrics and the overhead, whether or not tracing is on.
    const edge = await (await fetch(`${mesh.url}/metrics`)).text();
    expect(edge).toMatch(/^mesh_overhead_seconds_count\{model="tiny-llama"\} 1$/m);
    expect(edge).toMatch(/^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_request_model="tiny-llama",error_type=""\} 1$/m);
  });

  it("counts admissions by result and usage batches, records and lag at auth, with fixed-word labels only", async () => {
    await until(async () => (await mesh.auth.metrics.registry.metrics()).includes('mesh_auth_usage_records_total{recorded="true"}'), 10_000, 50);
    // The tiny mesh's key has no limits (no admission call): ask auth once directly, for a key that does not exist.
    await expect(mesh.auth.auth.admit({ keyId: "no-such-key", requestId: "r", reserveTokens: 1 } as never)).rejects.toThrow();
    const text = await mesh.auth.metrics.registry.metrics();
    expect(text).toMatch(/^mesh_auth_admissions_total\{result="error"\} 1$/m);
    expect(text).toMatch(/^mesh_auth_usage_batches_total [1-9]/m);
    expect(text).toMatch(/^mesh_auth_usage_lag_seconds_count [1-9]/m);
    expect(text).not.toContain(TEST_API_KEY);
    expect(text).not.toContain("no-such-key");
  });
});
