import type { ServerResponse } from "node:http";
import { collectGeneration } from "./generation.js";
import type { CollectedGeneration, GenerationEvent, GenerationInput, Generations, RequestContext, TokenUsage } from "./generation.js";
import { endEventStream, endStreamWithError, startEventStream, waitForDrain, writeEvent } from "./sse.js";

/** One event of one of n choices. */
export interface ChoiceEvent {
  index: number;
  event: GenerationEvent;
}

/**
 * The inputs of n choices: the same request, each its own sequence; with a
 * seed, choice i samples with seed + i so the choices differ yet repeat.
 */
export function choiceInputs(input: GenerationInput, n: number): GenerationInput[] {
  return Array.from({ length: n }, (_, i) =>
    i === 0 || input.sampling.seed === undefined ? input : { ...input, sampling: { ...input.sampling, seed: (input.sampling.seed + i) >>> 0 } },
  );
}

/**
 * Runs n generations at once and merges their events as they come, each
 * tagged with its choice index. Abandoning the merge (client gone, error)
 * ends every generation, which cancels them in the shards.
 */
export async function* mergeChoices(generations: Generations, inputs: readonly GenerationInput[], ctx: RequestContext): AsyncGenerator<ChoiceEvent> {
  const iterators = inputs.map((input) => generations.run(input, ctx));
  const next = (index: number) => iterators[index].next().then((result) => ({ index, result }));
  const pending = new Map(iterators.map((_, i) => [i, next(i)] as const));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pending.set(index, next(index));
      yield { index, event: result.value };
    }
  } finally {
    await Promise.allSettled(iterators.map((it) => it.return(undefined)));
  }
}

/**
 * Runs n generations at once, each to its end, for a non-stream answer:
 * results in choice order, usage with the prompt once and the completions summed.
 */
export async function collectChoices(
  generations: Generations,
  inputs: readonly GenerationInput[],
  ctx: RequestContext,
): Promise<{ results: CollectedGeneration[]; usage: TokenUsage }> {
  const results = await Promise.all(inputs.map((input) => collectGeneration(generations.run(input, ctx))));
  const completionTokens = results.reduce((sum, r) => sum + r.finished.usage.completion_tokens, 0);
  const promptTokens = results[0].finished.usage.prompt_tokens;
  return { results, usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } };
}

/** How an endpoint (chat, text completions) shapes the chunks of n choices. */
export interface ChoicesFramer {
  /** The chunk a choice starts with (chat's role chunk); undefined: none. */
  role(index: number, event: Extract<GenerationEvent, { type: "started" }>): object | undefined;
  delta(index: number, event: Extract<GenerationEvent, { type: "delta" }>): object;
  finished(index: number, event: Extract<GenerationEvent, { type: "finished" }>): object;
  /** The usage of all choices (prompt once, completions summed). */
  usage(usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number }): object;
  includeUsage: boolean;
}

/**
 * Streams n choices as SSE: headers when the first choice has started,
 * each choice's role chunk as it starts, deltas with their `index`, each
 * finish chunk, then (when asked) one usage chunk for all and `[DONE]`.
 */
export async function streamChoices(
  res: ServerResponse,
  events: AsyncGenerator<ChoiceEvent>,
  ctx: RequestContext,
  n: number,
  framer: ChoicesFramer,
): Promise<void> {
  let promptTokens = 0;
  let completionTokens = 0;
  let finished = 0;
  try {
    for await (const { index, event } of events) {
      if (ctx.signal.aborted) break;
      let chunk: object;
      if (event.type === "started") {
        if (!res.headersSent) {
          const meshMs = performance.now() - ctx.startedAt;
          startEventStream(res, { ...ctx.headers, "server-timing": `mesh;dur=${meshMs.toFixed(2)}`, "openai-processing-ms": String(Math.round(meshMs)) });
        }
        const role = framer.role(index, event);
        if (!role) continue;
        chunk = role;
      } else if (event.type === "delta") {
        chunk = framer.delta(index, event);
      } else {
        promptTokens = event.usage.prompt_tokens;
        completionTokens += event.usage.completion_tokens;
        chunk = framer.finished(index, event);
        finished++;
      }
      if (!writeEvent(res, chunk)) await waitForDrain(res, ctx);
      if (finished === n) {
        if (framer.includeUsage)
          writeEvent(res, framer.usage({ prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }));
        endEventStream(res);
        return;
      }
    }
  } catch (err) {
    endStreamWithError(res, err, ctx);
  } finally {
    if (!res.writableEnded && res.headersSent) res.end();
  }
}
