import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the fake answers. Every field can also be changed while it runs
 * (`fake.configure({...})`) or per request with headers:
 * `x-fake-tokens`, `x-fake-token-delay-ms`, `x-fake-status`, `x-fake-hang`.
 */
export interface FakeOpenAIBehavior {
  /** Output tokens per completion (capped by the request's max_tokens). Default 16. */
  tokens: number;
  /** Delay before each streamed token, in ms. 0 writes the stream at once. Default 0. */
  tokenDelayMs: number;
  /** Answer every request with this HTTP status and an OpenAI error body (0 = off). */
  failStatus: number;
  /** Only the next N requests fail (then failStatus resets to 0); 0 = all. */
  failCount: number;
  /**
   * "headers": never answers; "first-token": streams one token, then stalls;
   * false: off.
   */
  hang: "headers" | "first-token" | false;
  /** Text of output token i. Default " tok" + i. */
  tokenText: (index: number) => string;
  /** Prompt tokens reported in usage for a request body. Default: whitespace-separated words. */
  countPromptTokens: (body: FakeRequestBody) => number;
}

/** The request fields the fake reads. */
export interface FakeRequestBody {
  model?: string;
  messages?: Array<{ role: string; content: string }>;
  prompt?: string | string[];
  max_tokens?: number;
  max_completion_tokens?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

/** Counters, live. */
export interface FakeOpenAIStats {
  /** Requests received on the completion endpoints. */
  requests: number;
  /** Requests answered to the end. */
  completed: number;
  /** Requests whose client went away before the answer ended. */
  aborted: number;
  /** Requests answered with an injected error status. */
  failed: number;
  /** Requests being answered now. */
  inFlight: number;
  /** Tokens written, all requests together. */
  tokensSent: number;
  /** The last request body and headers (for assertions). */
  lastBody: FakeRequestBody | undefined;
  lastHeaders: http.IncomingHttpHeaders | undefined;
}

export interface FakeOpenAIOptions extends Partial<FakeOpenAIBehavior> {
  /** Default 0 (any free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
}

/** A running fake: `url` ends in /v1 (an OpenAI SDK's baseURL). */
export interface FakeOpenAI {
  url: string;
  port: number;
  stats: FakeOpenAIStats;
  configure(change: Partial<FakeOpenAIBehavior>): void;
  /** Resets the counters to zero. */
  resetStats(): void;
  close(): Promise<void>;
}

const DEFAULTS: FakeOpenAIBehavior = {
  tokens: 16,
  tokenDelayMs: 0,
  failStatus: 0,
  failCount: 0,
  hang: false,
  tokenText: (i) => ` tok${i}`,
  countPromptTokens: (body) => {
    const text = body.messages ? body.messages.map((m) => m.content).join(" ") : [body.prompt ?? ""].flat().join(" ");
    return text.split(/\s+/).filter(Boolean).length;
  },
};

function freshStats(): FakeOpenAIStats {
  return { requests: 0, completed: 0, aborted: 0, failed: 0, inFlight: 0, tokensSent: 0, lastBody: undefined, lastHeaders: undefined };
}

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  429: "rate_limit_exceeded",
};

/**
 * Starts a zero-delay OpenAI-compatible fake engine: POST /v1/chat/completions
 * and /v1/completions (stream and non-stream, `stream_options.include_usage`,
 * streamed `logprobs` when asked: see fakeTokenLogprob),
 * GET /v1/models. For tests and benchmarks; it counts requests whose client
 * disconnected (`stats.aborted`).
 */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const { port = 0, host = "127.0.0.1", ...overrides } = options;
  const behavior: FakeOpenAIBehavior = { ...DEFAULTS, ...stripUndefined(overrides) };
  const stats = freshStats();
  const sockets = new Set<import("node:net").Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  server.on("connection", (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && (url === "/v1/models" || url === "/models")) {
      return json(res, 200, { object: "list", data: [{ id: "fake-model", object: "model", created: 0, owned_by: "fake-openai" }] });
    }
    if (req.method === "GET" && url === "/health") return json(res, 200, { ok: true });
    if (req.method === "POST" && (url === "/v1/embeddings" || url === "/embeddings")) {
      const body = JSON.parse(await readBody(req)) as { input: string | string[]; dimensions?: number };
      stats.requests++;
      stats.lastBody = body;
      const inputs = typeof body.input === "string" ? [body.input] : body.input;
      const data = inputs.map((text, index) => ({ object: "embedding", index, embedding: fakeEmbedding(String(text), body.dimensions) }));
      const tokens = inputs.reduce((n, t) => n + String(t).split(/\s+/).length, 0);
      stats.completed++;
      return json(res, 200, { object: "list", data, model: "fake-model", usage: { prompt_tokens: tokens, total_tokens: tokens } });
    }
    const chat = url === "/v1/chat/completions" || url === "/chat/completions";
    const text = url === "/v1/completions" || url === "/completions";
    if (req.method !== "POST" || (!chat && !text)) return json(res, 404, errorBody(404, `no route ${req.method} ${url}`));

    const raw = await readBody(req);
    stats.requests++;
    let body: FakeRequestBody;
    try {
      body = JSON.parse(raw) as FakeRequestBody;
    } catch {
      return json(res, 400, errorBody(400, "body is not JSON"));
    }
    stats.lastBody = body;
    stats.lastHeaders = req.headers;

    const status = Number(req.headers["x-fake-status"] ?? 0) || takeFailure();
    if (status) {
      stats.failed++;
      if (status === 429) res.setHeader("retry-after", "1");
      return json(res, status, errorBody(status, `injected error ${status}`));
    }
    const hang = (req.headers["x-fake-hang"] as FakeOpenAIBehavior["hang"] | undefined) ?? behavior.hang;
    const tokensWanted = Number(req.headers["x-fake-tokens"] ?? behavior.tokens);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    const count = Math.max(0, Math.min(tokensWanted, maxTokens ?? Infinity));
    const delayMs = Number(req.headers["x-fake-token-delay-ms"] ?? behavior.tokenDelayMs);
    const promptTokens = behavior.countPromptTokens(body);

    stats.inFlight++;
    let finished = false;
    let closed = false;
    res.on("close", () => {
      closed = true;
      stats.inFlight--;
      if (finished) stats.completed++;
      else stats.aborted++;
    });
    if (hang === "headers") return; // never answers; the client must give up
    const id = `fake-${stats.requests}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model ?? "fake-model";
    const object = chat ? "chat.completion" : "text_completion";
    const usage = { prompt_tokens: promptTokens, completion_tokens: count, total_tokens: promptTokens + count };
    const finishReason = maxTokens !== undefined && count >= maxTokens && tokensWanted >= maxTokens ? "length" : "stop";

    if (!body.stream) {
      await sleep(delayMs * count);
      if (closed) return;
      let content = "";
      for (let i = 0; i < count; i++) content += behavior.tokenText(i);
      stats.tokensSent += count;
      finished = true;
      const choice = chat
        ? { index: 0, message: { role: "assistant", content }, logprobs: null, finish_reason: finishReason }
        : { index: 0, text: content, logprobs: null, finish_reason: finishReason };
      return json(res, 200, { id, object, created, model, system_fingerprint: "fake-openai", choices: [choice], usage });
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const chunkObject = chat ? "chat.completion.chunk" : "text_completion";
    const event = (choices: unknown[], extra: object = {}): string =>
      `data: ${JSON.stringify({ id, object: chunkObject, created, model, system_fingerprint: "fake-openai", choices, ...extra })}\n\n`;
    let tokenIndex = 0;
    let textOffset = 0;
    const tokenChoice = (delta: string, finish: string | null) => {
      const logprobs = delta ? fakeLogprobs(body, chat, tokenIndex++, delta, textOffset) : null;
      textOffset += delta.length;
      return chat
        ? { index: 0, delta: delta === "" && finish === null ? { role: "assistant", content: "" } : { content: delta }, logprobs, finish_reason: finish }
        : { index: 0, text: delta, logprobs, finish_reason: finish };
    };
    if (chat) res.write(event([tokenChoice("", null)]));
    const call = chat ? fakeToolCall(body) : undefined;
    if (call) {
      // A tool call as OpenAI streams it: id, type and name first, then argument fragments.
      res.write(
        event([
          {
            index: 0,
            delta: { tool_calls: [{ index: 0, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] },
            logprobs: null,
            finish_reason: null,
          },
        ]),
      );
      for (const fragment of FAKE_ARGUMENT_FRAGMENTS) {
        res.write(event([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: fragment } }] }, logprobs: null, finish_reason: null }]));
      }
      res.write(event([{ index: 0, delta: {}, logprobs: null, finish_reason: "tool_calls" }]));
      const callUsage = {
        prompt_tokens: promptTokens,
        completion_tokens: FAKE_ARGUMENT_FRAGMENTS.length + 1,
        total_tokens: promptTokens + FAKE_ARGUMENT_FRAGMENTS.length + 1,
      };
      if (body.stream_options?.include_usage) res.write(event([], { usage: callUsage }));
      res.write("data: [DONE]\n\n");
      finished = true;
      return void res.end();
    }
    if (delayMs <= 0) res.cork();
    for (let i = 0; i < count; i++) {
      if (delayMs > 0) await sleep(delayMs);
      if (closed) return;
      res.write(event([tokenChoice(behavior.tokenText(i), null)]));
      stats.tokensSent++;
      if (hang === "first-token") {
        if (delayMs <= 0) res.uncork();
        return; // stalls with the stream open
      }
    }
    res.write(event([tokenChoice("", finishReason)]));
    if (body.stream_options?.include_usage) res.write(event([], { usage }));
    res.write("data: [DONE]\n\n");
    finished = true;
    res.end(); // also uncorks
  }

  function takeFailure(): number {
    const status = behavior.failStatus;
    if (status && behavior.failCount > 0 && --behavior.failCount === 0) behavior.failStatus = 0;
    return status;
  }

  function sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actualPort}/v1`,
    port: actualPort,
    stats,
    configure(change) {
      Object.assign(behavior, stripUndefined(change));
    },
    resetStats() {
      Object.assign(stats, freshStats(), { inFlight: stats.inFlight });
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** The fake's embedding of a text: its length, its first char code, then 0.25s (`dimensions` long, default 4). */
export function fakeEmbedding(text: string, dimensions = 4): number[] {
  return Array.from({ length: dimensions }, (_, i) => (i === 0 ? text.length : i === 1 ? text.charCodeAt(0) : 0.25));
}

/** The logprob the fake reports for its output token i (exact in binary, so tests can compare with toBe). */
export function fakeTokenLogprob(i: number): number {
  return -0.125 * (i + 1);
}

/**
 * A streamed token's logprobs when the request asks (chat `logprobs: true` with `top_logprobs`,
 * text `logprobs: N`): the token itself first among its alternatives, then " alt1".., each 1 less likely.
 */
function fakeLogprobs(body: FakeRequestBody, chat: boolean, i: number, token: string, offset: number): object | null {
  const logprob = fakeTokenLogprob(i);
  const alternatives = (k: number) => Array.from({ length: k }, (_, j) => ({ token: j === 0 ? token : ` alt${j}`, logprob: logprob - j }));
  if (chat) {
    if (body.logprobs !== true) return null;
    const top = alternatives(Number(body.top_logprobs ?? 0)).map((t) => ({ ...t, bytes: [...Buffer.from(t.token)] }));
    return { content: [{ token, logprob, bytes: [...Buffer.from(token)], top_logprobs: top }], refusal: null };
  }
  if (typeof body.logprobs !== "number") return null;
  const top = Object.fromEntries(alternatives(body.logprobs).map((t) => [t.token, t.logprob]));
  return { tokens: [token], token_logprobs: [logprob], top_logprobs: [top], text_offset: [offset] };
}

/** The arguments a fake tool call streams, in these fragments. */
export const FAKE_ARGUMENT_FRAGMENTS = ['{"city', '": "Par', 'is"}'];

/** The call the fake makes when a chat request has tools and a choice other than "none": the named or first function. */
function fakeToolCall(body: FakeRequestBody): { id: string; name: string } | undefined {
  const tools = body.tools as Array<{ function?: { name?: string } }> | undefined;
  const choice = body.tool_choice as string | { function?: { name?: string } } | undefined;
  if (!tools?.length || choice === "none") return undefined;
  const name = (typeof choice === "object" ? choice.function?.name : undefined) ?? tools[0].function?.name ?? "f";
  return { id: "call_fake_0", name };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function errorBody(status: number, message: string): object {
  return { error: { message, type: ERROR_TYPES[status] ?? (status >= 500 ? "server_error" : "invalid_request_error"), param: null, code: null } };
}

function json(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}
