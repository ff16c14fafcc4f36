/** A blank line ends an event (LF or CRLF line ends). */
const EVENT_END = /\r\n\r\n|\n\n/g;

/**
 * Cuts `data:` payloads out of server-sent event text as it arrives, one per
 * event (an event split across pushes is joined first). A push often holds
 * hundreds of events (a fast upstream's burst): they are found in one forward
 * scan, so a push costs time linear in its size.
 */
export class SseDataParser {
  #buffer = "";

  /** Adds text; returns the data of every event it completed, in order. */
  push(text: string): string[] {
    const buffer = this.#buffer + text;
    const out: string[] = [];
    let start = 0;
    // The unfinished event was scanned before: only its last 3 characters can start a separator.
    EVENT_END.lastIndex = Math.max(0, this.#buffer.length - 3);
    for (let end = EVENT_END.exec(buffer); end; end = EVENT_END.exec(buffer)) {
      const data = dataOf(buffer.slice(start, end.index));
      start = end.index + end[0].length;
      if (data !== undefined) out.push(data);
    }
    this.#buffer = start > 0 ? buffer.slice(start) : buffer;
    return out;
  }

  /** The data of a last event that lacks its blank line, if any. */
  end(): string | undefined {
    const data = dataOf(this.#buffer);
    this.#buffer = "";
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

function dataOf(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (!line.startsWith("data:")) continue;
    const value = line.slice(line[5] === " " ? 6 : 5);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data;
}
