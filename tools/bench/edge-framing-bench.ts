/**
 * Edge micro-benchmark: (1) the edge's own cost per request (JSON parse +
 * zod validation + mapping to the router request) and per streamed token
 * (chunk object + JSON + SSE framing), in µs; (2) streamed tokens/s through
 * a real edge (HTTP/1.1 SSE) at N concurrent streams, with a zero-delay fake
 * router behind it and the clients in a separate process. Prints numbers;
 * asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/tools/bench/edge-framing-bench.js [streams] [tokensPerStream] [rounds]
 */
import { fork } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import { fileURLToPath } from "node:url";
import { PrincipalSchema } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { GenerateResponseSchema, RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateRequest } from "../../src/gen/mesh/router/v1/router_pb.js";
import { FinishReason } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { grpcClient, startRpcServer } from "../../lib/rpc/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { EdgeHttpApi } from "../../services/edge/src/http-api.js";
import { listenDualProtocol } from "../../services/edge/src/http-listener.js";
import { ChatCompletions } from "../../services/edge/src/openai/chat-completions.js";
import { chatGenerationInput, parseChatRequest } from "../../services/edge/src/openai/chat-request.js";
import { Completions } from "../../services/edge/src/openai/completions.js";
import { Generations, toRouterRequest } from "../../services/edge/src/openai/generation.js";
import { frameEvent } from "../../services/edge/src/openai/sse.js";
import type { PrincipalCache } from "../../services/edge/src/principal-cache.js";
import type { UsageRecorder } from "../../services/edge/src/usage-recorder.js";

const isClient = process.argv[2] === "client";
const args = process.argv.slice(isClient ? 4 : 2);
const streams = Number(args[0] ?? 64);
const tokensPerStream = Number(args[1] ?? 500);
const rounds = Number(args[2] ?? 3);
const API_KEY = "sk-bench-0123456789abcdefghijklmnop";

/** About 700 prompt tokens of text, as the seed methodology's requests. */
const BODY = JSON.stringify({
  model: "bench",
  messages: [
    { role: "system", content: "You are a helpful assistant. ".repeat(20) },
    { role: "user", content: "Tell me about the history of the printing press in Europe. ".repeat(45) },
  ],
  max_tokens: 550,
  temperature: 0.7,
  top_p: 0.95,
  stop: ["\n\nUser:"],
  stream: true,
  stream_options: { include_usage: true },
});
const principal = create(PrincipalSchema, { keyId: "bench", accountId: "bench" });

function micro(): void {
  const ctx = { requestId: "0123456789abcdef0123456789abcdef", principal };
  const perRequest = (i: number) => {
    const input = chatGenerationInput(parseChatRequest(JSON.parse(BODY)));
    return toRouterRequest(input, { ...ctx, requestId: String(i) });
  };
  const perToken = (i: number) =>
    frameEvent({
      id: "chatcmpl-0123456789abcdef0123456789abcdef",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: "bench",
      system_fingerprint: "mesh-local",
      choices: [{ index: 0, delta: { content: i % 2 ? " the" : " press" }, logprobs: null, finish_reason: null }],
    });
  for (const [label, fn, n] of [
    ["request: JSON.parse + validate + router request", perRequest, 20_000],
    ["token: chunk + JSON + SSE frame", perToken, 500_000],
  ] as const) {
    for (let i = 0; i < n / 10; i++) fn(i);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    const us = Number(process.hrtime.bigint() - t0) / 1_000 / n;
    console.log(`${label.padEnd(50)} ${us.toFixed(2)} µs`);
  }
  console.log(`  (request body ${BODY.length} bytes)`);
}

/** A router that streams `max_tokens` one-token deltas with no delay at all. */
const fakeRouter = {
  async *generate(req: GenerateRequest) {
    const n = req.sampling?.maxTokens || 16;
    yield create(GenerateResponseSchema, { event: { case: "started", value: { promptTokens: 700, backend: "zero", replica: "-" } } });
    for (let i = 0; i < n; i++) yield create(GenerateResponseSchema, { event: { case: "delta", value: { text: " tok", tokenCount: 1 } } });
    yield create(GenerateResponseSchema, {
      event: { case: "finished", value: { finishReason: FinishReason.LENGTH, promptTokens: 700, completionTokens: n, engineMs: 0 } },
    });
  },
  listModels() {
    return { models: [] };
  },
};

/** The edge alone in this process; the fake router and the clients run in a child. */
async function throughput(): Promise<void> {
  const log = createLogger("bench");
  log.level = "warn";
  const child = fork(fileURLToPath(import.meta.url), ["client", "-", String(streams), String(tokensPerStream), String(rounds)]);
  const routerPort = await new Promise<number>((resolve) => child.once("message", (m) => resolve((m as { routerPort: number }).routerPort)));
  const router = grpcClient(RouterServiceDesc, `127.0.0.1:${routerPort}`);
  const usage = { record() {}, flush: async () => {} } as unknown as UsageRecorder;
  const principals = { authenticate: async () => principal } as unknown as PrincipalCache;
  const generations = new Generations(router, usage, 60_000);
  const edge = new EdgeHttpApi({
    router,
    principals,
    chat: new ChatCompletions(generations),
    completions: new Completions(generations),
    healthTargets: {},
    log,
  });
  const server = await listenDualProtocol("127.0.0.1", 0, edge.listener, () => undefined);
  child.send({ edgePort: server.port });
  await new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await server.close(1_000);
}

/** The child: a zero-delay router, then `rounds` waves of `streams` concurrent SSE streams. */
async function clientMain(): Promise<void> {
  const routerServer = await startRpcServer({ port: 0, serviceNames: [RouterServiceDesc.typeName], routes: (r) => r.service(RouterServiceDesc, fakeRouter) });
  const port = await new Promise<number>((resolve) => {
    process.once("message", (m) => resolve((m as { edgePort: number }).edgePort));
    process.send!({ routerPort: routerServer.port });
  });
  const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }], max_tokens: tokensPerStream, stream: true });
  const one = async (): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body,
    });
    const text = await res.text();
    return text.split("\n\n").length - 4; // minus role, finish, [DONE], trailing ""
  };
  await Promise.all(Array.from({ length: streams }, one)); // warm-up
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const tokens = (await Promise.all(Array.from({ length: streams }, one))).reduce((a, b) => a + b, 0);
    const s = (performance.now() - t0) / 1_000;
    console.log(`${streams} streams × ${tokensPerStream} tokens: ${tokens} tokens in ${s.toFixed(2)} s = ${Math.round(tokens / s)} tokens/s through the edge`);
  }
  await routerServer.close(1_000);
  process.disconnect();
}

if (isClient) {
  await clientMain();
} else {
  micro();
  await throughput();
}
