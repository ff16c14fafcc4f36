import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";
import { fakeTokenLogprob, startFakeOpenAI } from "../../tools/fake-openai/index.js";
import type { FakeOpenAI } from "../../tools/fake-openai/index.js";

type ChatEntry = OpenAI.Chat.Completions.ChatCompletionTokenLogprob;

/**
 * Checks entries as a client would use them: they spell the content; the bytes of each
 * run (tokens of one character: "" entries, then the one that completes it) decode to
 * its text; logprobs ≤ 0; `top` alternatives each, most likely first; and, greedy, the
 * sampled token is the likeliest.
 */
function expectEntries(content: string, entries: readonly ChatEntry[], top: number, greedy: boolean): void {
  expect(entries.map((e) => e.token).join("")).toBe(content);
  let run: number[] = [];
  for (const e of entries) {
    run.push(...e.bytes!);
    expect(e.logprob).toBeLessThanOrEqual(0);
    expect(e.top_logprobs).toHaveLength(top);
    const values = e.top_logprobs.map((t) => t.logprob);
    expect(values).toEqual([...values].sort((a, b) => b - a));
    for (const t of e.top_logprobs) expect(Buffer.from(t.bytes!).toString("utf8")).toBe(t.token);
    if (greedy && top > 0) expect(e.logprob).toBe(e.top_logprobs[0].logprob);
    if (e.token === "") continue;
    expect(Buffer.from(run).toString("utf8")).toBe(e.token);
    run = [];
  }
}

