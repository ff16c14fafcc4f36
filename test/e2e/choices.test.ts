import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

const MAX_TOKENS = 5;

describe("n > 1 through the mesh: parallel sequences, indexed choices, usage summed", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;

  beforeAll(async () => {
    mesh = await startInProcessMesh({ sequences: 3 });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const request = {
    model: "tiny-llama",
    messages: [{ role: "user" as const, content: "Three ways" }],
    n: 3,
    max_tokens: MAX_TOKENS,
    ignore_eos: true,
    seed: 7,
  };

  it("non-stream n: 3 answers three choices indexed 0..2; completion tokens are the sum, the prompt counted once", async () => {
    const one = await client.chat.completions.create({ ...request, n: 1 } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    const completion = await client.chat.completions.create(request as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const choice of completion.choices) {
      expect(choice.finish_reason).toBe("length");
      expect(typeof choice.message.content).toBe("string");
    }
    // The first choice is the n=1 answer for the same seed; the others sample with seed + i.
    expect(completion.choices[0].message.content).toBe(one.choices[0].message.content);
    expect(completion.usage).toEqual({
      prompt_tokens: one.usage!.prompt_tokens,
      completion_tokens: 3 * MAX_TOKENS,
      total_tokens: one.usage!.prompt_tokens + 3 * MAX_TOKENS,
    });
  });

  it("streamed n: 3: every choice has its role chunk, its deltas and its finish, indexed; one usage chunk for all", async () => {
    const whole = await client.chat.completions.create(request as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
    const texts = ["", "", ""];
    const finishes: (string | null)[] = [null, null, null];
    const roles = new Set<number>();
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        if (choice.delta.role) roles.add(choice.index);
        texts[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finishes[choice.index] = choice.finish_reason;
      }
    }
    expect([...roles].sort()).toEqual([0, 1, 2]);
    expect(finishes).toEqual(["length", "length", "length"]);
    expect(texts).toEqual(whole.choices.map((c) => c.message.content));
    expect(usage!.completion_tokens).toBe(3 * MAX_TOKENS);
  });
});
