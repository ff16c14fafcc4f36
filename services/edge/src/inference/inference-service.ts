import { create } from "@bufbuild/protobuf";
import type { Client, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  CreateChatCompletionResponseSchema,
  EmbedResponseSchema,
  ListModelsResponseSchema,
  StreamChatCompletionResponseSchema,
} from "../../../../src/gen/mesh/inference/v1/inference_pb.js";
import type {
  ChatCompletionParams,
  CreateChatCompletionRequest,
  CreateChatCompletionResponse,
  EmbedRequest,
  EmbedResponse,
  InferenceService as InferenceServiceDesc,
  ListModelsResponse,
  StreamChatCompletionRequest,
  StreamChatCompletionResponse,
} from "../../../../src/gen/mesh/inference/v1/inference_pb.js";
import type { RouterService } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import type { TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { Principal } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { Code, meshError } from "../../../../lib/errors.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import { chatGenerationInput, parseChatRequest } from "../openai/chat-request.js";
import { toPublicConnectError } from "../openai/errors.js";
import { collectGeneration } from "../openai/generation.js";
import type { Generations, RequestContext } from "../openai/generation.js";
import type { PrincipalCache } from "../principal-cache.js";
import { embeddingsRequestSchema } from "../openai/embeddings.js";
import type { Embeddings } from "../openai/embeddings.js";
import { parseWith } from "../openai/chat-request.js";
import { assembleToolCalls } from "../openai/tools.js";
import { authenticateBearer } from "../bearer-auth.js";
import { modelsFor } from "../model-list.js";
import { CLIENT_REQUEST_ID_HEADER, clientRequestIdOf, newRequestId } from "../request-parsing.js";

export interface InferenceDeps {
  generations: Generations;
  principals: PrincipalCache;
  router: Client<typeof RouterService>;
  log: Logger;
  /** Embed (absent: Unimplemented). */
  embeddings?: Embeddings;
}

/**
 * The public `mesh.inference.v1.InferenceService` (Connect, gRPC and
 * gRPC-web on the edge's port): the same bearer auth (in the
 * `authorization` metadata), validation, generation path and error codes as
 * the OpenAI REST surface. Validation errors carry the OpenAI `param` and
 * `code` in the `x-mesh-error-param` / `x-mesh-error-reason` metadata.
 */
export class InferenceServiceImpl implements ServiceImpl<typeof InferenceServiceDesc> {
  constructor(private readonly deps: InferenceDeps) {}

  async createChatCompletion(req: CreateChatCompletionRequest, ctx: HandlerContext): Promise<CreateChatCompletionResponse> {
    const rc = await this.#begin(ctx);
    try {
      const input = chatGenerationInput(parseChatRequest(toChatBody(req.params)));
      const created = BigInt(Math.floor(Date.now() / 1000));
      const { started, text, toolCalls, logprobs, finished } = await collectGeneration(this.deps.generations.run(input, rc));
      ctx.responseHeader.set("server-timing", finished.serverTiming);
      return create(CreateChatCompletionResponseSchema, {
        id: `chatcmpl-${rc.requestId}`,
        model: input.model,
        content: text,
        finishReason: finished.finishReason,
        usage: toUsage(finished.usage),
        created,
        backend: started.backend,
        toolCalls: assembleToolCalls(toolCalls).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
        logprobs: publicLogprobs(logprobs),
      });
    } catch (err) {
      throw this.#fail(err, rc);
    }
  }

  async *streamChatCompletion(req: StreamChatCompletionRequest, ctx: HandlerContext): AsyncGenerator<StreamChatCompletionResponse> {
    const rc = await this.#begin(ctx);
    try {
      const input = chatGenerationInput(parseChatRequest(toChatBody(req.params)));
      const id = `chatcmpl-${rc.requestId}`;
      for await (const event of this.deps.generations.run(input, rc)) {
        if (event.type === "delta") {
          const logprobs = publicLogprobs(event.logprobs ?? []);
          yield create(StreamChatCompletionResponseSchema, { id, delta: event.text, toolCalls: event.toolCalls ?? [], logprobs });
        } else if (event.type === "finished") {
          ctx.responseTrailer.set("server-timing", event.serverTiming);
          yield create(StreamChatCompletionResponseSchema, { id, finishReason: event.finishReason, usage: toUsage(event.usage) });
        }
      }
    } catch (err) {
      throw this.#fail(err, rc);
    }
  }

  async embed(req: EmbedRequest, ctx: HandlerContext): Promise<EmbedResponse> {
    const rc = await this.#begin(ctx);
    try {
      if (!this.deps.embeddings) throw meshError(Code.Unimplemented, "embeddings are not served here");
      const body = parseWith(embeddingsRequestSchema, {
        model: req.model,
        input: req.input.length === 1 ? req.input[0] : [...req.input],
        ...(req.dimensions ? { dimensions: req.dimensions } : {}),
        ...(req.user ? { user: req.user } : {}),
      });
      const answer = await this.deps.embeddings.embed(body, rc);
      return create(EmbedResponseSchema, {
        data: answer.embeddings.map((e) => ({ values: e.values })),
        usage: { promptTokens: answer.promptTokens, completionTokens: 0, totalTokens: answer.promptTokens },
      });
    } catch (err) {
      throw this.#fail(err, rc);
    }
  }

  async listModels(_req: unknown, ctx: HandlerContext): Promise<ListModelsResponse> {
    const rc = await this.#begin(ctx);
    try {
      return create(ListModelsResponseSchema, {
        models: (await modelsFor(this.deps.router, rc.principal, ctx.signal)).map((m) => ({
          id: m.name,
          created: m.created,
          ownedBy: m.ownedBy,
          contextLength: m.contextLength,
        })),
      });
    } catch (err) {
      throw this.#fail(err, rc);
    }
  }

  /** A fresh request id (the client's own echoed), then the bearer key from the metadata. */
  async #begin(ctx: HandlerContext): Promise<RequestContext> {
    const startedAt = performance.now();
    const requestId = newRequestId();
    ctx.responseHeader.set("x-request-id", requestId);
    const clientRequestId = clientRequestIdOf((name) => ctx.requestHeader.get(name));
    if (clientRequestId) ctx.responseHeader.set(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    const partial = { requestId, principal: undefined as unknown as Principal, startedAt, signal: ctx.signal, headers: {}, requestHeaders: ctx.requestHeader };
    try {
      const principal = await this.#authenticate(ctx);
      return { ...partial, principal, timeoutMs: finiteOrUndefined(ctx.timeoutMs()) };
    } catch (err) {
      throw this.#fail(err, partial);
    }
  }

  #authenticate(ctx: HandlerContext): Promise<Principal> {
    return authenticateBearer(this.deps.principals, ctx.requestHeader.get("authorization"), ctx.signal, "metadata");
  }

  #fail(err: unknown, rc: Pick<RequestContext, "requestId">): unknown {
    const error = toPublicConnectError(err, rc.requestId);
    if (error.code === Code.Internal || error.code === Code.Unknown) this.deps.log.error({ requestId: rc.requestId, err }, "inference rpc failed");
    return error;
  }
}

