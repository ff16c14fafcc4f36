import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";

describe("the mesh started by `llm-mesh up`, driven by the official openai SDK", () => {
  let mesh: MeshProcess;
  let client: OpenAI;

  beforeAll(async () => {
    mesh = await startMeshProcess();
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it("lists the embedded tiny model", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["tiny-llama"]);
  });

  it("answers a non-stream chat completion with exact usage", async () => {
    const completion = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "Hello there" }],
      max_tokens: 8,
      temperature: 0,
    });
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0].message.role).toBe("assistant");
    expect(["stop", "length"]).toContain(completion.choices[0].finish_reason);
    const usage = completion.usage!;
    expect(usage.prompt_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeLessThanOrEqual(8);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
  });

  it("streams chunks with one id, the role first, and usage last when asked", async () => {
    const stream = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "Tell me a story" }],
      max_tokens: 6,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish?.choices[0]!.finish_reason).toBe("length");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(6);
  });

  it("gives the same text streamed and not streamed at temperature 0", async () => {
    const params = { model: "tiny-llama", messages: [{ role: "user" as const, content: "Same answer?" }], max_tokens: 10, temperature: 0 };
    const whole = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe(whole.choices[0].message.content);
  });

  it("refuses a bad key with AuthenticationError", async () => {
    const bad = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "sk-wrong-key-0000000000000000000", maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("answers an unknown model with NotFoundError and code model_not_found", async () => {
    const err = await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
  });

  it("answers malformed JSON and missing fields with 400 errors in OpenAI's shape", async () => {
    const headers = { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" };
    const malformed = await fetch(`${mesh.url}/v1/chat/completions`, { method: "POST", headers, body: "{not json" });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    const missing = await fetch(`${mesh.url}/v1/chat/completions`, { method: "POST", headers, body: JSON.stringify({ model: "tiny-llama" }) });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { param: string } }).error.param).toBe("messages");
  });

  it("reports every service SERVING on /healthz", async () => {
    const res = await fetch(`${mesh.url}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { services: Record<string, string> };
    expect(Object.keys(body.services)).toEqual(expect.arrayContaining(["auth", "tokenizer", "router", "shard:tiny-llama/local"]));
  });
});
