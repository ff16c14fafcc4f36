import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ShardService } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { launchMesh, postJson, readSse, shardAddress } from "./openai-launcher.js";
import type { LaunchedMesh } from "./openai-launcher.js";

const MODEL = "tiny-llama";
const messages = [{ role: "user", content: "Tell me a long story." }];
/** Near the tiny model's 4,096-token context: seconds of work even at thousands of tokens/s. */
const LONG_MAX_TOKENS = 4_000;

let mesh: LaunchedMesh;
let client: OpenAI;

beforeAll(async () => {
  mesh = await launchMesh();
  client = new OpenAI({ baseURL: mesh.baseURL, apiKey: mesh.apiKey, maxRetries: 0 });
});

afterAll(async () => {
  await mesh?.stop();
});

async function expectStillAnswers(): Promise<void> {
  const res = await postJson(mesh, "/v1/chat/completions", { model: MODEL, messages, max_tokens: 2 });
  expect(res.status).toBe(200);
  expect(res.json.choices[0].message.role).toBe("assistant");
}

describe("openai errors", () => {
  it("answers a bad key with AuthenticationError", async () => {
    const bad = new OpenAI({ baseURL: mesh.baseURL, apiKey: "sk-wrong-0123456789abcdefghij", maxRetries: 0 });
    const err = await bad.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(401);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("invalid_api_key");
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe("invalid_request_error");
  });

  it("answers an unknown model with NotFoundError naming the param", async () => {
    const err = await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ status: 404, code: "model_not_found", param: "model", type: "invalid_request_error" });
  });

  it("answers invalid parameters with BadRequestError naming the param", async () => {
    const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], temperature: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: "temperature", code: "invalid_value", type: "invalid_request_error" });
  });

  it.each([
    [{ model: MODEL, messages, n: 17 }, "n", "unsupported_value"],
    [{ model: MODEL, messages, top_logprobs: 2 }, "top_logprobs", "invalid_value"],
    [{ model: MODEL, messages, response_format: { type: "xml" } }, "response_format.type", "invalid_value"],
    [{ model: MODEL, messages, stream_options: { include_usage: true } }, "stream_options", "invalid_value"],
    [{ model: MODEL, messages, stop: ["a", "b", "c", "d", "e"] }, "stop", "invalid_value"],
    [{ model: MODEL, messages: [{ role: "wizard", content: "x" }] }, "messages[0].role", "invalid_value"],
    [{ model: MODEL }, "messages", "missing_required_parameter"],
    [{ model: MODEL, messages, max_tokens: 100_000 }, "messages", "context_length_exceeded"],
  ])("POST %j → 400 with param and code", async (body, param, code) => {
    const res = await postJson(mesh, "/v1/chat/completions", body);
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.json.error).toMatchObject({ type: "invalid_request_error", param, code });
  });

  it("answers context_length_exceeded on /v1/completions too, and keeps answering", async () => {
    const res = await postJson(mesh, "/v1/completions", { model: MODEL, prompt: "word ".repeat(5_000), max_tokens: 10 });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("context_length_exceeded");
    await expectStillAnswers();
  });

  it("answers an oversized body with 413 JSON and keeps answering", async () => {
    const huge = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }] });
    const res = await postJson(mesh, "/v1/chat/completions", huge);
    expect(res.status).toBe(413);
    expect(res.json.error).toMatchObject({ type: "invalid_request_error", code: "request_too_large" });
    await expectStillAnswers();
  });

  it("answers malformed JSON and wrong methods with 4xx JSON", async () => {
    const bad = await postJson(mesh, "/v1/chat/completions", "{not json");
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("invalid_json");
    const get = await fetch(`${mesh.baseURL}/chat/completions`, { headers: { authorization: `Bearer ${mesh.apiKey}` } });
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
  });
});

