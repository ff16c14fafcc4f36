import type { ServerResponse } from "node:http";
import { sendCompletionJson } from "./chat-completions.js";
import { choiceInputs, collectChoices, mergeChoices, streamChoices } from "./choices.js";
import { completionGenerationInput, parseCompletionRequest } from "./completion-request.js";
import type { CompletionRequest } from "./completion-request.js";
import { collectGeneration } from "./generation.js";
import type { GenerationInput, Generations, RequestContext } from "./generation.js";
import { completionLogprobs } from "./logprobs.js";
import { streamGeneration } from "./sse.js";
import type { TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";

/**
 * POST /v1/completions, the legacy text endpoint (completion-only models
 * need it): the prompt goes to the router as raw text, untemplated. `n` > 1
 * runs on the same path as chat's (choices.ts).
 */
export class Completions {
  constructor(private readonly generations: Generations) {}

  async handle(res: ServerResponse, rawBody: unknown, ctx: RequestContext): Promise<void> {
    const body = parseCompletionRequest(rawBody);
    const input = completionGenerationInput(body);
    const id = `cmpl-${ctx.requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const n = body.n ?? 1;
    if (n > 1) return this.#choices(res, body, choiceInputs(input, n), ctx, id, created);
    const events = this.generations.run(input, ctx);
    let fingerprint = "";
    // Text offsets of a stream's logprobs count from the completion's start.
    let offset = 0;
    const logprobsOf = (text: string, entries: readonly TokenLogprob[] | undefined) => {
      if (!input.logprobs) return null;
      const value = completionLogprobs(entries ?? [], offset);
      offset += text.length;
      return value;
    };
    const chunk = (text: string, finishReason: string | null, logprobs: object | null = null) => ({
      id,
      object: "text_completion",
      created,
      model: body.model,
      system_fingerprint: fingerprint,
      choices: [{ text, index: 0, logprobs, finish_reason: finishReason }],
    });
    if (body.stream === true) {
      await streamGeneration(res, events, ctx, {
        started(event) {
          fingerprint = event.fingerprint;
          return undefined;
        },
        delta: (text, _toolCalls, logprobs) => chunk(text, null, logprobsOf(text, logprobs)),
        finished: (finishReason) => chunk("", finishReason),
        usage: (usage) => ({ id, object: "text_completion", created, model: body.model, system_fingerprint: fingerprint, choices: [], usage }),
        includeUsage: body.stream_options?.include_usage === true,
      });
      return;
    }
    const { started, text, logprobs, finished } = await collectGeneration(events);
    fingerprint = started.fingerprint;
    sendCompletionJson(res, ctx, finished, { ...chunk(text, finished.finishReason, logprobsOf(text, logprobs)), usage: finished.usage });
  }

  /** n > 1: n sequences at once (the path chat's n uses), choices indexed, usage with the prompt once and the completions summed. */
  async #choices(res: ServerResponse, body: CompletionRequest, inputs: GenerationInput[], ctx: RequestContext, id: string, created: number): Promise<void> {
    let fingerprint = "";
    const base = () => ({ id, object: "text_completion", created, model: body.model, system_fingerprint: fingerprint });
    const wantLogprobs = inputs[0].logprobs !== undefined;
    const offsets = inputs.map(() => 0);
    const logprobsOf = (index: number, text: string, entries: readonly TokenLogprob[] | undefined) => {
      if (!wantLogprobs) return null;
      const value = completionLogprobs(entries ?? [], offsets[index]);
      offsets[index] += text.length;
      return value;
    };
    const choice = (index: number, text: string, finishReason: string | null, logprobs: object | null = null) => ({
      text,
      index,
      logprobs,
      finish_reason: finishReason,
    });
    if (body.stream === true) {
      return streamChoices(res, mergeChoices(this.generations, inputs, ctx), ctx, inputs.length, {
        role(_index, started) {
          fingerprint = started.fingerprint;
          return undefined;
        },
        delta: (index, e) => ({ ...base(), choices: [choice(index, e.text, null, logprobsOf(index, e.text, e.logprobs))] }),
        finished: (index, e) => ({ ...base(), choices: [choice(index, "", e.finishReason)] }),
        usage: (usage) => ({ ...base(), choices: [], usage }),
        includeUsage: body.stream_options?.include_usage === true,
      });
    }
    const { results, usage } = await collectChoices(this.generations, inputs, ctx);
    fingerprint = results[0].started.fingerprint;
    sendCompletionJson(res, ctx, results[0].finished, {
      ...base(),
      choices: results.map((r, index) => choice(index, r.text, r.finished.finishReason, logprobsOf(index, r.text, r.logprobs))),
      usage,
    });
  }
}
