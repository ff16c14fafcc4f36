import type { ServerResponse } from "node:http";
import { chatGenerationInput, parseChatRequest } from "./chat-request.js";
import type { ChatRequest } from "./chat-request.js";
import { collectGeneration } from "./generation.js";
import type { Generations, GenerationEvent, GenerationInput, RequestContext } from "./generation.js";
import { streamGeneration } from "./sse.js";
import { assembleToolCalls, toolCallDeltas } from "./tools.js";
import type { ToolCallPiece } from "./tools.js";
import { choiceInputs, collectChoices, mergeChoices, streamChoices } from "./choices.js";
import { chatLogprobs } from "./logprobs.js";
import type { TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";

/**
 * POST /v1/chat/completions: validates, runs the shared generation and
 * translates its events to OpenAI JSON or SSE chunks.
 */
export class ChatCompletions {
  constructor(private readonly generations: Generations) {}

  async handle(res: ServerResponse, rawBody: unknown, ctx: RequestContext): Promise<void> {
    const body = parseChatRequest(rawBody);
    const input = chatGenerationInput(body);
    const id = `chatcmpl-${ctx.requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const n = body.n ?? 1;
    if (n > 1) return this.#choices(res, body, choiceInputs(input, n), ctx, id, created);
    const events = this.generations.run(input, ctx);
    const logprobsOf = (entries: readonly TokenLogprob[] | undefined) => (input.logprobs ? chatLogprobs(entries ?? []) : null);
    let fingerprint = "";
    if (body.stream === true) {
      const chunk = (delta: object, finishReason: string | null, logprobs: object | null = null) => ({
        id,
        object: "chat.completion.chunk",
        created,
        model: body.model,
        system_fingerprint: fingerprint,
        choices: [{ index: 0, delta, logprobs, finish_reason: finishReason }],
      });
      await streamGeneration(res, events, ctx, {
        started(event) {
          fingerprint = event.fingerprint;
          return chunk({ role: "assistant", content: "" }, null);
        },
        delta: (text, toolCalls, logprobs) => chunk(deltaOf(text, toolCalls), null, logprobsOf(logprobs)),
        finished: (finishReason) => chunk({}, finishReason),
        usage: (usage) => ({ id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: fingerprint, choices: [], usage }),
        includeUsage: body.stream_options?.include_usage === true,
      });
      return;
    }
    const { started, text, toolCalls, logprobs, finished } = await collectGeneration(events);
    const message = messageOf(text, toolCalls);
    sendCompletionJson(res, ctx, finished, {
      id,
      object: "chat.completion",
      created,
      model: body.model,
      system_fingerprint: started.fingerprint,
      choices: [{ index: 0, message, logprobs: logprobsOf(logprobs), finish_reason: finished.finishReason }],
      usage: finished.usage,
    });
  }

  /** n > 1: n sequences at once, choices indexed, usage with the prompt once and the completions summed. */
  async #choices(res: ServerResponse, body: ChatRequest, inputs: GenerationInput[], ctx: RequestContext, id: string, created: number): Promise<void> {
    const base = { id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: "" };
    const logprobsOf = (entries: readonly TokenLogprob[] | undefined) => (inputs[0].logprobs ? chatLogprobs(entries ?? []) : null);
    if (body.stream === true) {
      const chunk = (index: number, delta: object, finishReason: string | null, logprobs: object | null = null) => ({
        ...base,
        choices: [{ index, delta, logprobs, finish_reason: finishReason }],
      });
      return streamChoices(res, mergeChoices(this.generations, inputs, ctx), ctx, inputs.length, {
        role: (index) => chunk(index, { role: "assistant", content: "" }, null),
        delta: (index, e) => chunk(index, deltaOf(e.text, e.toolCalls), null, logprobsOf(e.logprobs)),
        finished: (index, e) => chunk(index, {}, e.finishReason),
        usage: (usage) => ({ ...base, choices: [], usage }),
        includeUsage: body.stream_options?.include_usage === true,
      });
    }
    const { results, usage } = await collectChoices(this.generations, inputs, ctx);
    sendCompletionJson(res, ctx, results[0].finished, {
      id,
      object: "chat.completion",
      created,
      model: body.model,
      system_fingerprint: results[0].started.fingerprint,
      choices: results.map((r, index) => ({
        index,
        message: messageOf(r.text, r.toolCalls),
        logprobs: logprobsOf(r.logprobs),
        finish_reason: r.finished.finishReason,
      })),
      usage,
    });
  }
}

/** A streamed delta: its content, and its tool-call pieces when it has any. */
function deltaOf(text: string, toolCalls: readonly ToolCallPiece[] | undefined): object {
  return toolCalls?.length ? { ...(text ? { content: text } : {}), tool_calls: toolCallDeltas(toolCalls) } : { content: text };
}

/** The assistant message of a choice: its text, and its tool calls when it made any (content null without text). */
function messageOf(text: string, toolCalls: readonly ToolCallPiece[]): object {
  const calls = assembleToolCalls(toolCalls);
  return calls.length > 0
    ? { role: "assistant", content: text || null, refusal: null, tool_calls: calls }
    : { role: "assistant", content: text, refusal: null };
}

/** Writes a finished non-stream response with the timing headers. */
export function sendCompletionJson(res: ServerResponse, ctx: RequestContext, finished: Extract<GenerationEvent, { type: "finished" }>, value: object): void {
  const json = JSON.stringify(value);
  res.writeHead(200, {
    ...ctx.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(json),
    "server-timing": finished.serverTiming,
    "openai-processing-ms": String(Math.round(performance.now() - ctx.startedAt)),
  });
  res.end(json);
}
