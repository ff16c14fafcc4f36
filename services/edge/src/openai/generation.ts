import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { GenerateRequestSchema } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateRequest, RouterService } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import { FinishReason } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { SamplingParams, TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { ToolCallPiece, ToolSettingsInit } from "./tools.js";
import type { Principal, RateLimitStatus } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { UsageStatus } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { asConnectError, Code, meshError } from "../../../../lib/errors.js";
import type { ConnectError } from "@connectrpc/connect";
import type { UsageRecorder } from "../usage-recorder.js";
import type { HeaderSource } from "../../../../lib/telemetry/index.js";
import type { AccessRecord, GenerationTelemetry } from "../generation-telemetry.js";

/** What one request needs from the edge around it. */
export interface RequestContext {
  requestId: string;
  principal: Principal;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** Response headers so far (x-request-id, ...); generation adds the backend. */
  headers: Record<string, string>;
  /** The request's own deadline, when shorter than the edge's default. */
  timeoutMs?: number;
  /** An experiment arm forced by an admin key (header x-mesh-force-backend). */
  forceBackend?: string;
  /** The incoming request's headers or metadata (the client's `traceparent`). */
  requestHeaders?: HeaderSource;
  /** Filled for the request's access log line (model, backend, tokens, TTFT, trace id). */
  access?: AccessRecord;
  /** How long a stream waits for its client to read before it is cut off (default DEFAULT_STREAM_STALL_MS, sse.ts). */
  streamStallMs?: number;
}

/** A validated request, whatever protocol it came in on. */
export interface GenerationInput {
  model: string;
  /** The conversation; empty for a text completion. */
  messages: { role: string; content: string; toolCalls?: { id: string; name: string; arguments: string }[]; toolCallId?: string }[];
  /** The text completion prompt; used when `messages` is empty. */
  prompt: string;
  sampling: Omit<SamplingParams, "$typeName" | "$unknown" | "minTokens" | "jsonSchema" | "logprobs" | "topLogprobs">;
  /** Log probabilities of the output tokens, with `top` alternatives each (absent: none). */
  logprobs?: { top: number };
  /** JSON schema text the output must follow ("{}": any JSON object); from `response_format`. */
  jsonSchema?: string;
  /** OpenAI `user`: the experiment unit when set. */
  user: string;
  /** The request as the client sent it (validated), for retention. */
  request: unknown;
  /** Function tools and the tool choice (absent: none). */
  tools?: ToolSettingsInit;
}

export type FinishReasonName = "stop" | "length" | "tool_calls";

export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What a generation yields, protocol-neutral: started, deltas, finished. */
export type GenerationEvent =
  | { type: "started"; promptTokens: number; backend: string; experiment: string; fingerprint: string }
  | { type: "delta"; text: string; toolCalls?: ToolCallPiece[]; logprobs?: TokenLogprob[] }
  | { type: "finished"; finishReason: FinishReasonName; usage: TokenUsage; engineMs: number; serverTiming: string };

const FINISH_REASON_NAMES: Partial<Record<FinishReason, FinishReasonName>> = {
  [FinishReason.STOP]: "stop",
  [FinishReason.LENGTH]: "length",
  [FinishReason.TOOL_CALLS]: "tool_calls",
};

/** Builds the router request from a generation input. */
export function toRouterRequest(input: GenerationInput, ctx: Pick<RequestContext, "requestId" | "principal" | "forceBackend">): GenerateRequest {
  return create(GenerateRequestSchema, {
    requestId: ctx.requestId,
    model: input.model,
    messages: input.messages,
    prompt: input.prompt,
    sampling: { ...input.sampling, jsonSchema: input.jsonSchema ?? "", logprobs: input.logprobs !== undefined, topLogprobs: input.logprobs?.top ?? 0 },
    unitId: input.user || ctx.principal.keyId,
    keyId: ctx.principal.keyId,
    forceBackend: ctx.principal.admin ? (ctx.forceBackend ?? "") : "",
    tools: input.tools,
  });
}

/** Whether a key may use a model (an empty allow-list allows every model). */
export function mayUse(principal: Principal, model: string): boolean {
  return principal.allowedModels.length === 0 || principal.allowedModels.includes(model);
}

/** A gate a generation passes before it reaches the router (rate-limit admission). */
export interface GenerationGate {
  admit(input: GenerationInput, ctx: RequestContext): Promise<void>;
  /** True when the router should admit this request itself, with the exact prompt count (`GenerateRequest.admit`), instead of `admit`. */
  routerAdmits?(ctx: RequestContext): boolean;
  /** The router's admission status arrived (in `Started`). */
  admitted?(status: RateLimitStatus, ctx: RequestContext): void;
  /** The client-facing error for a router refusal of the admission, if `err` is one. */
  refusal?(err: unknown, ctx: RequestContext): Error | undefined;
}

/** A whole (non-stream) generation: its start, its text and its finish. */
export interface CollectedGeneration {
  started: Extract<GenerationEvent, { type: "started" }>;
  text: string;
  /** Tool-call pieces in order (put back together with assembleToolCalls). */
  toolCalls: ToolCallPiece[];
  /** The output tokens' logprob entries, when asked for. */
  logprobs: TokenLogprob[];
  finished: Extract<GenerationEvent, { type: "finished" }>;
}

/** Runs a generation to its end for a non-stream answer; Unavailable if it ends without finishing. */
export async function collectGeneration(events: AsyncIterable<GenerationEvent>): Promise<CollectedGeneration> {
  let started: CollectedGeneration["started"] | undefined;
  let finished: CollectedGeneration["finished"] | undefined;
  let text = "";
  const toolCalls: ToolCallPiece[] = [];
  const logprobs: TokenLogprob[] = [];
  // Read to the end even after "finished": leaving the loop early would
  // cancel the router call (an RST_STREAM), and Node's HTTP/2 rapid-reset
  // guard closes a session that receives many, failing every call on it.
  for await (const event of events) {
    if (event.type === "started") started = event;
    else if (event.type === "delta") {
      text += event.text;
      if (event.toolCalls) toolCalls.push(...event.toolCalls);
      if (event.logprobs) logprobs.push(...event.logprobs);
    } else finished = event;
  }
  if (started && finished) return { started, text, toolCalls, logprobs, finished };
  throw meshError(Code.Unavailable, "the generation ended without finishing");
}

/**
 * The part every public protocol shares (OpenAI chat and text completions,
 * the gRPC/Connect InferenceService): scope check, then the gate (rate-limit
 * admission) when there is one, the router call with the
 * request's deadline and the client's abort signal, and exactly one usage
 * record for a request that reached a model (ok, error or cancelled, with
 * the tokens generated so far).
 */
export class Generations {
  constructor(
    private readonly router: Client<typeof RouterService>,
    private readonly usage: UsageRecorder,
    private readonly requestTimeoutMs: number,
    private readonly gate?: GenerationGate,
    private readonly telemetry?: GenerationTelemetry,
  ) {}

  /** Streams one generation; abandoning the iteration cancels it in the shard. */
  async *run(input: GenerationInput, ctx: RequestContext): AsyncGenerator<GenerationEvent> {
    // The scope check first, so a 403 costs no admission call.
    if (!mayUse(ctx.principal, input.model)) {
      throw meshError(Code.PermissionDenied, `This key may not use the model \`${input.model}\``, { reason: "permission_denied", param: "model" });
    }
    // Chat and completions are admitted by the router once it has tokenized the prompt (exact counts).
    const routerAdmits = this.gate?.routerAdmits?.(ctx) ?? false;
    if (!routerAdmits) await this.gate?.admit(input, ctx);
    // The response text is kept only for retention.
    const retain = !ctx.principal.retentionOptOut;
    const timeoutMs = Math.min(ctx.timeoutMs ?? this.requestTimeoutMs, this.requestTimeoutMs);
    let content = "";
    let promptTokens = 0;
    let completionTokens = 0;
    let backend = "";
    let ttftMs = 0;
    let status = UsageStatus.OK;
    let reachedModel = false;
    let finished = false;
    let failure: ConnectError | undefined;
    const observed = this.telemetry?.begin(input, ctx);
    try {
      const request = toRouterRequest(input, ctx);
      request.admit = routerAdmits;
      const events = this.router.generate(request, { signal: ctx.signal, timeoutMs, headers: observed?.headers });
      for await (const event of events) {
        switch (event.event.case) {
          case "started": {
            const started = event.event.value;
            reachedModel = true;
            if (started.rateLimit) this.gate?.admitted?.(started.rateLimit, ctx);
            promptTokens = started.promptTokens;
            backend = started.backend;
            ctx.headers["x-mesh-backend"] = backend;
            if (started.experiment) ctx.headers["x-mesh-experiment"] = started.experiment;
            observed?.started(backend, started.experiment);
            yield { type: "started", promptTokens, backend, experiment: started.experiment, fingerprint: started.systemFingerprint || `mesh-${backend}` };
            break;
          }
          case "delta": {
            const { text, tokenCount, toolCalls, logprobs } = event.event.value;
            if (!ttftMs) ttftMs = performance.now() - ctx.startedAt;
            observed?.delta(text);
            completionTokens += tokenCount;
            if (retain) content += text;
            const withLogprobs = logprobs.length > 0 ? { logprobs } : {};
            if (toolCalls.length > 0) {
              const pieces = toolCalls.map(({ index, id, name, arguments: args }) => ({ index, id, name, arguments: args }));
              yield { type: "delta", text, toolCalls: pieces, ...withLogprobs };
            } else if (text || logprobs.length > 0) yield { type: "delta", text, ...withLogprobs };
            break;
          }
          case "finished": {
            const done = event.event.value;
            promptTokens = done.promptTokens;
            completionTokens = done.completionTokens;
            finished = true;
            observed?.finished(FINISH_REASON_NAMES[done.finishReason] ?? "stop", promptTokens, completionTokens, done.engineMs);
            const meshMs = Math.max(0, performance.now() - ctx.startedAt - done.engineMs);
            yield {
              type: "finished",
              finishReason: FINISH_REASON_NAMES[done.finishReason] ?? "stop",
              usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
              engineMs: done.engineMs,
              serverTiming: `mesh;dur=${meshMs.toFixed(2)}, engine;dur=${done.engineMs.toFixed(2)}`,
            };
            break;
          }
          default:
            break;
        }
      }
    } catch (err) {
      const refusal = reachedModel ? undefined : this.gate?.refusal?.(err, ctx);
      if (refusal) {
        status = UsageStatus.ERROR;
        throw refusal;
      }
      const error = asConnectError(err);
      const cancelled = ctx.signal.aborted || error.code === Code.Canceled || error.code === Code.DeadlineExceeded;
      status = cancelled ? UsageStatus.CANCELLED : UsageStatus.ERROR;
      if (!cancelled) failure = error;
      throw error;
    } finally {
      // The consumer stopped early (client gone): the generation was cancelled.
      if (!finished && status === UsageStatus.OK) status = UsageStatus.CANCELLED;
      observed?.end(status === UsageStatus.OK ? "ok" : status === UsageStatus.CANCELLED ? "cancelled" : "error", promptTokens, completionTokens, failure);
      if (reachedModel) {
        this.usage.record({
          requestId: ctx.requestId,
          principal: ctx.principal,
          model: input.model,
          backend,
          promptTokens,
          completionTokens,
          status,
          ttftMs,
          e2eMs: performance.now() - ctx.startedAt,
          requestJson: retain ? JSON.stringify(input.request) : "",
          responseText: content,
        });
      }
    }
  }
}
