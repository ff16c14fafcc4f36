import type { ServerResponse } from "node:http";
import { chatGenerationInput, parseChatRequest } from "./chat-request.js";
import { collectGeneration } from "./generation.js";
import type { Generations, GenerationEvent, RequestContext } from "./generation.js";
import { streamGeneration } from "./sse.js";

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
    const events = this.generations.run(input, ctx);
    let fingerprint = "";
    if (body.stream === true) {
      const chunk = (delta: object, finishReason: string | null) => ({
        id,
        object: "chat.completion.chunk",
        created,
        model: body.model,
        system_fingerprint: fingerprint,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      });
      await streamGeneration(res, events, ctx, {
        started(event) {
          fingerprint = event.fingerprint;
          return chunk({ role: "assistant", content: "" }, null);
        },
        delta: (text) => chunk({ content: text }, null),
        finished: (finishReason) => chunk({}, finishReason),
        usage: (usage) => ({ id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: fingerprint, choices: [], usage }),
        includeUsage: body.stream_options?.include_usage === true,
      });
      return;
    }
    const { started, text, finished } = await collectGeneration(events);
    sendCompletionJson(res, ctx, finished, {
      id,
      object: "chat.completion",
      created,
      model: body.model,
      system_fingerprint: started.fingerprint,
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: finished.finishReason }],
      usage: finished.usage,
    });
  }
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
