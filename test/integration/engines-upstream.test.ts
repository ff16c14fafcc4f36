import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSchema } from "../../lib/catalog/index.js";
import type { UpstreamBackend } from "../../lib/catalog/index.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { promptFormat } from "../../lib/templates/index.js";
import { ChatMessageSchema, SamplingParamsSchema, ShardService } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import type { EngineChunk, EngineRequest, EngineResult } from "../../services/model-shard/src/engine.js";
import { OpenAIUpstreamEngine } from "../../services/model-shard/src/engines/openai-upstream-engine.js";
import { build as buildShard } from "../../services/model-shard/src/server.js";
import { build as buildAuth } from "../../services/auth/src/server.js";
import { build as buildEdge } from "../../services/edge/src/server.js";
import { build as buildRouter } from "../../services/router/src/server.js";
import { build as buildTokenizer } from "../../services/tokenizer/src/server.js";
import { HfTokenizer } from "../../services/tokenizer/src/hf-tokenizer.js";
import { startFakeOpenAI } from "../../tools/fake-openai/index.js";
import type { FakeOpenAI, FakeRequestBody } from "../../tools/fake-openai/index.js";
import { writeTinyTokenizer } from "../fixtures/tiny-tokenizer.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

const MESSAGES = [
  { role: "system", content: "Be precise and concise." },
  { role: "user", content: "How many stars are there in our galaxy?" },
];

function backend(url: string, extra: Partial<UpstreamBackend> = {}): UpstreamBackend {
  const parsed = catalogSchema.parse({
    models: [{ name: "m", tokenizer: "t.json", backends: [{ name: "up", engine: "openai-upstream", url, upstream_model: "org/model", ...extra }] }],
  });
  return parsed.models[0].backends[0] as UpstreamBackend;
}

function request(overrides: Partial<EngineRequest> = {}): EngineRequest {
  return {
    requestId: "r1",
    promptTokenIds: [1, 2, 3],
    messages: MESSAGES.map((m) => create(ChatMessageSchema, m)),
    prompt: "",
    sampling: create(SamplingParamsSchema, { temperature: 0.5, topP: 0.9, topK: 40, maxTokens: 8, seed: 7 }),
    ...overrides,
  };
}

async function drain(gen: AsyncGenerator<EngineChunk, EngineResult>): Promise<{ chunks: EngineChunk[]; result: EngineResult }> {
  const chunks: EngineChunk[] = [];
  for (;;) {
    const next = await gen.next();
    if (next.done) return { chunks, result: next.value };
    chunks.push(next.value);
  }
}

async function codeOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return (err as ConnectError).code;
  }
}

