import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { GenerationEvent, RequestContext } from "./generation.js";
import { streamGeneration } from "./sse.js";
import type { ChunkFramer } from "./sse.js";

/** The stall bound under test: short so a case takes about a second. */
const STALL_MS = 300;
/** Room for this shared 2-core VM between the bound and the socket's close. */
const CLOSE_MARGIN_MS = 3_000;
/** Each delta's text: a few of them fill loopback's socket buffers (several MB) quickly. */
const DELTA = "x".repeat(64 * 1024);

const framer: ChunkFramer = {
  started: () => ({ role: "assistant" }),
  delta: (text) => ({ text }),
  finished: (finishReason) => ({ finishReason }),
  usage: (usage) => usage,
  includeUsage: false,
};

/** A generation that streams `deltas` deltas (endless when undefined), counting what it yielded and whether it was cut. */
function generation(deltas?: number) {
  const seen = { yielded: 0, returned: false, finished: false };
  async function* events(): AsyncGenerator<GenerationEvent> {
    try {
      yield { type: "started", promptTokens: 1, backend: "b", experiment: "", fingerprint: "f" };
      for (let i = 0; deltas === undefined || i < deltas; i++) {
        seen.yielded++;
        yield { type: "delta", text: DELTA };
        await new Promise((r) => setImmediate(r));
      }
      seen.finished = true;
      const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
      yield { type: "finished", finishReason: "stop", usage, engineMs: 1, serverTiming: "" };
    } finally {
      seen.returned = !seen.finished;
    }
  }
  return { seen, events };
}

let server: http.Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

/** A real HTTP server streaming `events` to each request, its signal aborted when the response closes (as the edge's is). */
async function serve(events: () => AsyncGenerator<GenerationEvent>): Promise<number> {
  server = http.createServer((_req, res) => {
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const ctx = { requestId: "r", signal: abort.signal, startedAt: performance.now(), headers: {}, streamStallMs: STALL_MS } as unknown as RequestContext;
    void streamGeneration(res, events(), ctx, framer);
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

describe("a stream whose client stops reading", () => {
  it("is cut off once nothing drained for the stall bound, and its generation is cancelled", async () => {
    const { seen, events } = generation();
    const port = await serve(events);
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n");
    socket.pause(); // reads nothing: the server's writes back up
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const limit = STALL_MS + CLOSE_MARGIN_MS;
      const timer = setTimeout(() => reject(new Error(`still open after ${limit} ms, ${seen.yielded} deltas generated`)), limit);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      // A paused socket sees its peer's close only once it reads: read the backlog away once the server gave up.
      const poll = setInterval(() => {
        if (seen.returned) {
          clearInterval(poll);
          socket.resume();
        }
      }, 50);
    });
    expect(seen.returned).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(STALL_MS);
    // Bounded by the buffers, not by the generation: it stopped pulling deltas when the socket was full.
    expect(seen.yielded).toBeLessThan(1_000);
  });

  it("is not cut off while the client reads, however slowly it starts", async () => {
    const { seen, events } = generation(200);
    const port = await serve(events);
    const res = await new Promise<http.IncomingMessage>((resolve) => http.get({ port, host: "127.0.0.1", path: "/" }, resolve));
    res.pause();
    await new Promise((r) => setTimeout(r, STALL_MS / 2)); // a pause shorter than the bound
    let bytes = 0;
    res.on("data", (d: Buffer) => (bytes += d.length));
    const ended = new Promise((r) => res.once("end", r));
    res.resume();
    await ended;
    expect(seen).toMatchObject({ finished: true, returned: false });
    expect(bytes).toBeGreaterThan(200 * DELTA.length);
  });
});