describe("logprobs through the mesh with the openai SDK (tiny model on llama.cpp, and a fake upstream)", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;
  let fake: FakeOpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ tokens: 4 });
    mesh = await startInProcessMesh({ sequences: 3, upstreamUrl: fake.url });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
    await fake?.close();
  });

  const chat = { model: "tiny-llama", messages: [{ role: "user" as const, content: "Spell it" }], max_tokens: 12, ignore_eos: true };

  it("chat, non-stream, greedy: logprobs.content spells the message, 5 alternatives each, the sampled one first", async () => {
    const res = await client.chat.completions.create({ ...chat, temperature: 0, logprobs: true, top_logprobs: 5 });
    const choice = res.choices[0];
    expect(choice.logprobs!.refusal).toBeNull();
    expect(choice.logprobs!.content!.length).toBeGreaterThan(0);
    expectEntries(choice.message.content!, choice.logprobs!.content!, 5, true);
  });

  it("chat, streamed, sampled: each chunk's entries spell its delta; together the same as the non-stream answer for the seed", async () => {
    const params = { ...chat, temperature: 1, seed: 11, logprobs: true, top_logprobs: 3 };
    const whole = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let content = "";
    const entries: ChatEntry[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      const delta = choice.delta.content ?? "";
      if (choice.logprobs) {
        expect(choice.logprobs.content!.map((e) => e.token).join("")).toBe(delta);
        entries.push(...choice.logprobs.content!);
      } else {
        // Only the role and finish chunks go without logprobs.
        expect(delta).toBe("");
      }
      content += delta;
    }
    expect(content).toBe(whole.choices[0].message.content);
    expectEntries(content, entries, 3, false);
    expect(entries).toEqual(whole.choices[0].logprobs!.content);
  });

  it("chat without logprobs answers logprobs: null; top_logprobs without logprobs is a 400", async () => {
    const res = await client.chat.completions.create({ ...chat, max_tokens: 2 });
    expect(res.choices[0].logprobs).toBeNull();
    await expect(client.chat.completions.create({ ...chat, top_logprobs: 2 })).rejects.toMatchObject({ status: 400, param: "top_logprobs" });
    await expect(client.chat.completions.create({ ...chat, logprobs: true, top_logprobs: 21 })).rejects.toMatchObject({ status: 400, param: "top_logprobs" });
  });

  it("chat with n: 2 gives each choice its own entries", async () => {
    const res = await client.chat.completions.create({ ...chat, n: 2, temperature: 1, seed: 4, logprobs: true, top_logprobs: 1 });
    expect(res.choices).toHaveLength(2);
    for (const choice of res.choices) expectEntries(choice.message.content!, choice.logprobs!.content!, 1, false);
  });

  it("stop sequences: the entries spell what is left of the text", async () => {
    const probe = await client.chat.completions.create({ ...chat, temperature: 0, logprobs: true });
    const content = probe.choices[0].message.content!;
    expect(content.length).toBeGreaterThan(5);
    const stop = content.slice(3, 5);
    const res = await client.chat.completions.create({ ...chat, temperature: 0, logprobs: true, stop });
    const cut = res.choices[0].message.content!;
    expect(cut).toBe(content.slice(0, content.indexOf(stop)));
    expect(res.choices[0].logprobs!.content!.map((e) => e.token).join("")).toBe(cut);
  });

  it("logprobs with tools on the llama.cpp backend (calls parsed from its text) is a 400 naming logprobs", async () => {
    const parameters = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };
    const tools = [{ type: "function" as const, function: { name: "f", parameters } }];
    const forced = client.chat.completions.create({ ...chat, tools, tool_choice: "required", logprobs: true });
    await expect(forced).rejects.toMatchObject({ status: 400, param: "logprobs" });
    // tool_choice "none" leaves the text alone, so logprobs are served.
    const res = await client.chat.completions.create({ ...chat, tools, tool_choice: "none", logprobs: true, max_tokens: 3 });
    expect(res.choices[0].logprobs!.content!.map((e) => e.token).join("")).toBe(res.choices[0].message.content);
  });

  it("responses: include message.output_text.logprobs fills output_text's logprobs and each delta's; without it they stay empty", async () => {
    const include = ["message.output_text.logprobs" as const];
    const params = { model: "tiny-llama", input: "Spell it", max_output_tokens: 8, temperature: 0, include, top_logprobs: 2 };
    const res = await client.responses.create(params);
    const part = (res.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText;
    expect(part.logprobs!.length).toBeGreaterThan(0);
    expectEntries(res.output_text, part.logprobs!, 2, true);
    const stream = await client.responses.create({ ...params, stream: true });
    let text = "";
    const streamed: unknown[] = [];
    let done: unknown[] = [];
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") {
        expect(event.logprobs.map((e) => e.token).join("")).toBe(event.delta);
        text += event.delta;
        streamed.push(...event.logprobs);
      } else if (event.type === "response.output_text.done") done = event.logprobs;
    }
    expect(text).toBe(res.output_text);
    expect(streamed).toEqual(part.logprobs);
    expect(done).toEqual(part.logprobs);
    const plain = await client.responses.create({ model: "tiny-llama", input: "Spell it", max_output_tokens: 4 });
    expect(((plain.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText).logprobs).toEqual([]);
  });

  it("completions, non-stream: tokens spell the text, token_logprobs ≤ 0, top dicts of logprobs (+ the sampled token), offsets", async () => {
    const params = { model: "tiny-llama", prompt: "Once upon", max_tokens: 10, temperature: 0, logprobs: 3, ignore_eos: true };
    const res = await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
    const { text, logprobs } = res.choices[0];
    expect(logprobs!.tokens!.join("")).toBe(text);
    expect(logprobs!.tokens).toHaveLength(logprobs!.token_logprobs!.length);
    let offset = 0;
    for (const [i, token] of logprobs!.tokens!.entries()) {
      expect(logprobs!.text_offset![i]).toBe(offset);
      offset += token.length;
      const lp = logprobs!.token_logprobs![i];
      expect(lp).toBeLessThanOrEqual(0);
      const top = logprobs!.top_logprobs![i];
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(4);
      expect(top[token]).toBe(lp);
      // Greedy: nothing is likelier than the sampled token.
      expect(Math.max(...Object.values(top))).toBe(lp);
    }
  });

  it("completions, streamed, logprobs: 0: each chunk's tokens spell its text and its offsets continue the text", async () => {
    const params = { model: "tiny-llama", prompt: "Once upon", max_tokens: 10, temperature: 0, ignore_eos: true };
    const stream = await client.completions.create({ ...params, logprobs: 0, stream: true } as OpenAI.CompletionCreateParamsStreaming);
    let text = "";
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice?.logprobs) continue;
      expect(choice.logprobs.tokens!.join("")).toBe(choice.text);
      if (choice.logprobs.text_offset!.length > 0) expect(choice.logprobs.text_offset![0]).toBe(text.length);
      for (const [i, token] of choice.logprobs.tokens!.entries()) expect(Object.keys(choice.logprobs.top_logprobs![i])).toEqual([token]);
      text += choice.text;
    }
    const whole = await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
    expect(text).toBe(whole.choices[0].text);
    expect(whole.choices[0].logprobs).toBeNull();
  });

  it("an openai-upstream backend is asked for logprobs and its entries pass through (chat, streamed and not)", async () => {
    const res = await client.chat.completions.create({ model: "upstream", messages: [{ role: "user", content: "x" }], logprobs: true, top_logprobs: 2 });
    expect(fake.stats.lastBody).toMatchObject({ logprobs: true, top_logprobs: 2 });
    const content = res.choices[0].logprobs!.content!;
    expect(content.map((e) => e.token)).toEqual([" tok0", " tok1", " tok2", " tok3"]);
    expect(content.map((e) => e.logprob)).toEqual([0, 1, 2, 3].map(fakeTokenLogprob));
    expect(content[1].top_logprobs).toEqual([
      { token: " tok1", logprob: fakeTokenLogprob(1), bytes: [...Buffer.from(" tok1")] },
      { token: " alt1", logprob: fakeTokenLogprob(1) - 1, bytes: [...Buffer.from(" alt1")] },
    ]);
    const messages = [{ role: "user" as const, content: "x" }];
    const stream = await client.chat.completions.create({ model: "upstream", messages, logprobs: true, top_logprobs: 2, stream: true });
    const streamed: ChatEntry[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(content);
  });

  it("an openai-upstream backend gets logprobs: N on completions and its tokens pass through", async () => {
    const res = await client.completions.create({ model: "upstream", prompt: "a b", logprobs: 2, max_tokens: 3 } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(fake.stats.lastBody).toMatchObject({ logprobs: 2 });
    const { logprobs, text } = res.choices[0];
    expect(logprobs!.tokens).toEqual([" tok0", " tok1", " tok2"]);
    expect(logprobs!.token_logprobs).toEqual([0, 1, 2].map(fakeTokenLogprob));
    expect(logprobs!.top_logprobs![2]).toEqual({ " tok2": fakeTokenLogprob(2), " alt1": fakeTokenLogprob(2) - 1 });
    expect(logprobs!.text_offset).toEqual([0, 5, 10]);
    expect(text).toBe(" tok0 tok1 tok2");
  });

  it("the upstream is not asked for logprobs when the client did not ask", async () => {
    await client.chat.completions.create({ model: "upstream", messages: [{ role: "user", content: "x" }] });
    expect(fake.stats.lastBody!.logprobs).toBeUndefined();
    expect(fake.stats.lastBody!.top_logprobs).toBeUndefined();
  });
});