describe("openai-upstream engine", () => {
  let dir: string;
  let tokenizerFile: string;
  let meshTokenizer: HfTokenizer;
  let fake: FakeOpenAI;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-upstream-"));
    tokenizerFile = await writeTinyTokenizer(dir);
    meshTokenizer = await HfTokenizer.load(tokenizerFile, { template: promptFormat("mistral-instruct")!.template });
    // The "upstream" counts prompt tokens with its own copy of the model's tokenizer and template, as vLLM does.
    const upstreamTokenizer = await HfTokenizer.load(tokenizerFile, { template: promptFormat("mistral-instruct")!.template });
    const count = (body: FakeRequestBody): number =>
      body.messages
        ? upstreamTokenizer.tokenize(upstreamTokenizer.renderChat(body.messages, true), true).length
        : upstreamTokenizer.tokenize(String(body.prompt ?? ""), false).length;
    fake = await startFakeOpenAI({ tokens: 6, countPromptTokens: count });
  });

  afterAll(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams token by token, forwards sampling params and reports the upstream's usage", async () => {
    const engine = new OpenAIUpstreamEngine("m", backend(fake.url, { api_key: "sk-up" }));
    const promptIds = meshTokenizer.tokenize(meshTokenizer.renderChat(MESSAGES, true), true);
    const { chunks, result } = await drain(engine.generate(request({ promptTokenIds: promptIds }), new AbortController().signal));
    expect(chunks.map((c) => c.text)).toEqual([" tok0", " tok1", " tok2", " tok3", " tok4", " tok5"]);
    expect(result).toEqual({ finishReason: "stop", promptTokens: promptIds.length, completionTokens: 6 });
    const body = fake.stats.lastBody!;
    expect(body).toMatchObject({
      model: "org/model",
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      top_k: 40,
      max_tokens: 8,
      seed: 7,
    });
    expect(body.top_p).toBeCloseTo(0.9);
    expect(fake.stats.lastHeaders?.authorization).toBe("Bearer sk-up");
  });

  it("sends raw prompts to /completions and reports length when max_tokens cut it", async () => {
    const engine = new OpenAIUpstreamEngine("m", backend(fake.url));
    const sampling = create(SamplingParamsSchema, { temperature: 0, maxTokens: 3 });
    const { chunks, result } = await drain(engine.generate(request({ messages: [], prompt: "How many stars", sampling }), new AbortController().signal));
    expect(chunks.map((c) => c.text).join("")).toBe(" tok0 tok1 tok2");
    expect(result.finishReason).toBe("length");
    expect(result.promptTokens).toBe(meshTokenizer.tokenize("How many stars", false).length);
    expect(fake.stats.lastBody?.prompt).toBe("How many stars");
  });

  it("maps 429 to ResourceExhausted and 5xx to Unavailable", async () => {
    const engine = new OpenAIUpstreamEngine("m", backend(fake.url));
    fake.configure({ failStatus: 429, failCount: 1 });
    expect(await codeOf(drain(engine.generate(request(), new AbortController().signal)))).toBe(Code.ResourceExhausted);
    fake.configure({ failStatus: 503, failCount: 1 });
    expect(await codeOf(drain(engine.generate(request(), new AbortController().signal)))).toBe(Code.Unavailable);
    fake.configure({ failStatus: 400, failCount: 1 });
    expect(await codeOf(drain(engine.generate(request(), new AbortController().signal)))).toBe(Code.InvalidArgument);
  });

  it("maps a refused connection to Unavailable", async () => {
    const closed = await startFakeOpenAI();
    const url = closed.url;
    await closed.close();
    const engine = new OpenAIUpstreamEngine("m", backend(url));
    expect(await codeOf(drain(engine.generate(request(), new AbortController().signal)))).toBe(Code.Unavailable);
  });

  it("fails a slow upstream with DeadlineExceeded and aborts its request", async () => {
    fake.resetStats();
    const engine = new OpenAIUpstreamEngine("m", backend(fake.url, { timeout_ms: 150 }));
    fake.configure({ hang: "headers" });
    try {
      expect(await codeOf(drain(engine.generate(request(), new AbortController().signal)))).toBe(Code.DeadlineExceeded);
    } finally {
      fake.configure({ hang: false });
    }
    await expect.poll(() => fake.stats.aborted).toBe(1);
  });

  it("aborts the upstream request when the caller cancels mid-stream", async () => {
    fake.resetStats();
    fake.configure({ hang: "first-token" });
    const engine = new OpenAIUpstreamEngine("m", backend(fake.url));
    const cancel = new AbortController();
    const gen = engine.generate(request(), cancel.signal);
    try {
      const first = await gen.next();
      expect(first.done).toBe(false);
      cancel.abort();
      const { result } = await drain(gen);
      expect(result.finishReason).toBe("cancelled");
    } finally {
      fake.configure({ hang: false });
    }
    await expect.poll(() => fake.stats.aborted).toBe(1);
  });
});

