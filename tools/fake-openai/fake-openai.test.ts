import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI } from "./index.js";
import type { FakeOpenAI } from "./index.js";

describe("fake-openai", () => {
  let fake: FakeOpenAI;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ tokens: 5 });
    client = new OpenAI({ baseURL: fake.url, apiKey: "x", maxRetries: 0 });
  });
  afterAll(() => fake.close());

  it("answers a chat completion with usage", async () => {
    const res = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "one two three" }] });
    expect(res.choices[0].message.content).toBe(" tok0 tok1 tok2 tok3 tok4");
    expect(res.usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
  });

  it("streams chat tokens and a usage chunk when include_usage is set", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 3,
    });
    const deltas: string[] = [];
    let usage: unknown;
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    expect(deltas).toEqual([" tok0", " tok1", " tok2"]);
    expect(finish).toBe("length");
    expect(usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
  });

  it("streams text completions", async () => {
    const stream = await client.completions.create({ model: "m", prompt: "a b", stream: true, max_tokens: 2 });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(" tok0 tok1");
  });

  it("injects errors by status, for the next N requests", async () => {
    fake.configure({ failStatus: 429, failCount: 1 });
    await expect(client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({ status: 429 });
    const ok = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] });
    expect(ok.choices[0].message.content).toContain("tok0");
  });

  it("counts a request whose client left as aborted", async () => {
    fake.resetStats();
    fake.configure({ hang: "first-token" });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "m", messages: [{ role: "user", content: "x" }], stream: true },
      { signal: controller.signal },
    );
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) break;
    controller.abort();
    fake.configure({ hang: false });
    await expect.poll(() => fake.stats.aborted).toBe(1);
    expect(fake.stats.inFlight).toBe(0);
  });
});
