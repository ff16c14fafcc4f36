import { SpanKind } from "@opentelemetry/api";
import type { Span, Tracer } from "@opentelemetry/api";
import type { ConnectError } from "@connectrpc/connect";
import { Code } from "../../../lib/errors.js";
import {
  contextWith,
  failSpan,
  FIRST_TOKEN_EVENT,
  genAiSpanName,
  MESH,
  parentContextFrom,
  requestAttributes,
  responseAttributes,
  traceHeaders,
  tracerFor,
} from "../../../lib/telemetry/index.js";
import type { GenAiOperation, HeaderSource } from "../../../lib/telemetry/index.js";
import type { GenerateRequest } from "../../../src/gen/mesh/router/v1/router_pb.js";

/**
 * The router's spans, when tracing is on: one `chat {model}` server span per
 * request (parented on the edge's trace context from the call metadata),
 * a `tokenize` span, and one client span per shard attempt, so a retry is a
 * span of its own, whose context goes to the shard in the call's metadata.
 */
export class RouterTelemetry {
  constructor(private readonly tracer: Tracer | undefined = tracerFor("router")) {}

  /** The request's span, or undefined when tracing is off. */
  begin(req: GenerateRequest, requestHeader: HeaderSource): RouterSpan | undefined {
    if (!this.tracer) return undefined;
    const operation: GenAiOperation = req.messages.length > 0 ? "chat" : "text_completion";
    const span = this.tracer.startSpan(
      genAiSpanName(operation, req.model),
      { kind: SpanKind.SERVER, attributes: { ...requestAttributes(operation, req.model, req.sampling), [MESH.requestId]: req.requestId } },
      parentContextFrom(requestHeader),
    );
    return new RouterSpan(this.tracer, span, operation, req.model);
  }
}

/** One routed request's span and its children. */
export class RouterSpan {
  #firstToken = false;

  constructor(
    private readonly tracer: Tracer,
    readonly span: Span,
    private readonly operation: GenAiOperation,
    private readonly model: string,
  ) {}

  /** A child span around the in-process templating and tokenizing. */
  tokenize(): Span {
    return this.tracer.startSpan("tokenize", { kind: SpanKind.INTERNAL }, contextWith(this.span));
  }

  routed(backend: string, experiment: string | undefined, arm: string | undefined): void {
    this.span.setAttribute(MESH.backend, backend);
    if (experiment) this.span.setAttribute(MESH.experiment, experiment);
    if (arm) this.span.setAttribute(MESH.arm, arm);
  }

  /** A client span for one try on one replica; its `headers` carry the trace to the shard. */
  attempt(replica: string, attempt: number): { span: Span; headers: Record<string, string> } {
    const span = this.tracer.startSpan(
      genAiSpanName(this.operation, this.model),
      { kind: SpanKind.CLIENT, attributes: { [MESH.replica]: replica, [MESH.attempt]: attempt, [MESH.retry]: attempt > 1 } },
      contextWith(this.span),
    );
    // The request span names the replica that served it (the last one tried).
    this.span.setAttribute(MESH.replica, replica);
    return { span, headers: traceHeaders(span) };
  }

  firstToken(): void {
    if (this.#firstToken) return;
    this.#firstToken = true;
    this.span.addEvent(FIRST_TOKEN_EVENT);
  }

  finished(finishReason: string, inputTokens: number, outputTokens: number): void {
    this.span.setAttributes(responseAttributes(this.model, finishReason, inputTokens, outputTokens));
  }

  end(error?: ConnectError, cancelled = false): void {
    if (error) failSpan(this.span, cancelled ? "Canceled" : Code[error.code]);
    this.span.end();
  }
}

/** Ends an attempt span, failed when `error` is set. */
export function endAttempt(attempt: { span: Span } | undefined, error?: ConnectError): void {
  if (!attempt) return;
  if (error) failSpan(attempt.span, Code[error.code]);
  attempt.span.end();
}
