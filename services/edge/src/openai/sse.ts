import type { ServerResponse } from "node:http";

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

/** Writes one `data:` event. */
export function writeEvent(res: ServerResponse, data: unknown): void {
  res.write(`data: ${JSON.stringify(data)}\n\n`);
}

/** Writes the final `data: [DONE]` event and ends the response. */
export function endEventStream(res: ServerResponse): void {
  res.end("data: [DONE]\n\n");
}
