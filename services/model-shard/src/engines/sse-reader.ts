import { createParser } from "eventsource-parser";
import { Code, meshError } from "../../../../lib/errors.js";
import type { EventSourceParser } from "eventsource-parser";

/**
 * Cuts `data:` payloads out of server-sent event text as it arrives, one per
 * event (an event split across pushes is joined first), with
 * `eventsource-parser` (the WHATWG parsing rules; linear in the text, and
 * faster than the hand-written scanner it replaced: docs/benchmarks.md).
 */
export class SseDataParser {
  #out: string[] = [];
  readonly #parser: EventSourceParser = createParser({ onEvent: (event) => this.#out.push(event.data) });

  /** Adds text; returns the data of every event it completed, in order. */
  push(text: string): string[] {
    this.#parser.feed(text);
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The data of a last event that lacks its blank line, if any. */
  end(): string | undefined {
    const [data] = this.push("\n\n");
    this.#parser.reset();
    return data === "" ? undefined : data;
  }
}

/**
 * Reads `data:` payloads from a server-sent event stream, one per event,
 * as they arrive (see {@link SseDataParser}).
 */
export async function* readSseData(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const parser = new SseDataParser();
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    for (const data of parser.push(decoder.decode(part, { stream: true }))) yield data;
  }
  for (const data of parser.push(decoder.decode())) yield data;
  const last = parser.end();
  if (last !== undefined) yield last;
}

/** One event's JSON; Unavailable naming `sender` when it is not JSON. */
export function parseEventJson<T>(data: string, sender: string): T {
  try {
    return JSON.parse(data) as T;
  } catch (err) {
    throw meshError(Code.Unavailable, `${sender} sent a malformed stream event`, { cause: err });
  }
}
