import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findLlamaServer, LLAMA_SERVER_HINT } from "../../lib/llama-server/index.js";
import { startLauncher } from "../support/launcher-process.js";
import type { LauncherProcess } from "../support/launcher-process.js";

const API_KEY = "sk-e2e-llama-server-0123456789abcdef";
const MESSAGES = [{ role: "user" as const, content: "Say something about the sea" }];

// .ci/run builds the binary (`llm-mesh llama-server build`), so CI always runs these.
describe.skipIf(!findLlamaServer())(
  `a mesh whose llama.cpp backend runs on llama-server, through the openai SDK (skipped when not built: ${LLAMA_SERVER_HINT})`,
  () => {
    let mesh: LauncherProcess;
    let client: OpenAI;

    beforeAll(async () => {
      mesh = await startLauncher({ apiKey: API_KEY, backend: { runtime: "llama-server", sequences: 2 } });
      client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
    });
    afterAll(async () => {
      await mesh?.stop();
    });

    it("answers chat with exact usage, and streams the same text at temperature 0", async () => {
      const { data: completion, response } = await client.chat.completions
        .create({ model: "tiny-llama", messages: MESSAGES, max_tokens: 12, temperature: 0, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .withResponse();
      expect(response.headers.get("x-mesh-backend")).toBe("local");
      expect(completion.choices[0].finish_reason).toBe("length");
      expect(completion.usage).toMatchObject({ completion_tokens: 12 });
      expect(completion.usage!.prompt_tokens).toBeGreaterThan(MESSAGES[0].content.split(" ").length);
      const content = completion.choices[0].message.content ?? "";
      expect(content.length).toBeGreaterThan(0);

      const stream = await client.chat.completions.create({
        model: "tiny-llama",
        messages: MESSAGES,
        max_tokens: 12,
        temperature: 0,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      let streamed = "";
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        streamed += chunk.choices[0]?.delta.content ?? "";
        if (chunk.usage) usage = chunk.usage;
      }
      expect(streamed).toBe(content);
      expect(usage).toEqual(completion.usage);
    });

    it("cuts at a stop sequence (the shard's stop matching works on this runtime too)", async () => {
      const full = await client.completions.create({
        model: "tiny-llama",
        prompt: "Once upon a time",
        max_tokens: 24,
        temperature: 0,
        ignore_eos: true,
      } as OpenAI.CompletionCreateParamsNonStreaming);
      const text = full.choices[0].text;
      const stop = text.slice(6, 9);
      expect(stop.trim().length).toBeGreaterThan(0);
      const cut = await client.completions.create({ model: "tiny-llama", prompt: "Once upon a time", max_tokens: 24, temperature: 0, stop: [stop] });
      expect(cut.choices[0].finish_reason).toBe("stop");
      expect(cut.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
    });

    it("keeps serving after a client drops a stream midway", async () => {
      const stream = await client.chat.completions.create({
        model: "tiny-llama",
        messages: MESSAGES,
        max_tokens: 400,
        stream: true,
        ignore_eos: true,
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      let chunks = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content && ++chunks >= 3) break;
      }
      stream.controller.abort();
      const after = await Promise.all(
        [0, 1].map(() =>
          client.chat.completions.create({
            model: "tiny-llama",
            messages: MESSAGES,
            max_tokens: 6,
            ignore_eos: true,
          } as OpenAI.ChatCompletionCreateParamsNonStreaming),
        ),
      );
      expect(after.map((c) => c.usage?.completion_tokens)).toEqual([6, 6]);
    });

    it("streams logprobs that spell the content, in OpenAI's shape", async () => {
      const completion = await client.chat.completions.create({
        model: "tiny-llama",
        messages: MESSAGES,
        max_tokens: 8,
        temperature: 0,
        logprobs: true,
        top_logprobs: 2,
        ignore_eos: true,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      const content = completion.choices[0].logprobs?.content ?? [];
      expect(completion.usage?.completion_tokens).toBe(8);
      // A character split across tokens has one entry on this runtime (llama-server-logprobs.ts).
      expect(content.length).toBeGreaterThan(4);
      expect(content.length).toBeLessThanOrEqual(8);
      expect(content.map((c) => c.token).join("")).toBe(completion.choices[0].message.content);
      for (const entry of content) {
        expect(entry.top_logprobs.length).toBeGreaterThan(0);
        expect(entry.logprob).toBeCloseTo(entry.top_logprobs[0].logprob, 4);
      }
    });

    it("says plainly that this runtime does not embed (501)", async () => {
      const embeddings = await client.embeddings.create({ model: "tiny-llama", input: "hello" }).catch((err: unknown) => err);
      expect(embeddings).toBeInstanceOf(OpenAI.APIError);
      expect((embeddings as InstanceType<typeof OpenAI.APIError>).status).toBe(501);
      expect((embeddings as InstanceType<typeof OpenAI.APIError>).message).toMatch(/llama-server engine does not serve embeddings/);
    });
  },
);