describe("n > 1 on /v1/completions: parallel sequences, indexed choices, usage summed", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;

  beforeAll(async () => {
    mesh = await startInProcessMesh({ sequences: 3 });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const MAX_TOKENS = 5;
  const request = { model: "tiny-llama", prompt: "Three ways", n: 3, max_tokens: MAX_TOKENS, ignore_eos: true, seed: 7 };

  it("non-stream n: 3 answers three choices indexed 0..2, the first the n=1 answer; completion tokens summed, the prompt once", async () => {
    const one = await client.completions.create({ ...request, n: 1 } as OpenAI.CompletionCreateParamsNonStreaming);
    const res = await client.completions.create(request as OpenAI.CompletionCreateParamsNonStreaming);
    expect(res.object).toBe("text_completion");
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const choice of res.choices) {
      expect(choice.finish_reason).toBe("length");
      expect(typeof choice.text).toBe("string");
      expect(choice.logprobs).toBeNull();
    }
    expect(res.choices[0].text).toBe(one.choices[0].text);
    const prompt = one.usage!.prompt_tokens;
    expect(res.usage).toEqual({ prompt_tokens: prompt, completion_tokens: 3 * MAX_TOKENS, total_tokens: prompt + 3 * MAX_TOKENS });
  });

  it("streamed n: 3: deltas and finishes indexed, the texts those of the non-stream answer, one usage chunk for all", async () => {
    const whole = await client.completions.create(request as OpenAI.CompletionCreateParamsNonStreaming);
    const streamed = { ...request, stream: true, stream_options: { include_usage: true } };
    const stream = await client.completions.create(streamed as OpenAI.CompletionCreateParamsStreaming);
    const texts = ["", "", ""];
    const finishes: (string | null)[] = [null, null, null];
    let usage: OpenAI.CompletionUsage | undefined;
    let usageChunks = 0;
    for await (const chunk of stream) {
      if (chunk.usage) {
        usage = chunk.usage;
        usageChunks++;
        expect(chunk.choices).toEqual([]);
      }
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.text;
        if (choice.finish_reason) finishes[choice.index] = choice.finish_reason;
      }
    }
    expect(finishes).toEqual(["length", "length", "length"]);
    expect(texts).toEqual(whole.choices.map((c) => c.text));
    expect(usageChunks).toBe(1);
    expect(usage).toEqual(whole.usage);
  });

  it("n: 3 with logprobs gives each choice entries that spell its text", async () => {
    const res = await client.completions.create({ ...request, logprobs: 2 } as OpenAI.CompletionCreateParamsNonStreaming);
    for (const choice of res.choices) expect(choice.logprobs!.tokens!.join("")).toBe(choice.text);
  });

  it("best_of other than n is a 400 naming best_of; n above 16 names n", async () => {
    const create = (patch: object) => client.completions.create({ ...request, ...patch } as OpenAI.CompletionCreateParamsNonStreaming);
    await expect(create({ best_of: 4 })).rejects.toMatchObject({ status: 400, param: "best_of" });
    await expect(create({ n: 17 })).rejects.toMatchObject({ status: 400, param: "n" });
  });
});
