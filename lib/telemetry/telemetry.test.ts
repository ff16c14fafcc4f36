import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { contextWith, parentContextFrom, telemetryConfigFrom, traceHeaders, tracerFor } from "./index.js";
import { trace } from "@opentelemetry/api";

describe("telemetry config from the standard OTEL_* variables", () => {
  it("is off by default and on with an OTLP endpoint (http/protobuf unless http/json is asked for)", () => {
    expect(telemetryConfigFrom({}).enabled).toBe(false);
    expect(tracerFor("edge", telemetryConfigFrom({}))).toBeUndefined();
    const on = telemetryConfigFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" });
    expect(on).toMatchObject({ enabled: true, exporter: "otlp", protocol: "http/protobuf", serviceNamePrefix: "llm-mesh", captureContent: false });
    expect(telemetryConfigFrom({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).protocol).toBe(
      "http/json",
    );
    expect(telemetryConfigFrom({ OTEL_TRACES_EXPORTER: "console" }).enabled).toBe(true);
  });

  it("turns off with OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none, and refuses what it cannot export", () => {
    expect(telemetryConfigFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).enabled).toBe(false);
    expect(telemetryConfigFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }).enabled).toBe(false);
    expect(() => telemetryConfigFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(
      /http\/protobuf or http\/json/,
    );
    expect(() => telemetryConfigFrom({ OTEL_TRACES_EXPORTER: "jaeger" })).toThrow(/OTEL_TRACES_EXPORTER/);
  });

  it("prefixes each service's name with OTEL_SERVICE_NAME and reads the content switch", () => {
    const config = telemetryConfigFrom({ OTEL_SERVICE_NAME: "acme-mesh", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true" });
    expect(config.serviceNamePrefix).toBe("acme-mesh");
    expect(config.captureContent).toBe(true);
    expect(telemetryConfigFrom({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "1" }).captureContent).toBe(false);
  });
});

describe("W3C trace context", () => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer("test");

  it("makes a span from a client's traceparent its child, and hands its own context to the next hop", () => {
    const incoming = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "vendor=x" };
    const span = tracer.startSpan("hop", {}, parentContextFrom(incoming));
    expect(span.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    const out = traceHeaders(span);
    expect(out.traceparent).toMatch(new RegExp(`^00-0af7651916cd43dd8448eb211c80319c-${span.spanContext().spanId}-01$`));
    expect(out.tracestate).toBe("vendor=x");
    // The next hop reads it from gRPC metadata (Headers).
    const child = tracer.startSpan("next", {}, parentContextFrom(new Headers(out)));
    child.end();
    span.end();
    const [next] = exporter.getFinishedSpans();
    expect(next.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
    expect(trace.getSpan(contextWith(span))).toBe(span);
  });

  it("starts a new trace for a missing or malformed traceparent", () => {
    for (const source of [undefined, {}, { traceparent: "garbage" }, { traceparent: "00-00000000000000000000000000000000-b7ad6b7169203331-01" }]) {
      const span = tracer.startSpan("root", {}, parentContextFrom(source));
      expect(span.spanContext().traceId).not.toBe("00000000000000000000000000000000");
      span.end();
      expect(exporter.getFinishedSpans().at(-1)!.parentSpanContext).toBeUndefined();
    }
  });
});