/** The proto params as the OpenAI JSON body, so one schema validates both protocols. */
export function toChatBody(params: ChatCompletionParams | undefined): Record<string, unknown> {
  if (!params) return {};
  const body: Record<string, unknown> = {
    model: params.model,
    messages: params.messages.map((m) => ({
      role: m.role,
      content: m.content,
      ...(m.toolCalls.length > 0
        ? { tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) }
        : {}),
      ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}),
    })),
  };
  if (params.tools.length > 0) {
    body.tools = params.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        ...(t.parametersJson ? { parameters: parseParameters(t.parametersJson) } : {}),
      },
    }));
  }
  if (params.toolChoice)
    body.tool_choice = ["none", "auto", "required"].includes(params.toolChoice)
      ? params.toolChoice
      : { type: "function", function: { name: params.toolChoice } };
  if (params.parallelToolCalls !== undefined) body.parallel_tool_calls = params.parallelToolCalls;
  const optional: [string, number | undefined][] = [
    ["max_tokens", params.maxTokens],
    ["temperature", float(params.temperature)],
    ["top_p", float(params.topP)],
    ["top_k", params.topK],
    ["min_p", float(params.minP)],
    ["repetition_penalty", float(params.repetitionPenalty)],
    ["frequency_penalty", float(params.frequencyPenalty)],
    ["presence_penalty", float(params.presencePenalty)],
    ["seed", params.seed],
  ];
  for (const [name, value] of optional) if (value !== undefined) body[name] = value;
  if (params.stop.length > 0) body.stop = params.stop;
  if (params.user) body.user = params.user;
  if (params.ignoreEos) body.ignore_eos = true;
  if (params.logprobs) body.logprobs = true;
  if (params.topLogprobs > 0) body.top_logprobs = params.topLogprobs;
  return body;
}

/** A tool's parameters JSON; not JSON is a 400 naming `tools`. */
function parseParameters(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw meshError(Code.InvalidArgument, "tools[].parameters_json is not valid JSON", { reason: "invalid_value", param: "tools" });
  }
}

/** A float32 field back to the decimal the client most likely wrote (0.7, not 0.699999988). */
function float(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Number(value.toPrecision(7));
}

/** The mesh's logprob entries as the public API's (the same fields, its own package). */
function publicLogprobs(entries: readonly TokenLogprob[]) {
  const plain = (t: { token: string; logprob: number; bytes: Uint8Array }) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes });
  return entries.map((e) => ({ ...plain(e), topLogprobs: e.topLogprobs.map(plain) }));
}

function toUsage(usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number }) {
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, totalTokens: usage.total_tokens };
}

function finiteOrUndefined(value: number | undefined): number | undefined {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : undefined;
}