describe("cancellation and deadlines", () => {
  /** Follows the shard's load reports; `until` waits for a condition on the running count. */
  function watchShard() {
    const shard = grpcClient(ShardService, shardAddress(mesh), { serviceToken: mesh.serviceToken });
    const stop = new AbortController();
    let running = -1;
    let changed: (() => void) | undefined;
    void (async () => {
      try {
        for await (const load of shard.watchLoad({ minIntervalMs: 0 }, { signal: stop.signal })) {
          running = load.running;
          changed?.();
        }
      } catch {
        // stopped
      }
    })();
    const until = async (predicate: (running: number) => boolean, timeoutMs: number): Promise<number> => {
      const started = performance.now();
      while (!predicate(running)) {
        if (performance.now() - started > timeoutMs) throw new Error(`shard running=${running} after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          changed = resolve;
          setTimeout(resolve, 20);
        });
      }
      return performance.now() - started;
    };
    return { until, close: () => stop.abort() };
  }

  it("frees the shard's sequence when a streaming client disconnects", async () => {
    const shard = watchShard();
    try {
      await shard.until((r) => r === 0, 10_000);
      const abort = new AbortController();
      const res = await fetch(`${mesh.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages, max_tokens: LONG_MAX_TOKENS, ignore_eos: true, stream: true }),
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      await shard.until((r) => r === 1, 10_000);
      abort.abort();
      const freedMs = await shard.until((r) => r === 0, 2_000);
      console.log(`stream cancel → shard slot free in ${freedMs.toFixed(1)} ms`);
      await expectStillAnswers();
    } finally {
      shard.close();
    }
  });

  it("frees the shard's sequence when a non-stream client disconnects", async () => {
    const shard = watchShard();
    try {
      await shard.until((r) => r === 0, 10_000);
      const abort = new AbortController();
      const pending = client.chat.completions
        .create({ model: MODEL, messages, max_tokens: LONG_MAX_TOKENS, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsNonStreaming, {
          signal: abort.signal,
        })
        .catch((e: unknown) => e);
      await shard.until((r) => r === 1, 10_000);
      abort.abort();
      expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError);
      const freedMs = await shard.until((r) => r === 0, 2_000);
      console.log(`non-stream cancel → shard slot free in ${freedMs.toFixed(1)} ms`);
    } finally {
      shard.close();
    }
  });

  it("ends a non-stream request past its deadline with a JSON timeout error", async () => {
    const res = await postJson(
      mesh,
      "/v1/chat/completions",
      { model: MODEL, messages, max_tokens: LONG_MAX_TOKENS, ignore_eos: true },
      { "x-mesh-timeout-ms": "400" },
    );
    expect(res.status).toBe(504);
    expect(res.json.error).toMatchObject({ type: "timeout", code: "timeout" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("ends a stream past its deadline with an error event, then [DONE]", async () => {
    const res = await fetch(`${mesh.baseURL}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json", "x-mesh-timeout-ms": "1500" },
      body: JSON.stringify({ model: MODEL, messages, max_tokens: LONG_MAX_TOKENS, ignore_eos: true, stream: true }),
    });
    expect(res.status).toBe(200);
    const events = await readSse(res);
    expect(events.at(-1)).toBe("[DONE]");
    expect(JSON.parse(events.at(-2)!)).toMatchObject({ error: { type: "timeout", code: "timeout" } });
    expect(JSON.parse(events[0]).choices[0].delta.role).toBe("assistant");
  });
});

describe("live edge fuzz", () => {
  const keys = [
    "model",
    "messages",
    "prompt",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "stream",
    "stream_options",
    "top_k",
    "min_p",
    "repetition_penalty",
    "response_format",
    "logprobs",
    "user",
    "presence_penalty",
  ];
  const valid = { model: MODEL, messages: [{ role: "user", content: "hi" }], prompt: "hi", max_tokens: 2 };
  const bodies = fc.oneof(
    fc.string().map((s) => s),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.dictionary(fc.constantFrom(...keys), fc.jsonValue(), { maxKeys: 4 }).map((patch) => JSON.stringify({ ...valid, ...patch, max_tokens: 2 })),
    fc.nat({ max: 100_000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
    fc.constant('{"model":"tiny-llama","messages":[{"role":"user","content":"\\ud800"}],"max_tokens":2}'),
  );

  it("answers random and hostile bodies with 2xx or 4xx JSON, never a 5xx or a hang", async () => {
    await fc.assert(
      fc.asyncProperty(bodies, fc.constantFrom("/v1/chat/completions", "/v1/completions"), async (body, path) => {
        const res = await fetch(`${mesh.url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        if (res.status >= 500) return false;
        if (res.status >= 400) {
          const json = JSON.parse(text) as { error?: { message?: string; type?: string } };
          return typeof json.error?.message === "string" && typeof json.error.type === "string";
        }
        return res.status === 200;
      }),
      { numRuns: 150 },
    );
    await expectStillAnswers();
  });
});
