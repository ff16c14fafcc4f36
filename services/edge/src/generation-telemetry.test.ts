import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { createRegistry } from "../../../lib/metrics/index.js";
import { GenerationTelemetry, UNROUTED_MODEL } from "./generation-telemetry.js";
import type { AccessRecord } from "./generation-telemetry.js";

const INPUT = { model: "m", messages: [{ role: "user", content: "a secret plan" }], prompt: "", sampling: { maxTokens: 8, temperature: 0.5, stop: [] } };

function run(captureContent: boolean, retentionOptOut: boolean) {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer("test");
  const registry = createRegistry();
  const telemetry = new GenerationTelemetry(registry, tracer, captureContent);
  const access: AccessRecord = {};
  const observed = telemetry.begin(INPUT, { requestId: "r1", principal: { retentionOptOut }, startedAt: performance.now(), access });
  observed.started("local", "exp=b");
  observed.delta("the answer");
  observed.finished("stop", 4, 2, 1.5);
  observed.end("ok", 4, 2);
  const [span] = exporter.getFinishedSpans();
  return { span: span, registry, access, headers: observed.headers };
}

describe("edge generation telemetry", () => {
  it("names the span `chat {model}` with the GenAI request and response attributes, the arm and the first token", () => {
    const { span, headers, access } = run(false, false);
    expect(span.name).toBe("chat m");
    expect(span.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "m",
      "gen_ai.request.max_tokens": 8,
      "gen_ai.request.temperature": 0.5,
      "gen_ai.response.id": "chatcmpl-r1",
      "gen_ai.response.finish_reasons": ["stop"],
      "gen_ai.usage.input_tokens": 4,
      "gen_ai.usage.output_tokens": 2,
      "mesh.backend": "local",
      "mesh.experiment": "exp",
      "mesh.arm": "b",
    });
    expect(span.events.map((e) => e.name)).toEqual(["gen_ai.first_token"]);
    expect(headers?.traceparent).toContain(span.spanContext().spanId);
    expect(access).toMatchObject({ model: "m", backend: "local", promptTokens: 4, completionTokens: 2, traceId: span.spanContext().traceId });
  });

  it("captures content only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is on, and never for an opted-out account", () => {
    const content = (captureContent: boolean, optOut: boolean) => {
      const { span } = run(captureContent, optOut);
      return JSON.stringify(span.attributes);
    };
    expect(content(false, false)).not.toContain("a secret plan");
    expect(content(true, true)).not.toContain("a secret plan");
    expect(content(true, true)).not.toContain("the answer");
    const captured = run(true, false).span.attributes;
    expect(JSON.parse(String(captured["gen_ai.input.messages"]))).toEqual([{ role: "user", parts: [{ type: "text", content: "a secret plan" }] }]);
    expect(JSON.parse(String(captured["gen_ai.output.messages"]))).toEqual([
      { role: "assistant", parts: [{ type: "text", content: "the answer" }], finish_reason: "stop" },
    ]);
  });

  it("records the GenAI metrics and the mesh overhead, with only routed model names as labels", async () => {
    const { registry } = run(false, false);
    const text = await registry.metrics();
    expect(text).toContain('mesh_generation_requests_total{model="m",status="ok"} 1');
    expect(text).toContain('gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_request_model="m",gen_ai_token_type="input"} 4');
    expect(text).toMatch(/^mesh_overhead_seconds_count\{model="m"\} 1$/m);
    expect(text).toMatch(/^gen_ai_server_time_per_output_token_seconds_count\{gen_ai_operation_name="chat",gen_ai_request_model="m"\} 1$/m);

    const fresh = createRegistry();
    const telemetry = new GenerationTelemetry(fresh, undefined, false);
    const failed = telemetry.begin(
      { ...INPUT, model: "whatever-a-client-typed" },
      { requestId: "r2", principal: { retentionOptOut: false }, startedAt: performance.now() },
    );
    expect(failed.headers).toBeUndefined();
    failed.end("error", 0, 0, Object.assign(new Error("x"), { code: 5 }) as never);
    const after = await fresh.metrics();
    expect(after).not.toContain("whatever-a-client-typed");
    expect(after).toContain(`mesh_generation_requests_total{model="${UNROUTED_MODEL}",status="error"} 1`);
    expect(after).toContain('error_type="NotFound"');
  });
});
