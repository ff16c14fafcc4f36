import { ConfigError } from "../runtime/config.js";

/** The `service.name` prefix when `OTEL_SERVICE_NAME` is unset: `llm-mesh-edge`, `llm-mesh-router`, … */
export const DEFAULT_SERVICE_NAME_PREFIX = "llm-mesh";

/** OTLP protocols this build exports with (`grpc` is refused with a clear message). */
export type OtlpProtocol = "http/json" | "http/protobuf";

/** Tracing as the standard `OTEL_*` variables configure it. */
export interface TelemetryConfig {
  /** False unless an exporter is configured: off by default. */
  enabled: boolean;
  /** "otlp" or "console" when enabled. */
  exporter: "otlp" | "console" | "none";
  protocol: OtlpProtocol;
  /** `OTEL_SERVICE_NAME`, or "llm-mesh"; each service appends its own name. */
  serviceNamePrefix: string;
  /** `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: prompts and completions on spans (never for opted-out accounts). */
  captureContent: boolean;
}

/**
 * Reads the standard OpenTelemetry variables. Tracing is on only when an
 * exporter is asked for: `OTEL_TRACES_EXPORTER=otlp|console`, or an OTLP
 * endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
 * with `OTEL_TRACES_EXPORTER` unset. `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` turns it off. Sampling (`OTEL_TRACES_SAMPLER`,
 * `OTEL_TRACES_SAMPLER_ARG`), batching (`OTEL_BSP_*`), endpoint, headers and
 * timeout are read by the SDK itself.
 */
export function telemetryConfigFrom(env: NodeJS.ProcessEnv): TelemetryConfig {
  const listed = (env.OTEL_TRACES_EXPORTER ?? "").trim().toLowerCase();
  const endpoint = Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
  let exporter: TelemetryConfig["exporter"];
  if (listed === "") exporter = endpoint ? "otlp" : "none";
  else if (listed === "otlp" || listed === "console" || listed === "none") exporter = listed;
  else throw new ConfigError(`OTEL_TRACES_EXPORTER must be otlp, console or none (got "${listed}")`);
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") exporter = "none";
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf").trim().toLowerCase();
  if (protocol !== "http/json" && protocol !== "http/protobuf") {
    throw new ConfigError(
      `OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (got "${protocol}"; grpc is not built in: point it at a collector's HTTP port, 4318)`,
    );
  }
  return {
    enabled: exporter !== "none",
    exporter,
    protocol,
    serviceNamePrefix: env.OTEL_SERVICE_NAME?.trim() || DEFAULT_SERVICE_NAME_PREFIX,
    captureContent: (env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT ?? "").trim().toLowerCase() === "true",
  };
}

let processConfig: TelemetryConfig | undefined;

/** This process's telemetry config, read from `process.env` once. */
export function telemetryConfig(): TelemetryConfig {
  return (processConfig ??= telemetryConfigFrom(process.env));
}
