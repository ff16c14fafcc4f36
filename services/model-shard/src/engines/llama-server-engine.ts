/**
 * The llama.cpp engine's `llama-server` runtime: llama.cpp's own server as a
 * child process of the shard, driven over loopback HTTP with the mesh's
 * token ids (`POST /completion`, `prompt` as ids, streamed). The same
 * llama.cpp release as the in-process runtime (lib/llama-server builds it
 * from the source node-llama-cpp ships), on the same GGUF, so tokenization,
 * templates, usage and admission stay the mesh's; what changes is the decode
 * loop, which runs in llama.cpp's own threads (decode and sampling in one
 * thread, batching across slots) instead of crossing into JavaScript twice
 * per token (docs/benchmarks.md, "batching": why node-llama-cpp is slower).
 *
 * Not served on this runtime: embeddings (Unimplemented). Logprobs come from
 * llama-server's `n_probs` (llama-server-logprobs.ts). A child that exits is started again, with
 * the launcher's back-off (RestartBackoff); requests meanwhile fail with Unavailable, which the router
 * retries on another replica before the first token.
 */
import * as os from "node:os";
import { Code, ConnectError } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";
import type { LlamaCppBackend } from "../../../../lib/catalog/index.js";
import { defaultBatchThreads, findLlamaServer, LLAMA_SERVER_HINT, readModelShape, startLlamaServerProcess } from "../../../../lib/llama-server/index.js";
import type { LlamaServerProcess, LlamaServerProcessOptions } from "../../../../lib/llama-server/index.js";
import { RestartBackoff } from "../../../../lib/runtime/index.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import type { SamplingParams } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { Engine, EngineChunk, EngineInfo, EngineRequest, EngineResult } from "../engine.js";
import { logprobsRequest, ServerLogprobs } from "./llama-server-logprobs.js";
import type { ServerProbability } from "./llama-server-logprobs.js";
import { parseEventJson, readSseData } from "./sse-reader.js";
import { codeForStatus, postJson, statusError } from "./upstream-http.js";
import { checkPromptFits, sharedContextSize } from "./llama-context.js";

/** Layers put on the GPU when `gpu` is not false (all of them; a CPU-only build ignores it). */
const ALL_LAYERS = 999;

/** One streamed event of llama-server's /completion. */
interface CompletionEvent {
  content?: string;
  tokens?: number[];
  stop?: boolean;
  stop_type?: "none" | "eos" | "limit" | "word";
  tokens_predicted?: number;
  completion_probabilities?: ServerProbability[];
  error?: { message?: string; code?: number };
}

export class LlamaServerEngine implements Engine {
  readonly info: EngineInfo;
  #server: LlamaServerProcess;
  #url: URL;
  #closing = false;
  /** Why requests fail while the child is down (undefined while it runs). */
  #down: string | undefined;
  readonly #backoff = new RestartBackoff();
  #restartTimer: NodeJS.Timeout | undefined;

  private constructor(
    server: LlamaServerProcess,
    private readonly options: LlamaServerProcessOptions,
    info: EngineInfo,
    private readonly log?: Logger,
  ) {
    this.info = info;
    this.#server = server;
    this.#url = new URL(`${server.url}/completion`);
    this.#backoff.started();
    this.#watch(server);
  }

  static async create(modelName: string, backend: LlamaCppBackend, log?: Logger, env: NodeJS.ProcessEnv = process.env): Promise<LlamaServerEngine> {
    const binary = findLlamaServer(env);
    if (!binary) {
      const why = env.LLAMA_SERVER_BIN ? `LLAMA_SERVER_BIN (${env.LLAMA_SERVER_BIN}) names no file` : "it is not built";
      throw new Error(`backend "${backend.name}" runs on llama-server, but ${why}: ${LLAMA_SERVER_HINT}`);
    }
    const { trainContext, embeddingLength } = await readModelShape(backend.model);
    const threads = backend.threads ?? defaultThreads();
    const contextSize = sharedContextSize(backend, trainContext);
    const options: LlamaServerProcessOptions = {
      binary,
      model: backend.model,
      slots: backend.sequences,
      threads,
      threadsBatch: backend.threads_batch ?? defaultBatchThreads(embeddingLength, threads),
      contextSize,
      gpuLayers: backend.gpu === false ? 0 : ALL_LAYERS,
    };
    const server = await startLlamaServerProcess(options);
    log?.info({ binary, threads: options.threads, threadsBatch: options.threadsBatch, slots: options.slots, contextSize }, "llama-server started");
    return new LlamaServerEngine(
      server,
      options,
      {
        engine: "llama-server",
        model: modelName,
        // Each slot has its share of the context, as node-llama-cpp's sequences do.
        contextLength: Math.min(trainContext, Math.floor(contextSize / backend.sequences)),
        maxSequences: backend.sequences,
        systemFingerprint: "llama-server",
      },
      log,
    );
  }

