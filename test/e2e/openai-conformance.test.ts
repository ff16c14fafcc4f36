import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchMesh, readSse } from "./openai-launcher.js";
import type { LaunchedMesh } from "./openai-launcher.js";

const MODEL = "tiny-llama";
const messages = [{ role: "user" as const, content: "Say hello." }];

let mesh: LaunchedMesh;
let client: OpenAI;

beforeAll(async () => {
  mesh = await launchMesh();
  client = new OpenAI({ baseURL: mesh.baseURL, apiKey: mesh.apiKey, maxRetries: 0 });
});

afterAll(async () => {
  await mesh?.stop();
});

/** Engine extensions the SDK's types do not know. */
type Extended = OpenAI.ChatCompletionCreateParamsNonStreaming & { ignore_eos?: boolean; top_k?: number; min_p?: number; repetition_penalty?: number };

describe("openai conformance: models and chat completions", () => {
  it("lists the served models", async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models.map((m) => m.id)).toContain(MODEL);
    expect(models[0]).toMatchObject({ object: "model", owned_by: expect.any(String) });
  });

  it("answers a non-stream chat completion with exact usage and timing headers", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages, max_tokens: 6, ignore_eos: true } as Extended, { headers: { "x-request-id": "client-id-42" } })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    // The mesh names the request; the client's own id is echoed for correlation only.
    const requestId = response.headers.get("x-request-id")!;
    expect(requestId).toMatch(/^[a-f0-9]{32}$/);
    expect(data.id).toBe(`chatcmpl-${requestId}`);
    expect(response.headers.get("x-client-request-id")).toBe("client-id-42");
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0].message.role).toBe("assistant");
    expect(data.choices[0].finish_reason).toBe("length");
    expect(data.usage!.completion_tokens).toBe(6);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + 6);
    expect(response.headers.get("server-timing")).toMatch(/^mesh;dur=[\d.]+, engine;dur=[\d.]+$/);
    expect(Number(response.headers.get("openai-processing-ms"))).toBeGreaterThanOrEqual(0);
  });

  it("gives every response a request id, errors included", async () => {
    const res = await fetch(`${mesh.url}/v1/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toMatch(/^[a-f0-9]{32}$/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_url");
  });

  it("streams SSE: same id, role first, finish chunk, usage chunk with empty choices, [DONE] last", async () => {
    const res = await fetch(`${mesh.baseURL}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages, max_tokens: 5, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("server-timing")).toMatch(/^mesh;dur=/);
    const events = await readSse(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as OpenAI.ChatCompletionChunk);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage!.completion_tokens).toBe(5);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe("length");
    expect(chunks.slice(0, -2).every((c) => c.choices[0].finish_reason === null)).toBe(true);
  });

  it("streams through the SDK and assembles the same text as a non-stream call at temperature 0", async () => {
    const body = { model: MODEL, messages, max_tokens: 12, temperature: 0 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(whole.choices[0].message.content);
    expect(finish).toBe(whole.choices[0].finish_reason);
  });

  it("reproduces a sampled completion with the same seed at temperature > 0", async () => {
    const body = { model: MODEL, messages, max_tokens: 16, temperature: 1.2, top_p: 0.95, seed: 1234, ignore_eos: true } as Extended;
    const a = await client.chat.completions.create(body);
    const b = await client.chat.completions.create(body);
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
    const others = await Promise.all([7, 99, 31337].map((seed) => client.chat.completions.create({ ...body, seed })));
    // Three other seeds all giving the very same 16 sampled tokens would mean the seed is ignored.
    expect(others.some((o) => o.choices[0].message.content !== a.choices[0].message.content)).toBe(true);
  });

  it("stops before a stop sequence that spans tokens, never emits it, and says finish_reason stop", async () => {
    const body = { model: MODEL, messages, max_tokens: 24, temperature: 0, ignore_eos: true } as Extended;
    const full = (await client.chat.completions.create(body)).choices[0].message.content!;
    expect(full.length).toBeGreaterThan(6);
    const stop = full.slice(3, 6);
    const cut = await client.chat.completions.create({ ...body, stop: [stop, "\u0000never"] });
    expect(cut.choices[0].message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.choices[0].finish_reason).toBe("stop");
    expect(cut.usage!.completion_tokens).toBeLessThan(24);
  });

  it("applies the engine extensions and penalties it accepts", async () => {
    const body = { model: MODEL, messages, max_tokens: 16, temperature: 0, ignore_eos: true } as Extended;
    const plain = (await client.chat.completions.create(body)).choices[0].message.content;
    const penalised = await client.chat.completions.create({ ...body, frequency_penalty: 2, presence_penalty: 2, repetition_penalty: 1.9 } as Extended);
    const sampled = await client.chat.completions.create({ ...body, temperature: 1, top_k: 5, min_p: 0.05, seed: 3 } as Extended);
    expect(penalised.choices[0].finish_reason).toBe("length");
    expect(sampled.usage!.completion_tokens).toBe(16);
    // Greedy decoding of a random model repeats itself; strong penalties must change the text.
    expect(penalised.choices[0].message.content).not.toBe(plain);
  });

  it("serves 16 concurrent streams, each complete and well-formed", async () => {
    const runs = Array.from({ length: 16 }, async (_, i) => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: `stream ${i}` }],
        max_tokens: 8,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      } as never);
      const ids = new Set<string>();
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) {
        ids.add(chunk.id);
        if (chunk.usage) usage = chunk.usage;
      }
      return { ids, usage };
    });
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.ids.size).toBe(1);
      expect(r.usage?.completion_tokens).toBe(8);
    }
    expect(new Set(results.map((r) => [...r.ids][0])).size).toBe(16);
  });
});

describe("openai conformance: /v1/completions", () => {
  it("answers a non-stream text completion", async () => {
    const res = await client.completions.create({
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 5,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(res.object).toBe("text_completion");
    expect(res.id).toMatch(/^cmpl-/);
    expect(typeof res.choices[0].text).toBe("string");
    expect(res.choices[0].finish_reason).toBe("length");
    expect(res.usage!.completion_tokens).toBe(5);
  });

  it("defaults max_tokens to 16 like OpenAI", async () => {
    const res = await client.completions.create({ model: MODEL, prompt: "Once upon a time", ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(res.usage!.completion_tokens).toBe(16);
  });

  it("streams a text completion with the same text as non-stream at temperature 0", async () => {
    const body = { model: MODEL, prompt: ["The quick brown fox"], max_tokens: 10, temperature: 0 };
    const whole = await client.completions.create(body);
    const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    const ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage) {
        usage = chunk.usage;
        expect(chunk.choices).toEqual([]);
      }
    }
    expect(ids.size).toBe(1);
    expect(text).toBe(whole.choices[0].text);
    expect(usage).toEqual(whole.usage);
  });
});
