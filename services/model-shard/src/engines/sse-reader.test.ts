import { describe, expect, it } from "vitest";
import { readSseData } from "./sse-reader.js";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function collect(chunks: string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const data of readSseData(streamOf(chunks))) out.push(data);
  return out;
}

describe("readSseData", () => {
  it("yields every event of a chunk that holds many", async () => {
    const events = Array.from({ length: 500 }, (_, i) => `data: {"i":${i}}\n\n`).join("");
    const out = await collect([events]);
    expect(out).toHaveLength(500);
    expect(out[499]).toBe('{"i":499}');
  });

  it("joins an event split across chunks, with LF or CRLF separators", async () => {
    expect(await collect(["data: a", "bc\n", "\ndata: d\r\n\r", "\ndata: [DONE]\n\n"])).toEqual(["abc", "d", "[DONE]"]);
  });

  it("joins multi-line data and skips comments and other fields", async () => {
    expect(await collect([": keep-alive\n\nevent: x\ndata: one\ndata: two\n\n"])).toEqual(["one\ntwo"]);
  });

  it("keeps a multi-byte character split across chunks intact", async () => {
    const bytes = new TextEncoder().encode("data: é🎉\n\n");
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 8));
        controller.enqueue(bytes.slice(8));
        controller.close();
      },
    });
    const out: string[] = [];
    for await (const data of readSseData(stream)) out.push(data);
    expect(out).toEqual(["é🎉"]);
  });

  it("yields a last event that lacks its blank line", async () => {
    expect(await collect(["data: x\n\ndata: tail"])).toEqual(["x", "tail"]);
  });
});
