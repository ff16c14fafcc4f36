import { Code, ConnectError } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import type { UpstreamBackend } from "../../../../lib/catalog/index.js";
import type { ChatMessage, SamplingParams, ToolSettings } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { EmbedInputValue, EmbedResult, Embedder, Engine, EngineChunk, EngineInfo, EngineRequest, EngineResult } from "../engine.js";
import { logprobsBody, upstreamLogprobs } from "./upstream-logprobs.js";
import type { UpstreamLogprobs } from "./upstream-logprobs.js";
import { parseEventJson, readSseData } from "./sse-reader.js";
import { codeForStatus, postJson, statusError } from "./upstream-http.js";

/** One streamed chunk of an OpenAI-compatible server (chat or text completion). */
interface UpstreamChunk {
  choices?: Array<{
    delta?: { content?: string | null; tool_calls?: UpstreamToolCallDelta[] | null };
    text?: string;
    finish_reason?: string | null;
    logprobs?: UpstreamLogprobs | null;
  }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; code?: number | string };
  system_fingerprint?: string | null;
}

/** One `delta.tool_calls` entry of an upstream chunk. */
interface UpstreamToolCallDelta {
  index?: number;
  id?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

/**
 * Forwards generations to any OpenAI-compatible server (vLLM, TGI,
 * TensorRT-LLM's server, SGLang, llama.cpp's server, Ollama): chat
 * conversations to /chat/completions, raw prompts to /completions, always
 * streaming with `stream_options.include_usage` so usage is the upstream's own.
 *
 * Errors: 429 → ResourceExhausted, 5xx and connection failures → Unavailable
 * (the router retries those before the first token), no answer within
 * `timeout_ms` → DeadlineExceeded. A cancelled call aborts the upstream request.
 */
export class OpenAIUpstreamEngine implements Engine, Embedder {
  readonly info: EngineInfo;
  readonly #base: string;
  readonly #chatUrl: URL;
  readonly #completionsUrl: URL;
  readonly #headers: Record<string, string>;
  readonly #model: string;
  readonly #timeoutMs: number;

  constructor(modelName: string, backend: UpstreamBackend, env: NodeJS.ProcessEnv = process.env) {
    this.#base = backend.url.replace(/\/+$/, "");
    this.#chatUrl = new URL(`${this.#base}/chat/completions`);
    this.#completionsUrl = new URL(`${this.#base}/completions`);
    this.#model = backend.upstream_model ?? modelName;
    this.#timeoutMs = backend.timeout_ms;
    const apiKey = backend.api_key ?? (backend.api_key_env ? env[backend.api_key_env] : undefined);
    this.#headers = { "content-type": "application/json", accept: "text/event-stream" };
    if (apiKey) this.#headers.authorization = `Bearer ${apiKey}`;
    this.info = {
      engine: "openai-upstream",
      model: modelName,
      contextLength: backend.context_length ?? 0,
      maxSequences: backend.max_concurrency,
      systemFingerprint: "",
    };
  }