describe("a model-shard on openai-upstream", () => {
  let fake: FakeOpenAI;
  let shard: Awaited<ReturnType<typeof buildShard>>;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ tokens: 50 });
    const log = createLogger("test");
    log.level = "silent";
    shard = await buildShard({ port: 0, host: "127.0.0.1", model: "m", backend: backend(fake.url, { max_concurrency: 2 }) }, log);
  });

  afterAll(async () => {
    await shard?.close(500);
    await fake?.close();
  });

  it("ends the upstream request when a stop sequence matches", async () => {
    fake.resetStats();
    fake.configure({ tokenDelayMs: 5 });
    const client = grpcClient(ShardService, `127.0.0.1:${shard.port}`);
    let text = "";
    for await (const res of client.generate({ requestId: "s", messages: MESSAGES, sampling: { maxTokens: 50, stop: ["tok3"] } }, { timeoutMs: 5_000 })) {
      text += res.text;
    }
    fake.configure({ tokenDelayMs: 0 });
    expect(text).toBe(" tok0 tok1 tok2 ");
    await expect.poll(() => fake.stats.aborted).toBe(1);
  });

  it("reports running sequences in its load reports while an upstream request runs", async () => {
    fake.configure({ hang: "first-token" });
    const client = grpcClient(ShardService, `127.0.0.1:${shard.port}`);
    const cancel = new AbortController();
    const watch = new AbortController();
    const running: number[] = [];
    const watching = (async () => {
      try {
        for await (const load of client.watchLoad({ minIntervalMs: 0 }, { signal: watch.signal })) {
          running.push(load.running);
          if (load.running === 1) break;
        }
      } catch {
        // stopped by the test
      }
    })();
    const generating = (async () => {
      try {
        for await (const _ of client.generate({ requestId: "l", messages: MESSAGES, sampling: { maxTokens: 50 } }, { signal: cancel.signal })) void _;
      } catch {
        // cancelled by the test
      }
    })();
    await watching;
    cancel.abort();
    watch.abort();
    await generating;
    fake.configure({ hang: false });
    expect(running[0]).toBe(0);
    expect(running).toContain(1);
    expect(shard.engine.info.maxSequences).toBe(2);
  });
});

describe("the mesh with an openai-upstream backend", () => {
  let dir: string;
  let fake: FakeOpenAI;
  let services: Array<{ close(ms: number): Promise<void> }> = [];
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-upstream-e2e-"));
    const tokenizerFile = await writeTinyTokenizer(dir);
    const upstreamTokenizer = await HfTokenizer.load(tokenizerFile, { template: promptFormat("llama-2-chat")!.template });
    fake = await startFakeOpenAI({
      tokens: 4,
      countPromptTokens: (body) => upstreamTokenizer.tokenize(upstreamTokenizer.renderChat(body.messages ?? [], true), true).length,
    });
    const log = createLogger("test");
    log.level = "silent";
    const model = { name: "llama-2-13b-chat", template: "llama-2-chat", tokenizer: tokenizerFile, context_length: 4096 };
    const up = { name: "vllm", engine: "openai-upstream", url: fake.url, upstream_model: "meta-llama/Llama-2-13b-chat-hf" };
    const shard = await buildShard(
      { port: 0, host: "127.0.0.1", model: model.name, backend: catalogSchema.parse({ models: [{ ...model, backends: [up] }] }).models[0].backends[0] },
      log,
    );
    const catalog = catalogSchema.parse({ models: [{ ...model, backends: [{ ...up, addresses: [`127.0.0.1:${shard.port}`] }] }] });
    const tokenizer = await buildTokenizer({ port: 0, host: "127.0.0.1", catalog }, log);
    const auth = await buildAuth({ port: 0, host: "127.0.0.1", dataDir: dir, bootstrapApiKey: TEST_API_KEY }, log);
    const router = await buildRouter({ port: 0, host: "127.0.0.1", catalog }, log);
    const edge = await buildEdge(
      {
        port: 0,
        host: "127.0.0.1",
        authAddress: `127.0.0.1:${auth.port}`,
        routerAddress: `127.0.0.1:${router.port}`,
        healthTargets: {},
        requestTimeoutMs: 10_000,
      },
      log,
    );
    services = [edge, router, tokenizer, auth, shard];
    url = `http://127.0.0.1:${edge.port}/v1`;
  });

  afterAll(async () => {
    for (const service of services) await service.close(500);
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams the upstream's tokens, and its usage equals the mesh tokenizer's count", async () => {
    const client = new OpenAI({ baseURL: url, apiKey: TEST_API_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "llama-2-13b-chat",
      messages: MESSAGES as OpenAI.ChatCompletionMessageParam[],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(" tok0 tok1 tok2 tok3");
    expect(fake.stats.lastBody?.model).toBe("meta-llama/Llama-2-13b-chat-hf");
    const meshTokenizer = await HfTokenizer.load(path.join(dir, "tokenizer.json"), { template: promptFormat("llama-2-chat")!.template });
    const meshCount = meshTokenizer.tokenize(meshTokenizer.renderChat(MESSAGES, true), true).length;
    expect(usage).toMatchObject({ prompt_tokens: meshCount, completion_tokens: 4 });
    expect(meshCount).toBeGreaterThan(10);
  });
});
