import type { Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { telemetryConfig } from "./config.js";
import type { TelemetryConfig } from "./config.js";

/** The instrumentation scope every mesh tracer reports. */
export const INSTRUMENTATION_SCOPE = "llm-mesh";
const MESH_VERSION = "0.1.0";

const providers = new Map<string, BasicTracerProvider>();

function exporterFor(config: TelemetryConfig): SpanExporter {
  if (config.exporter === "console") return new ConsoleSpanExporter();
  // Endpoint, headers and timeout come from OTEL_EXPORTER_OTLP_* (read by the exporter).
  return config.protocol === "http/json" ? new OtlpJsonExporter() : new OtlpProtoExporter();
}

/**
 * The tracer of one service (`edge`, `router`, `model-shard`, …), or
 * undefined when tracing is off, so call sites pay one branch. Each
 * service has its own provider and resource (`service.name` is the
 * `OTEL_SERVICE_NAME` prefix plus the service: `llm-mesh-edge`), which keeps
 * services apart when the combined topology runs several in one process.
 * No global provider and no context manager: spans are parented explicitly.
 */
export function tracerFor(service: string, config: TelemetryConfig = telemetryConfig()): Tracer | undefined {
  if (!config.enabled) return undefined;
  const serviceName = `${config.serviceNamePrefix}-${service}`;
  let provider = providers.get(serviceName);
  if (!provider) {
    // OTEL_RESOURCE_ATTRIBUTES first, then the mesh's own service name on top.
    const resource = detectResources({ detectors: [envDetector] }).merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: MESH_VERSION }),
    );
    provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporterFor(config))] });
    providers.set(serviceName, provider);
  }
  return provider.getTracer(INSTRUMENTATION_SCOPE, MESH_VERSION);
}

/** Exports every span still buffered (tests, and before a process exits). */
export async function flushTelemetry(): Promise<void> {
  await Promise.all([...providers.values()].map((p) => p.forceFlush()));
}

/** Flushes and stops every provider of this process. */
export async function shutdownTelemetry(): Promise<void> {
  const all = [...providers.values()];
  providers.clear();
  await Promise.all(all.map((p) => p.shutdown()));
}