  async *generate(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    const chat = request.messages.length > 0;
    const body: Record<string, unknown> = {
      model: this.#model,
      stream: true,
      stream_options: { include_usage: true },
      ...samplingBody(request.sampling),
      ...logprobsBody(request.sampling, chat),
    };
    if (chat) {
      body.messages = request.messages.map(upstreamMessage);
      if (request.tools && request.tools.tools.length > 0) Object.assign(body, toolsBody(request.tools));
    } else {
      body.prompt = request.prompt || [...request.promptTokenIds];
    }

    if (signal.aborted) return { finishReason: "cancelled", promptTokens: request.promptTokenIds.length, completionTokens: 0 };
    const headers = { ...this.#headers, ...request.traceHeaders, "x-request-id": request.requestId };
    const call = postJson(chat ? this.#chatUrl : this.#completionsUrl, headers, JSON.stringify(body));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      call.stop("timeout");
    }, this.#timeoutMs);
    const onAbort = (): void => call.stop("cancelled");
    signal.addEventListener("abort", onAbort, { once: true });
    let completionTokens = 0;
    let usage: UpstreamChunk["usage"];
    let finishReason: EngineResult["finishReason"] = "stop";
    try {
      const res = await call.response;
      if (res.status < 200 || res.status >= 300) throw await statusError(res, "upstream", " (check the backend's api_key)");
      for await (const data of readSseData(res.body)) {
        if (data === "[DONE]") continue; // read to the end: cancelling a finished body costs more
        const chunk = parseEventJson<UpstreamChunk>(data, "the upstream");
        if (chunk.error) throw bodyError(chunk.error);
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        const text = choice.delta?.content ?? choice.text ?? "";
        const toolCalls = (choice.delta?.tool_calls ?? []).map((t, i) => ({
          index: t.index ?? i,
          id: t.id ?? "",
          name: t.function?.name ?? "",
          arguments: t.function?.arguments ?? "",
        }));
        const logprobs = request.sampling.logprobs ? upstreamLogprobs(choice.logprobs) : undefined;
        if (text || toolCalls.length > 0 || logprobs?.length) {
          completionTokens++;
          yield { tokenIds: [], text, tokenCount: 1, ...(toolCalls.length > 0 ? { toolCalls } : {}), ...(logprobs ? { logprobs } : {}) };
        }
        if (choice.finish_reason) finishReason = choice.finish_reason === "length" ? "length" : choice.finish_reason === "tool_calls" ? "tool_calls" : "stop";
      }
      return {
        finishReason,
        promptTokens: usage?.prompt_tokens ?? request.promptTokenIds.length,
        completionTokens: usage?.completion_tokens ?? completionTokens,
      };
    } catch (err) {
      if (signal.aborted && !timedOut) return { finishReason: "cancelled", promptTokens: request.promptTokenIds.length, completionTokens };
      if (timedOut) throw meshError(Code.DeadlineExceeded, `the upstream did not finish within ${this.#timeoutMs} ms`, { cause: err });
      if (err instanceof ConnectError) throw err;
      throw meshError(Code.Unavailable, `the upstream could not be reached: ${describe(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      // Ends the upstream request when we stop early (stop sequence, cancel, error); a finished one keeps its socket.
      call.stop("cancelled");
    }
  }

  /** Embeddings by pass-through to the upstream's /embeddings (floats, in input order). */
  async embed(requestId: string, inputs: readonly EmbedInputValue[], dimensions: number, signal: AbortSignal): Promise<EmbedResult> {
    const body: Record<string, unknown> = { model: this.#model, input: inputs.map((i) => (typeof i === "string" ? i : [...i])), encoding_format: "float" };
    if (dimensions > 0) body.dimensions = dimensions;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let res: Response;
    try {
      res = await fetch(`${this.#base}/embeddings`, {
        method: "POST",
        headers: { ...this.#headers, accept: "application/json", "x-request-id": requestId },
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (err) {
      if (timeout.aborted) throw meshError(Code.DeadlineExceeded, `the upstream did not answer within ${this.#timeoutMs} ms`, { cause: err });
      if (signal.aborted) throw meshError(Code.Canceled, "the caller cancelled", { cause: err });
      throw meshError(Code.Unavailable, `the upstream could not be reached: ${describe(err)}`, { cause: err });
    }
    if (!res.ok) throw await statusError(res, "upstream", " (check the backend's api_key)");
    const json = (await res.json()) as { data?: { index?: number; embedding?: number[] }[]; usage?: { prompt_tokens?: number } };
    const data = [...(json.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    if (data.length !== inputs.length || !data.every((d) => Array.isArray(d.embedding)))
      throw meshError(Code.Unavailable, "the upstream answered a malformed embeddings body");
    return { vectors: data.map((d) => d.embedding!), promptTokens: json.usage?.prompt_tokens ?? 0 };
  }

  async close(): Promise<void> {}
}

/** A conversation message as OpenAI takes it (tool calls and tool results included). */
function upstreamMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  // Messages built in code (not decoded from the wire) may leave the repeated field out.
  if (m.toolCalls?.length) {
    out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    if (!m.content) out.content = null;
  }
  if (m.toolCallId) out.tool_call_id = m.toolCallId;
  return out;
}

/** `tools`, `tool_choice` and `parallel_tool_calls` as OpenAI takes them. */
export function toolsBody(use: ToolSettings): Record<string, unknown> {
  return {
    tools: use.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        parameters: JSON.parse(t.parametersJson || "{}") as unknown,
        ...(t.strict ? { strict: true } : {}),
      },
    })),
    tool_choice: use.choice === "function" ? { type: "function", function: { name: use.functionName } } : use.choice || "auto",
    parallel_tool_calls: use.parallel,
  };
}

/** Sampling parameters as OpenAI (and vLLM's extensions) name them; unset ones are left out. */
export function samplingBody(s: SamplingParams): Record<string, unknown> {
  const body: Record<string, unknown> = { temperature: s.temperature };
  if (s.maxTokens > 0) body.max_tokens = s.maxTokens;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.minP !== undefined) body.min_p = s.minP;
  if (s.repetitionPenalty !== undefined) body.repetition_penalty = s.repetitionPenalty;
  if (s.frequencyPenalty) body.frequency_penalty = s.frequencyPenalty;
  if (s.presencePenalty) body.presence_penalty = s.presencePenalty;
  if (s.seed !== undefined) body.seed = s.seed;
  if (s.stop.length > 0) body.stop = [...s.stop];
  if (s.ignoreEos) body.ignore_eos = true;
  if (s.minTokens > 0) body.min_tokens = s.minTokens;
  if (s.jsonSchema) {
    body.response_format =
      s.jsonSchema === "{}" ? { type: "json_object" } : { type: "json_schema", json_schema: { name: "output", schema: JSON.parse(s.jsonSchema) as unknown } };
  }
  return body;
}

function bodyError(error: NonNullable<UpstreamChunk["error"]>): ConnectError {
  const status = typeof error.code === "number" ? error.code : 500;
  return meshError(codeForStatus(status), `upstream error in stream: ${error.message ?? "unknown"}`);
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}
