import type { IncomingMessage, ServerResponse } from "node:http";
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { GenerateRequestSchema } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import type { RouterService } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import { FinishReason } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { Principal } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { UsageStatus } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { asConnectError } from "../../../../lib/errors.js";
import { messageText, parseChatRequest } from "./chat-request.js";
import type { ChatRequest } from "./chat-request.js";
import { HttpError, sendError, toHttpError } from "./errors.js";
import { endEventStream, startEventStream, writeEvent } from "./sse.js";
import type { UsageRecorder } from "../usage-recorder.js";

const FINISH_REASON_NAMES: Partial<Record<FinishReason, string>> = {
  [FinishReason.STOP]: "stop",
  [FinishReason.LENGTH]: "length",
};

/** What one request needs from the edge around it. */
export interface RequestContext {
  requestId: string;
  principal: Principal;
  startedAt: number;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  headers: Record<string, string>;
}

/** Builds the router request from a validated chat request. */
export function toRouterRequest(body: ChatRequest, ctx: RequestContext) {
  const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
  return create(GenerateRequestSchema, {
    requestId: ctx.requestId,
    model: body.model,
    messages: body.messages.map((m) => ({ role: m.role === "developer" ? "system" : m.role, content: messageText(m.content) })),
    sampling: {
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? undefined,
      topK: body.top_k !== undefined && body.top_k > 0 ? body.top_k : undefined,
      minP: body.min_p,
      repetitionPenalty: body.repetition_penalty,
      frequencyPenalty: body.frequency_penalty ?? 0,
      presencePenalty: body.presence_penalty ?? 0,
      seed: body.seed == null ? undefined : body.seed >>> 0,
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? 0,
      stop,
      ignoreEos: body.ignore_eos ?? false,
    },
    unitId: body.user || ctx.principal.keyId,
    keyId: ctx.principal.keyId,
  });
}

/**
 * POST /v1/chat/completions: validates, calls the router (server
 * streaming) and translates its events to OpenAI JSON or SSE.
 */
export class ChatCompletions {
  constructor(
    private readonly router: Client<typeof RouterService>,
    private readonly usage: UsageRecorder,
    private readonly requestTimeoutMs: number,
  ) {}

  async handle(_req: IncomingMessage, res: ServerResponse, rawBody: unknown, ctx: RequestContext): Promise<void> {
    const body = parseChatRequest(rawBody);
    const { principal } = ctx;
    if (principal.allowedModels.length > 0 && !principal.allowedModels.includes(body.model)) {
      throw new HttpError(403, `This key may not use the model \`${body.model}\``, "invalid_request_error", "model", "permission_denied");
    }
    const id = `chatcmpl-${ctx.requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const stream = body.stream === true;
    const includeUsage = body.stream_options?.include_usage === true;
    let content = "";
    let promptTokens = 0;
    let completionTokens = 0;
    let backend = "";
    let fingerprint = "";
    let ttftMs = 0;
    let status = UsageStatus.OK;
    let reachedModel = false;
    try {
      const events = this.router.generate(toRouterRequest(body, ctx), { signal: ctx.signal, timeoutMs: this.requestTimeoutMs });
      const chunk = (delta: object, finishReason: string | null) => ({
        id,
        object: "chat.completion.chunk",
        created,
        model: body.model,
        system_fingerprint: fingerprint,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      });
      for await (const event of events) {
        switch (event.event.case) {
          case "started": {
            reachedModel = true;
            promptTokens = event.event.value.promptTokens;
            backend = event.event.value.backend;
            fingerprint = event.event.value.systemFingerprint || `mesh-${backend}`;
            const headers = { ...ctx.headers, "x-mesh-backend": backend };
            if (event.event.value.experiment) (headers as Record<string, string>)["x-mesh-experiment"] = event.event.value.experiment;
            ctx.headers = headers;
            if (stream) {
              startEventStream(res, headers);
              writeEvent(res, chunk({ role: "assistant", content: "" }, null));
            }
            break;
          }
          case "delta": {
            const text = event.event.value.text;
            if (!ttftMs) ttftMs = performance.now() - ctx.startedAt;
            content += text;
            if (stream && text) writeEvent(res, chunk({ content: text }, null));
            break;
          }
          case "finished": {
            const finished = event.event.value;
            promptTokens = finished.promptTokens;
            completionTokens = finished.completionTokens;
            const finishReason = FINISH_REASON_NAMES[finished.finishReason] ?? "stop";
            const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
            const meshMs = performance.now() - ctx.startedAt - finished.engineMs;
            const timing = `mesh;dur=${meshMs.toFixed(2)}, engine;dur=${finished.engineMs.toFixed(2)}`;
            if (stream) {
              writeEvent(res, chunk({}, finishReason));
              if (includeUsage) {
                writeEvent(res, { id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: fingerprint, choices: [], usage });
              }
              endEventStream(res);
            } else {
              const json = JSON.stringify({
                id,
                object: "chat.completion",
                created,
                model: body.model,
                system_fingerprint: fingerprint,
                choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: finishReason }],
                usage,
              });
              res.writeHead(200, {
                ...ctx.headers,
                "content-type": "application/json",
                "content-length": Buffer.byteLength(json),
                "server-timing": timing,
                "openai-processing-ms": String(Math.round(performance.now() - ctx.startedAt)),
              });
              res.end(json);
            }
            break;
          }
          default:
            break;
        }
      }
    } catch (err) {
      const error = asConnectError(err);
      status = ctx.signal.aborted || error.code === Code.Canceled ? UsageStatus.CANCELLED : UsageStatus.ERROR;
      if (!res.headersSent) throw err;
      // The stream is open: say what went wrong in-band, then end it.
      if (!res.writableEnded && !ctx.signal.aborted) {
        writeEvent(res, toHttpError(err, ctx.requestId).body());
        endEventStream(res);
      }
    } finally {
      if (reachedModel) {
        this.usage.record({
          requestId: ctx.requestId,
          principal,
          model: body.model,
          backend,
          promptTokens,
          completionTokens,
          status,
          ttftMs,
          e2eMs: performance.now() - ctx.startedAt,
          requestJson: principal.retentionOptOut ? "" : JSON.stringify(body),
          responseText: principal.retentionOptOut ? "" : content,
        });
      }
    }
  }
}

export { sendError };
