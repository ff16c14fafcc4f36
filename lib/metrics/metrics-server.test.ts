import { Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistry, startMetricsServer } from "./index.js";
import type { MetricsServer } from "./index.js";

describe("metrics server", () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves the registry's metrics and the process metrics at GET /metrics on a free port", async () => {
    const registry = createRegistry();
    new Counter({ name: "vllm:generation_tokens_total", help: "Tokens generated.", labelNames: ["model_name"], registers: [registry] }).inc(
      { model_name: "m" },
      3,
    );
    server = await startMetricsServer(registry, { host: "127.0.0.1", port: 0 });
    expect(server.port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('vllm:generation_tokens_total{model_name="m"} 3');
    expect(text).toContain("# TYPE process_cpu_user_seconds_total counter");
    // Two registries concatenated: each metric family appears once.
    expect(text.match(/^# TYPE vllm:generation_tokens_total /gm)).toHaveLength(1);
  });

  it("answers 404 off /metrics and 405 for other methods", async () => {
    server = await startMetricsServer(createRegistry(), { host: "127.0.0.1", port: 0 });
    expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("keeps two services' registries apart in one process", async () => {
    const registries = [createRegistry(), createRegistry()];
    // The same metric name in both (a second registration in one registry would throw).
    const counters = registries.map((r) => new Counter({ name: "mesh_requests_cancelled_total", help: "x", registers: [r] }));
    counters[0].inc(3);
    counters[1].inc(5);
    expect(await registries[0].getSingleMetricAsString("mesh_requests_cancelled_total")).toMatch(/^mesh_requests_cancelled_total 3$/m);
    expect(await registries[1].getSingleMetricAsString("mesh_requests_cancelled_total")).toMatch(/^mesh_requests_cancelled_total 5$/m);
  });
});
