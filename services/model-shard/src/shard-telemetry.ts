import { SpanKind } from "@opentelemetry/api";
import type { Span, Tracer } from "@opentelemetry/api";
import type { ConnectError } from "@connectrpc/connect";
import { Code } from "../../../lib/errors.js";
import {
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
import type { HeaderSource } from "../../../lib/telemetry/index.js";
import type { ShardServiceGenerateRequest } from "../../../src/gen/mesh/shard/v1/shard_pb.js";

/** The event marking the moment a sequence slot was free (the end of queueing). */
export const SLOT_ACQUIRED_EVENT = "mesh.slot_acquired";

/**
 * The shard's span per generation, when tracing is on: `chat {model}`
 * (server kind), parented on the router attempt's context from the call
 * metadata, with the engine, usage, the first token and the end of
 * queueing as an event.
 */
export class ShardTelemetry {
  constructor(
    private readonly engine: string,
    private readonly tracer: Tracer | undefined = tracerFor("model-shard"),
  ) {}

  begin(req: ShardServiceGenerateRequest, requestHeader: HeaderSource): ShardSpan | undefined {
    if (!this.tracer) return undefined;
    const operation = req.messages.length > 0 || req.prompt === "" ? "chat" : "text_completion";
    const span = this.tracer.startSpan(
      genAiSpanName(operation, req.model),
      {
        kind: SpanKind.SERVER,
        attributes: { ...requestAttributes(operation, req.model, req.sampling), [MESH.requestId]: req.requestId, [MESH.engine]: this.engine },
      },
      parentContextFrom(requestHeader),
    );
    return new ShardSpan(span, req.model);
  }
}

/** One generation's span on the shard. */
export class ShardSpan {
  #firstToken = false;

  constructor(
    readonly span: Span,
    private readonly model: string,
  ) {}

  /** Trace context for an engine that calls out (openai-upstream). */
  headers(): Record<string, string> {
    return traceHeaders(this.span);
  }

  slotAcquired(): void {
    this.span.addEvent(SLOT_ACQUIRED_EVENT);
  }

  tokens(): void {
    if (this.#firstToken) return;
    this.#firstToken = true;
    this.span.addEvent(FIRST_TOKEN_EVENT);
  }

  end(result: { finishReason: string; promptTokens: number; completionTokens: number } | undefined, engineMs: number, error?: ConnectError): void {
    if (result) this.span.setAttributes(responseAttributes(this.model, result.finishReason, result.promptTokens, result.completionTokens));
    this.span.setAttribute(MESH.engineMs, engineMs);
    if (error) failSpan(this.span, Code[error.code]);
    this.span.end();
  }
}
