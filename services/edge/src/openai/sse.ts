import { once } from "node:events";
import type { ServerResponse } from "node:http";
import type { FinishReasonName, GenerationEvent, RequestContext, TokenUsage } from "./generation.js";
import { toHttpError } from "./errors.js";
import { coalesce, mergeRuns } from "../../../../lib/streaming/index.js";
import type { ToolCallPiece } from "./tools.js";
import type { TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";

/** Starts a Server-Sent Events response. */
export function startEventStream(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, {
    ...headers,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
}

/** Frames one `data:` event. */
export function frameEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

/** Writes one `data:` event; false when the socket's buffer is full. */
export function writeEvent(res: ServerResponse, data: unknown): boolean {
  return res.write(frameEvent(data));
}

/** How long a stream may wait for its client to read (`drain`) before the edge gives up on it (MESH_HTTP_STREAM_STALL_MS). */
export const DEFAULT_STREAM_STALL_MS = 10_000;

/** A stream whose client stopped reading for longer than the stall bound. */
export class StreamStalledError extends Error {
  constructor(readonly stallMs: number) {
    super(`client read nothing for ${stallMs} ms with the stream's buffer full`);
  }
}

/**
 * Waits until a full response buffer drains. A client that reads nothing
 * for `ctx.streamStallMs` (socket buffers full, no `drain`) is cut off: the
 * response is destroyed, which aborts the request's signal, cancels the
 * generation (the shard frees its sequence) and bills what was generated as
 * `cancelled`. Without the bound, a stream nobody reads holds a shard
 * sequence until its client disconnects.
 */
export async function waitForDrain(res: ServerResponse, ctx: Pick<RequestContext, "signal" | "streamStallMs">): Promise<void> {
  const stallMs = ctx.streamStallMs ?? DEFAULT_STREAM_STALL_MS;
  const stalled = AbortSignal.timeout(stallMs);
  try {
    await once(res, "drain", { signal: AbortSignal.any([ctx.signal, stalled]) });
  } catch (err) {
    if (!stalled.aborted || ctx.signal.aborted) throw err;
    res.destroy();
    throw new StreamStalledError(stallMs);
  }
}

/** Writes the final `data: [DONE]` event and ends the response. */
export function endEventStream(res: ServerResponse): void {
  res.end("data: [DONE]\n\n");
}

/** How one API shapes its chunks (chat.completion.chunk, text_completion). */
export interface ChunkFramer {
  started(event: Extract<GenerationEvent, { type: "started" }>): object | undefined;
  delta(text: string, toolCalls?: readonly ToolCallPiece[], logprobs?: readonly TokenLogprob[]): object;
  finished(finishReason: FinishReasonName): object;
  usage(usage: TokenUsage): object;
  includeUsage: boolean;
}

/**
 * Streams a generation as SSE: headers once the router has started (so
 * errors before that are plain JSON with their status), a chunk per delta
 * (waiting for the socket when it is full), the finish chunk, the usage
 * chunk when asked, then `[DONE]`. An error after the headers becomes an
 * error event; a client that left just ends the iteration, which cancels
 * the generation in the shard.
 */
export async function streamGeneration(res: ServerResponse, events: AsyncGenerator<GenerationEvent>, ctx: RequestContext, framer: ChunkFramer): Promise<void> {
  try {
    // Deltas that arrived together become one chunk (a fast engine outruns a chunk per token).
    reading: for await (const batch of coalesce(events))
      for (const event of mergeRuns(batch, isTextDelta, mergeDeltaEvents)) {
        if (ctx.signal.aborted) break reading;
        let chunk: object | undefined;
        if (event.type === "started") {
          const meshMs = performance.now() - ctx.startedAt;
          startEventStream(res, { ...ctx.headers, "server-timing": `mesh;dur=${meshMs.toFixed(2)}`, "openai-processing-ms": String(Math.round(meshMs)) });
          chunk = framer.started(event);
        } else if (event.type === "delta") {
          chunk = framer.delta(event.text, event.toolCalls, event.logprobs);
        } else {
          writeEvent(res, framer.finished(event.finishReason));
          if (framer.includeUsage) writeEvent(res, framer.usage(event.usage));
          endEventStream(res);
          continue;
        }
        if (!chunk) continue;
        // Deltas that arrive together (one HTTP/2 frame from the router) leave in one write.
        if (res.writableCorked === 0) {
          res.cork();
          process.nextTick(() => res.uncork());
        }
        if (!writeEvent(res, chunk)) await waitForDrain(res, ctx);
      }
  } catch (err) {
    endStreamWithError(res, err, ctx);
  } finally {
    if (!res.writableEnded && res.headersSent) res.end();
  }
}

/**
 * A failure while streaming: before the headers it is the caller's to answer
 * (plain JSON with its status), rethrown; once the stream is open, it is said
 * in-band as an error event, then the stream ends.
 */
export function endStreamWithError(res: ServerResponse, err: unknown, ctx: Pick<RequestContext, "requestId" | "signal">): void {
  if (!res.headersSent) throw err;
  if (!res.writableEnded && !res.destroyed && !ctx.signal.aborted) {
    writeEvent(res, toHttpError(err, ctx.requestId).body());
    endEventStream(res);
  }
}

type DeltaEvent = Extract<GenerationEvent, { type: "delta" }>;

/** A delta without tool-call pieces (those keep a chunk each: one entry per call index in a chunk). */
function isTextDelta(event: GenerationEvent): boolean {
  return event.type === "delta" && !event.toolCalls?.length;
}

/** Consecutive text deltas as one: text joined, logprob entries in order. */
function mergeDeltaEvents(run: readonly GenerationEvent[]): GenerationEvent {
  const deltas = run as readonly DeltaEvent[];
  const logprobs = deltas.flatMap((d) => d.logprobs ?? []);
  return { type: "delta", text: deltas.map((d) => d.text).join(""), ...(logprobs.length ? { logprobs } : {}) };
}
