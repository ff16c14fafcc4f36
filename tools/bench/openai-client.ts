/**
 * A lean OpenAI chat-completions client for load generation: node:http with
 * keep-alive, SSE cut by the shard's own parser (SseDataParser), a timestamp
 * on every content chunk. Lean so that on a small machine the client costs
 * little of what it measures.
 */
import * as http from "node:http";
import * as https from "node:https";
import { SseDataParser } from "../../services/model-shard/src/engines/sse-reader.js";
import type { RequestResult } from "./metrics.js";

/** Where requests go. */
export interface ChatTarget {
  /** Base URL including /v1 (e.g. http://127.0.0.1:8080/v1). */
  url: string;
  model: string;
  apiKey?: string;
  /** Extra headers on every request (e.g. a gateway's config header). */
  headers?: Record<string, string>;
}

/** One request's content. */
export interface ChatJob {
  prompt: string;
  maxTokens: number;
  stream: boolean;
  /** Ask the server not to stop early (vLLM extension; the mesh accepts it). */
  ignoreEos: boolean;
}

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: Infinity }), https: new https.Agent({ keepAlive: true, maxSockets: Infinity }) };

/** Closes idle keep-alive sockets (call at the end of a run). */
export function closeClientSockets(): void {
  agents.http.destroy();
  agents.https.destroy();
  agents.http = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  agents.https = new https.Agent({ keepAlive: true, maxSockets: Infinity });
}

/** The JSON body the client sends. */
export function chatBody(target: ChatTarget, job: ChatJob): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: target.model,
    messages: [{ role: "user", content: job.prompt }],
    max_tokens: job.maxTokens,
    temperature: 0,
    stream: job.stream,
  };
  if (job.stream) body.stream_options = { include_usage: true };
  if (job.ignoreEos) body.ignore_eos = true;
  return body;
}

/**
 * Sends one chat completion and times it. Never throws: failures come back as
 * `ok: false` with the reason. `t0` is the run's start (performance.now()).
 */
export function sendChat(target: ChatTarget, job: ChatJob, t0: number, timeoutMs = 600_000): Promise<RequestResult> {
  const payload = JSON.stringify(chatBody(target, job));
  const url = new URL(`${target.url.replace(/\/$/, "")}/chat/completions`);
  const lib = url.protocol === "https:" ? https : http;
  const started = performance.now();
  const result: RequestResult = { ok: false, startMs: started - t0, ttftMs: NaN, e2eMs: NaN, outputTokens: 0, promptTokens: 0, itlMs: [] };
  return new Promise((resolve) => {
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      result.e2eMs = performance.now() - started;
      if (error) result.error = error;
      else result.ok = true;
      resolve(result);
    };
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(payload)),
      ...target.headers,
    };
    if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`;
    const req = lib.request(url, { method: "POST", headers, agent: url.protocol === "https:" ? agents.https : agents.http, timeout: timeoutMs }, (res) => {
      res.setEncoding("utf8");
      const status = res.statusCode ?? 0;
      const sse = String(res.headers["content-type"] ?? "").startsWith("text/event-stream");
      let buffer = "";
      const events = new SseDataParser();
      let chunks = 0;
      let last = 0;
      let usageTokens = -1;
      res.on("data", (data: string) => {
        if (status !== 200 || !sse) {
          buffer += data;
          return;
        }
        const now = performance.now();
        for (const payload of events.push(data)) {
          if (payload === "[DONE]" || payload === "") continue;
          let chunk: {
            choices?: Array<{ delta?: { content?: string | null }; text?: string }>;
            usage?: { completion_tokens?: number; prompt_tokens?: number } | null;
          };
          try {
            chunk = JSON.parse(payload) as typeof chunk;
          } catch {
            continue;
          }
          if (chunk.usage) {
            usageTokens = chunk.usage.completion_tokens ?? -1;
            result.promptTokens = chunk.usage.prompt_tokens ?? 0;
          }
          const content = chunk.choices?.[0]?.delta?.content ?? chunk.choices?.[0]?.text;
          if (!content) continue;
          if (chunks === 0) result.ttftMs = now - started;
          else result.itlMs.push(now - last);
          last = now;
          chunks++;
        }
      });
      res.on("end", () => {
        if (status !== 200) return finish(`HTTP ${status}: ${buffer.slice(0, 200)}`);
        if (sse) {
          result.outputTokens = usageTokens >= 0 ? usageTokens : chunks;
          if (chunks === 0) return finish("stream ended without content");
          return finish();
        }
        try {
          const body = JSON.parse(buffer) as {
            usage?: { completion_tokens?: number; prompt_tokens?: number };
            choices?: Array<{ message?: { content?: string } }>;
          };
          result.outputTokens = body.usage?.completion_tokens ?? 0;
          result.promptTokens = body.usage?.prompt_tokens ?? 0;
          result.ttftMs = performance.now() - started;
          if (!body.choices?.length) return finish("response without choices");
        } catch {
          return finish(`unparseable response: ${buffer.slice(0, 200)}`);
        }
        finish();
      });
      res.on("error", (err) => finish(err.message));
      res.on("aborted", () => finish("response aborted"));
    });
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on("error", (err) => finish(err.message));
    req.end(payload);
  });
}