  async *generate(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    const prompt = request.promptTokenIds;
    const { sampling } = request;
    checkPromptFits(prompt.length, sampling.maxTokens, this.info.contextLength);
    if (sampling.maxTokens === 0) return { finishReason: "length", promptTokens: prompt.length, completionTokens: 0 };
    if (this.#down) throw meshError(Code.Unavailable, `llama-server is not running (${this.#down}); it is being started again`);
    if (signal.aborted) return { finishReason: "cancelled", promptTokens: prompt.length, completionTokens: 0 };

    const body = JSON.stringify({
      prompt: [...prompt],
      stream: true,
      return_tokens: true,
      cache_prompt: true,
      ...completionSampling(sampling),
      ...logprobsRequest(sampling),
    });
    const logprobs = sampling.logprobs ? new ServerLogprobs(sampling.topLogprobs) : undefined;
    // cpp-httplib closes idle keep-alive sockets on its own clock: one loopback connection per request.
    const call = postJson(
      this.#url,
      { "content-type": "application/json", accept: "text/event-stream", connection: "close", "x-request-id": request.requestId },
      body,
    );
    const onAbort = (): void => call.stop("cancelled");
    signal.addEventListener("abort", onAbort, { once: true });
    let completionTokens = 0;
    let finishReason: EngineResult["finishReason"] = "stop";
    try {
      const res = await call.response;
      if (res.status < 200 || res.status >= 300) throw await statusError(res, "llama-server");
      for await (const data of readSseData(res.body)) {
        const event = parseEventJson<CompletionEvent>(data, "llama-server");
        if (event.error) throw meshError(codeForStatus(event.error.code ?? 500), `llama-server: ${event.error.message ?? "error in stream"}`);
        const tokenIds = event.tokens ?? [];
        // Tokens that end inside a UTF-8 character are held back and then sent with only the completing
        // token's id and probabilities: `tokens_predicted` is the count to trust.
        const tokenCount = event.tokens_predicted !== undefined ? event.tokens_predicted - completionTokens : tokenIds.length;
        completionTokens += tokenCount;
        const text = event.content ?? "";
        const entries = logprobs?.push(event.completion_probabilities, text);
        if (tokenIds.length > 0 || text) yield { tokenIds, text, tokenCount, ...(entries ? { logprobs: entries } : {}) };
        if (event.stop) finishReason = event.stop_type === "limit" ? "length" : "stop";
      }
      return { finishReason, promptTokens: prompt.length, completionTokens };
    } catch (err) {
      if (signal.aborted) return { finishReason: "cancelled", promptTokens: prompt.length, completionTokens };
      if (err instanceof ConnectError) throw err;
      throw meshError(Code.Unavailable, `llama-server could not be reached: ${(err as Error).message}`, { cause: err });
    } finally {
      signal.removeEventListener("abort", onAbort);
      // Ends the request when we stop early (a stop sequence, a cancel): llama-server frees the slot on the closed connection.
      call.stop("cancelled");
    }
  }

  /** Starts the child again when it exits on its own (lib/runtime RestartBackoff). */
  #watch(server: LlamaServerProcess): void {
    server.child.once("exit", (code, sig) => {
      server.child.stdin?.destroy();
      if (this.#closing) return;
      this.#down = `exited with ${code ?? sig}`;
      this.log?.error({ code, signal: sig, stderr: server.stderrTail().slice(-1000) }, "llama-server exited; starting it again");
      this.#scheduleRestart();
    });
  }

  #scheduleRestart(): void {
    this.#restartTimer = setTimeout(() => void this.#restart(), this.#backoff.nextDelayMs());
  }

  async #restart(): Promise<void> {
    if (this.#closing) return;
    this.#backoff.started();
    try {
      const server = await startLlamaServerProcess(this.options);
      if (this.#closing) return void (await server.stop());
      this.#server = server;
      this.#url = new URL(`${server.url}/completion`);
      this.#down = undefined;
      this.#watch(server);
      this.log?.info({ url: server.url }, "llama-server started again");
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, "llama-server did not start again");
      this.#scheduleRestart();
    }
  }

  /** The running llama-server's process id (tests stop it to check the restart); undefined while it is down. */
  get serverPid(): number | undefined {
    return this.#down ? undefined : this.#server.serverPid();
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    await this.#server.stop();
  }
}

/** Threads when the catalog gives none: all cores but one, which stays for the shard and the rest of the mesh (at least 1). */
function defaultThreads(): number {
  return Math.max(1, os.availableParallelism() - 1);
}

/**
 * The request's sampling in llama-server's names. Defaults follow the
 * in-process runtime (node-llama-cpp): top-k 40, top-p 0.95, no min-p
 * (llama-server's own default is 0.05); repetition penalties over the last
 * 64 tokens. Stop sequences stay with the shard (StopMatcher).
 */
export function completionSampling(s: SamplingParams): Record<string, unknown> {
  const body: Record<string, unknown> = {
    n_predict: s.maxTokens > 0 ? s.maxTokens : -1,
    temperature: s.temperature,
    top_k: s.topK ?? 40,
    top_p: s.topP ?? 0.95,
    min_p: s.minP ?? 0,
    seed: s.seed ?? -1,
  };
  if (s.repetitionPenalty !== undefined || s.frequencyPenalty || s.presencePenalty) {
    Object.assign(body, {
      repeat_penalty: s.repetitionPenalty ?? 1,
      frequency_penalty: s.frequencyPenalty,
      presence_penalty: s.presencePenalty,
      repeat_last_n: 64,
    });
  }
  if (s.ignoreEos) body.ignore_eos = true;
  if (s.jsonSchema) body.json_schema = JSON.parse(s.jsonSchema) as unknown;
  return body;
}
