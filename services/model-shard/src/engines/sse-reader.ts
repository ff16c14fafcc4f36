/**
 * Reads `data:` payloads from a server-sent event stream, one per event,
 * as they arrive (an event split across network chunks is joined first).
 * A network chunk often holds hundreds of events (a fast upstream's burst):
 * events are cut out by index, so a chunk costs time linear in its size.
 */
export async function* readSseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(part, { stream: true });
    let start = 0;
    for (;;) {
      const end = eventEnd(buffer, start);
      if (end.at < 0) break;
      const data = dataOf(buffer.slice(start, end.at));
      start = end.at + end.length;
      if (data !== undefined) yield data;
    }
    buffer = start > 0 ? buffer.slice(start) : buffer;
  }
  const data = dataOf(buffer + decoder.decode());
  if (data !== undefined && data !== "") yield data;
}

/** Where the event starting at `from` ends, and how long its separator is. */
function eventEnd(buffer: string, from: number): { at: number; length: number } {
  const lf = buffer.indexOf("\n\n", from);
  const crlf = buffer.indexOf("\r\n\r\n", from);
  if (lf < 0) return { at: crlf, length: 4 };
  if (crlf < 0 || lf < crlf) return { at: lf, length: 2 };
  return { at: crlf, length: 4 };
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
