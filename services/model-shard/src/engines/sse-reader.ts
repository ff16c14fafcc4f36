/**
 * Reads `data:` payloads from a server-sent event stream, one per event,
 * as they arrive (an event split across network chunks is joined first).
 */
export async function* readSseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(part, { stream: true });
    let end: number;
    while ((end = eventEnd(buffer)) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^(\r?\n){2}/, "");
      const data = dataOf(event);
      if (data !== undefined) yield data;
    }
  }
  const data = dataOf(buffer + decoder.decode());
  if (data !== undefined && data !== "") yield data;
}

function eventEnd(buffer: string): number {
  const lf = buffer.indexOf("\n\n");
  const crlf = buffer.indexOf("\r\n\r\n");
  if (lf < 0) return crlf;
  if (crlf < 0) return lf;
  return Math.min(lf, crlf);
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
