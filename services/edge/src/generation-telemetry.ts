import { SpanKind } from "@opentelemetry/api";
import type { Span, Tracer } from "@opentelemetry/api";
import type { Registry } from "prom-client";
import { Code } from "../../../lib/errors.js";
import type { ConnectError } from "@connectrpc/connect";
import {
  failSpan,
  FIRST_TOKEN_EVENT,
  GEN_AI,
  genAiSpanName,
  inputMessagesJson,
  MESH,
  outputMessagesJson,
  parentContextFrom,
  requestAttributes,
  responseAttributes,
  telemetryConfig,
  traceHeaders,
  tracerFor,
} from "../../../lib/telemetry/index.js";
import type { GenAiOperation, HeaderSource } from "../../../lib/telemetry/index.js";
import { GenAiMetrics } from "./genai-metrics.js";

/** The `model` label of a generation that failed before the router accepted it (its name may be anything a client sent). */
export const UNROUTED_MODEL = "unrouted";

/** What the access line of a generation request adds to method, path, status and time. */
export interface AccessRecord {
  model?: string;
  backend?: string;
  promptTokens?: number;
  completionTokens?: number;
  ttftMs?: number;
  traceId?: string;
}

/** The parts of a generation's input and context the telemetry reads. */
export interface ObservedInput {
  model: string;
  messages: readonly { role: string; content: string }[];
  prompt: string;
  sampling: { maxTokens: number; temperature: number; topP?: number; topK?: number; seed?: number; stop: string[] };
}
export interface ObservedContext {
  requestId: string;
  principal: { retentionOptOut: boolean };
  startedAt: number;
  requestHeaders?: HeaderSource;
  access?: AccessRecord;
}

/**
 * The edge's view of generations: GenAI metrics always (a few histogram
 * observations per request), and, when tracing is on, one `chat {model}`
 * server span per request, parented on the client's `traceparent`, whose
 * context travels to the router in the call's metadata. Message content
 * goes on the span only with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`
 * and never for an account that opted out of retention.
 */
export class GenerationTelemetry {
  readonly #metrics: GenAiMetrics;

  constructor(
    registry: Registry,
    private readonly tracer: Tracer | undefined = tracerFor("edge"),
    private readonly captureContent: boolean = telemetryConfig().captureContent,
  ) {
    this.#metrics = new GenAiMetrics(registry);
  }

  /** Starts observing one generation (after the scope check and admission). */
  begin(input: ObservedInput, ctx: ObservedContext): GenerationObservation {
    const operation: GenAiOperation = input.messages.length > 0 ? "chat" : "text_completion";
    let span: Span | undefined;
    const capture = this.captureContent && !ctx.principal.retentionOptOut;
    if (this.tracer) {
      span = this.tracer.startSpan(
        genAiSpanName(operation, input.model),
        { kind: SpanKind.SERVER, attributes: { ...requestAttributes(operation, input.model, input.sampling), [MESH.requestId]: ctx.requestId } },
        parentContextFrom(ctx.requestHeaders),
      );
      if (capture) span.setAttribute(GEN_AI.inputMessages, inputMessagesJson(input.messages, input.prompt));
    }
    return new GenerationObservation(this.#metrics, operation, input.model, ctx, span, capture && span !== undefined);
  }
}

/** One generation being observed; every method is cheap when tracing is off. */
export class GenerationObservation {
  /** Metadata for the router call: the span's trace context (undefined when not tracing). */
  readonly headers: Record<string, string> | undefined;
  #ttftMs: number | undefined;
  #engineMs: number | undefined;
  #output = "";
  #routed = false;

  constructor(
    private readonly metrics: GenAiMetrics,
    private readonly operation: GenAiOperation,
    private readonly model: string,
    private readonly ctx: ObservedContext,
    private readonly span: Span | undefined,
    private readonly capture: boolean,
  ) {
    this.headers = span ? traceHeaders(span) : undefined;
    if (span && ctx.access) ctx.access.traceId = span.spanContext().traceId;
    if (ctx.access) ctx.access.model = model;
  }

  started(backend: string, experiment: string): void {
    this.#routed = true;
    if (this.ctx.access) this.ctx.access.backend = backend;
    if (!this.span) return;
    this.span.setAttribute(MESH.backend, backend);
    if (experiment) {
      const at = experiment.lastIndexOf("=");
      this.span.setAttribute(MESH.experiment, at < 0 ? experiment : experiment.slice(0, at));
      if (at >= 0) this.span.setAttribute(MESH.arm, experiment.slice(at + 1));
    }
  }

  /** A delta arrived; the first one is the first token. */
  delta(text: string): void {
    if (this.#ttftMs === undefined) {
      this.#ttftMs = performance.now() - this.ctx.startedAt;
      this.span?.addEvent(FIRST_TOKEN_EVENT);
    }
    if (this.capture) this.#output += text;
  }

  finished(finishReason: string, promptTokens: number, completionTokens: number, engineMs: number): void {
    this.#engineMs = engineMs;
    if (!this.span) return;
    this.span.setAttributes(responseAttributes(this.model, finishReason, promptTokens, completionTokens));
    this.span.setAttribute(GEN_AI.responseId, `${this.operation === "chat" ? "chatcmpl" : "cmpl"}-${this.ctx.requestId}`);
    this.span.setAttribute(MESH.engineMs, engineMs);
    if (this.capture) this.span.setAttribute(GEN_AI.outputMessages, outputMessagesJson(this.#output, finishReason));
  }

  /** The generation is over: "ok", "error" (with the failure) or "cancelled". */
  end(status: "ok" | "error" | "cancelled", promptTokens: number, completionTokens: number, error?: ConnectError): void {
    const e2eMs = performance.now() - this.ctx.startedAt;
    const errorType = error ? Code[error.code] : status === "cancelled" ? "Canceled" : undefined;
    const overheadMs = this.#engineMs === undefined ? undefined : Math.max(0, e2eMs - this.#engineMs);
    this.metrics.record({
      operation: this.operation,
      // Only a model the router accepted is a label value (bounded by the catalog).
      model: this.#routed ? this.model : UNROUTED_MODEL,
      status,
      errorType,
      inputTokens: promptTokens,
      outputTokens: completionTokens,
      e2eSeconds: e2eMs / 1000,
      ttftSeconds: this.#ttftMs === undefined ? undefined : this.#ttftMs / 1000,
      overheadSeconds: overheadMs === undefined ? undefined : overheadMs / 1000,
    });
    const access = this.ctx.access;
    if (access) {
      access.promptTokens = promptTokens;
      access.completionTokens = completionTokens;
      if (this.#ttftMs !== undefined) access.ttftMs = Math.round(this.#ttftMs * 10) / 10;
    }
    if (!this.span) return;
    if (overheadMs !== undefined) this.span.setAttribute(MESH.overheadMs, overheadMs);
    if (errorType && status !== "ok") failSpan(this.span, errorType);
    this.span.end();
  }
}
