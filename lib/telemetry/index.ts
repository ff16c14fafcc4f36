export { telemetryConfig, telemetryConfigFrom, DEFAULT_SERVICE_NAME_PREFIX } from "./config.js";
export type { OtlpProtocol, TelemetryConfig } from "./config.js";
export { tracerFor, flushTelemetry, shutdownTelemetry, INSTRUMENTATION_SCOPE } from "./tracing.js";
export { parentContextFrom, traceHeaders, contextWith } from "./propagation.js";
export type { HeaderSource } from "./propagation.js";
export {
  GEN_AI,
  MESH,
  FIRST_TOKEN_EVENT,
  PROVIDER_NAME,
  genAiSpanName,
  requestAttributes,
  responseAttributes,
  inputMessagesJson,
  outputMessagesJson,
  failSpan,
} from "./genai.js";
export type { GenAiOperation, SamplingLike } from "./genai.js";
