import { execFileSync } from "node:child_process";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inferenceClient } from "../../examples/inference-client.js";
import type { Protocol } from "../../examples/inference-client.js";
import { ERROR_PARAM_HEADER, ERROR_REASON_HEADER } from "../../lib/errors.js";
import { launchMesh } from "./openai-launcher.js";
import type { LaunchedMesh } from "./openai-launcher.js";

const MODEL = "tiny-llama";
const messages = [{ role: "user", content: "Say hello." }];

let mesh: LaunchedMesh;

beforeAll(async () => {
  mesh = await launchMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

async function rpcError(call: Promise<unknown>): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe.each<Protocol>(["grpc", "connect", "grpc-web"])("InferenceService over %s", (protocol) => {
  it("lists models", async () => {
    const { models } = await inferenceClient(mesh.url, mesh.apiKey, protocol).listModels({});
    expect(models.map((m) => m.id)).toContain(MODEL);
  });

  it("answers a unary chat completion with exact usage and the request id", async () => {
    let requestId: string | null = null;
    let clientId: string | null = null;
    const res = await inferenceClient(mesh.url, mesh.apiKey, protocol).createChatCompletion(
      { params: { model: MODEL, messages, maxTokens: 5, ignoreEos: true } },
      {
        headers: { "x-request-id": `rpc-${protocol}-1` },
        onHeader: (h) => {
          requestId = h.get("x-request-id");
          clientId = h.get("x-client-request-id");
        },
      },
    );
    // The mesh names every request itself; the client's id comes back for correlation only.
    expect(requestId).toMatch(/^[a-f0-9]{32}$/);
    expect(res.id).toBe(`chatcmpl-${requestId}`);
    expect(clientId).toBe(`rpc-${protocol}-1`);
    expect(res.finishReason).toBe("length");
    expect(res.usage?.completionTokens).toBe(5);
    expect(res.usage?.totalTokens).toBe(res.usage!.promptTokens + 5);
    expect(res.backend).toBe("local");
  });

  it("streams the same text as unary at temperature 0, usage on the last message", async () => {
    const client = inferenceClient(mesh.url, mesh.apiKey, protocol);
    const params = { model: MODEL, messages, maxTokens: 8, temperature: 0 };
    const whole = await client.createChatCompletion({ params });
    let text = "";
    const responses = [];
    for await (const res of client.streamChatCompletion({ params })) {
      responses.push(res);
      text += res.delta;
    }
    expect(text).toBe(whole.content);
    expect(new Set(responses.map((r) => r.id)).size).toBe(1);
    const last = responses.at(-1)!;
    expect(last.finishReason).toBe(whole.finishReason);
    expect(last.usage?.completionTokens).toBe(whole.usage?.completionTokens);
    expect(responses.slice(0, -1).every((r) => r.finishReason === "" && r.usage === undefined)).toBe(true);
  });

  it("carries logprobs: the entries spell the content, unary and streamed alike, with top_logprobs alternatives", async () => {
    const client = inferenceClient(mesh.url, mesh.apiKey, protocol);
    const params = { model: MODEL, messages, maxTokens: 6, temperature: 0, ignoreEos: true, logprobs: true, topLogprobs: 2 };
    const whole = await client.createChatCompletion({ params });
    expect(whole.logprobs.map((e) => e.token).join("")).toBe(whole.content);
    expect(whole.logprobs.every((e) => e.topLogprobs.length === 2 && e.logprob === e.topLogprobs[0].logprob)).toBe(true);
    const streamed = [];
    for await (const res of client.streamChatCompletion({ params })) {
      expect(res.logprobs.map((e) => e.token).join("")).toBe(res.delta);
      streamed.push(...res.logprobs);
    }
    expect(streamed.map((e) => [e.token, e.logprob, [...e.bytes]])).toEqual(whole.logprobs.map((e) => [e.token, e.logprob, [...e.bytes]]));
    const plain = await client.createChatCompletion({ params: { ...params, logprobs: false, topLogprobs: 0 } });
    expect(plain.logprobs).toEqual([]);
  });

  it("refuses a missing or wrong key with Unauthenticated", async () => {
    const wrong = inferenceClient(mesh.url, "sk-wrong-0123456789abcdefghij", protocol);
    expect((await rpcError(wrong.listModels({}))).code).toBe(Code.Unauthenticated);
    const none = inferenceClient(mesh.url, "", protocol);
    const err = await rpcError(none.createChatCompletion({ params: { model: MODEL, messages } }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.metadata.get(ERROR_REASON_HEADER)).toBe("invalid_api_key");
  });

  it("uses the REST validation: codes, params and reasons", async () => {
    const client = inferenceClient(mesh.url, mesh.apiKey, protocol);
    const unknown = await rpcError(client.createChatCompletion({ params: { model: "nope", messages } }));
    expect(unknown.code).toBe(Code.NotFound);
    expect(unknown.metadata.get(ERROR_REASON_HEADER)).toBe("model_not_found");
    const hot = await rpcError(client.createChatCompletion({ params: { model: MODEL, messages, temperature: 3 } }));
    expect(hot.code).toBe(Code.InvalidArgument);
    expect(hot.metadata.get(ERROR_PARAM_HEADER)).toBe("temperature");
    const role = await rpcError(client.createChatCompletion({ params: { model: MODEL, messages: [{ role: "robot", content: "x" }] } }));
    expect(role.metadata.get(ERROR_PARAM_HEADER)).toBe("messages[0].role");
    const empty = await rpcError(client.createChatCompletion({}));
    expect(empty.code).toBe(Code.InvalidArgument);
    const long = await rpcError(consume(client.streamChatCompletion({ params: { model: MODEL, messages, maxTokens: 100_000 } })));
    expect(long.code).toBe(Code.InvalidArgument);
    expect(long.metadata.get(ERROR_REASON_HEADER)).toBe("context_length_exceeded");
  });

  it("ends a call past its deadline with DeadlineExceeded", async () => {
    const client = inferenceClient(mesh.url, mesh.apiKey, protocol);
    const err = await rpcError(client.createChatCompletion({ params: { model: MODEL, messages, maxTokens: 4_000, ignoreEos: true } }, { timeoutMs: 300 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });
});

describe("the example client", () => {
  it("runs against the mesh over gRPC", () => {
    execFileSync("npx", ["tsc", "-p", "examples/tsconfig.json"], { stdio: "pipe" });
    const out = execFileSync(process.execPath, ["dist/examples/inference-client.js", mesh.url, "grpc"], {
      env: { ...process.env, MESH_API_KEY: mesh.apiKey },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(out).toContain(`models: ${MODEL}`);
    expect(out).toMatch(/unary: .* tokens\)/);
    expect(out).toContain("param=temperature code=invalid_value");
  });
});

async function consume(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // drain
  }
}

describe("InferenceService tools and Embed", () => {
  it("a named tool choice answers a call whose arguments parse; streamed pieces name the call first", async () => {
    const client = inferenceClient(mesh.url, mesh.apiKey, "grpc");
    const tools = [
      {
        name: "pick",
        description: "Pick a colour",
        parametersJson: JSON.stringify({ type: "object", properties: { colour: { enum: ["red", "blue"] } }, required: ["colour"] }),
      },
    ];
    const res = await client.createChatCompletion({ params: { model: MODEL, messages, maxTokens: 300, tools, toolChoice: "pick" } });
    expect(res.finishReason).toBe("tool_calls");
    expect(res.toolCalls).toHaveLength(1);
    expect(res.toolCalls[0].name).toBe("pick");
    expect(["red", "blue"]).toContain((JSON.parse(res.toolCalls[0].arguments) as { colour: string }).colour);
    const pieces: { index: number; id: string; name: string; arguments: string }[] = [];
    let finish = "";
    for await (const chunk of client.streamChatCompletion({
      params: { model: MODEL, messages, maxTokens: 300, tools, toolChoice: "required", parallelToolCalls: false },
    })) {
      pieces.push(...chunk.toolCalls);
      finish = chunk.finishReason || finish;
    }
    expect(finish).toBe("tool_calls");
    expect(pieces[0]).toMatchObject({ index: 0, name: "pick" });
    expect(pieces[0].id).toMatch(/^call_/);
    expect(JSON.parse(pieces.map((p) => p.arguments).join(""))).toHaveProperty("colour");
  });

  it("Embed answers one vector per input with usage, as /v1/embeddings does", async () => {
    const client = inferenceClient(mesh.url, mesh.apiKey, "grpc");
    const res = await client.embed({ model: MODEL, input: ["one", "two words"] });
    expect(res.data).toHaveLength(2);
    expect(res.data[0].values.length).toBeGreaterThan(0);
    expect(res.data[0].values).not.toEqual(res.data[1].values);
    expect(res.usage!.promptTokens).toBeGreaterThan(0);
    const rest = (await (
      await fetch(`${mesh.baseURL}/embeddings`, {
        method: "POST",
        headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, input: ["one"], encoding_format: "float" }),
      })
    ).json()) as { data: { embedding: number[] }[] };
    expect(rest.data[0].embedding).toEqual(res.data[0].values);
    const bad = await rpcError(client.embed({ model: MODEL, input: [] }));
    expect(bad.code).toBe(Code.InvalidArgument);
  });
});
