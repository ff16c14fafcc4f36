import type { ServerResponse } from "node:http";
import { sendCompletionJson } from "./chat-completions.js";
import { completionGenerationInput, parseCompletionRequest } from "./completion-request.js";
import { collectGeneration } from "./generation.js";
import type { Generations, RequestContext } from "./generation.js";
import { streamGeneration } from "./sse.js";

/**
 * POST /v1/completions, the legacy text endpoint (completion-only models
 * need it): the prompt goes to the router as raw text, untemplated.
 */
export class Completions {
  constructor(private readonly generations: Generations) {}

  async handle(res: ServerResponse, rawBody: unknown, ctx: RequestContext): Promise<void> {
    const body = parseCompletionRequest(rawBody);
    const id = `cmpl-${ctx.requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const events = this.generations.run(completionGenerationInput(body), ctx);
    let fingerprint = "";
    const chunk = (text: string, finishReason: string | null) => ({
      id,
      object: "text_completion",
      created,
      model: body.model,
      system_fingerprint: fingerprint,
      choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
    });
    if (body.stream === true) {
      await streamGeneration(res, events, ctx, {
        started(event) {
          fingerprint = event.fingerprint;
          return undefined;
        },
        delta: (text) => chunk(text, null),
        finished: (finishReason) => chunk("", finishReason),
        usage: (usage) => ({ id, object: "text_completion", created, model: body.model, system_fingerprint: fingerprint, choices: [], usage }),
        includeUsage: body.stream_options?.include_usage === true,
      });
      return;
    }
    const { started, text, finished } = await collectGeneration(events);
    fingerprint = started.fingerprint;
    sendCompletionJson(res, ctx, finished, { ...chunk(text, finished.finishReason), usage: finished.usage });
  }
}
