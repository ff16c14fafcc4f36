/**
 * Benchmark of issue 12's surface. Prints numbers; asserts nothing.
 * (1) Tool-call reading per request in µs: the forced (grammar JSON) and
 *     hermes readers over a realistic call, fed 4 characters at a time as
 *     tokens arrive, plus building and checking the forced-call schema.
 * (2) Grammar cost per request on the tiny model through a real mesh: ms per
 *     completion token of a forced tool call (decoded under the call grammar)
 *     against the same number of unconstrained tokens.
 * (3) Embeddings/s through the mesh (openai SDK, batches) against
 *     node-llama-cpp's embedding context directly, same model, same threads.
 * (4) Streamed tokens/s through the mesh with logprobs off, on (sampled token
 *     only) and on with top_logprobs 5, at temperature 0 and 1, in
 *     alternating rounds. `BENCH_ONLY=grammar|embeddings|logprobs` runs one part.
 *
 *   npx tsc -p tsconfig.json && node dist/tools/bench/openai-surface-bench.js [requests] [batch]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { getLlama } from "node-llama-cpp";
import OpenAI from "openai";
import { catalogSchema } from "../../lib/catalog/index.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { forcedCallSchema, ToolCallStream } from "../../lib/tool-calls/index.js";
import { build as buildAuth } from "../../services/auth/src/server.js";
import { build as buildEdge } from "../../services/edge/src/server.js";
import { toolSettingsOf } from "../../services/edge/src/openai/tools.js";
import { build as buildRouter } from "../../services/router/src/server.js";
import { build as buildShard } from "../../services/model-shard/src/server.js";
import { build as buildTokenizer } from "../../services/tokenizer/src/server.js";

const requests = Number(process.argv[2] ?? 40);
const batch = Number(process.argv[3] ?? 16);
const API_KEY = "sk-bench-0123456789abcdefghijklmnop";
const PARSE_ROUNDS = 20_000;

const parameters = {
  type: "object",
  properties: { city: { type: "string", maxLength: 24 }, unit: { enum: ["celsius", "fahrenheit"] }, days: { type: "integer" } },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};
const chatTools = [{ type: "function" as const, function: { name: "get_weather", description: "The weather", parameters } }];

function microseconds(rounds: number, fn: () => void): number {
  for (let i = 0; i < Math.min(1000, rounds); i++) fn();
  const start = performance.now();
  for (let i = 0; i < rounds; i++) fn();
  return ((performance.now() - start) * 1000) / rounds;
}

function feed(stream: ToolCallStream, text: string): void {
  for (let i = 0; i < text.length; i += 4) stream.push(text.slice(i, i + 4));
  stream.finish();
}

function parsing(): void {
  const args = '{"city": "San Francisco, CA", "unit": "fahrenheit", "days": 5}';
  const forced = `{"name": "get_weather", "arguments": ${args}}`;
  const hermes = `Let me look that up.\n<tool_call>\n{"name": "get_weather", "arguments": ${args}}\n</tool_call>`;
  let n = 0;
  const id = () => `call_${n++}`;
  console.log("## tool-call reading, per request (µs)");
  console.log(
    `forced (grammar JSON, ${forced.length} chars in 4-char deltas): ${microseconds(PARSE_ROUNDS, () => feed(new ToolCallStream({ kind: "forced" }, id), forced)).toFixed(1)}`,
  );
  console.log(
    `auto hermes (${hermes.length} chars in 4-char deltas): ${microseconds(PARSE_ROUNDS, () => feed(new ToolCallStream({ kind: "auto", parser: "hermes" }, id), hermes)).toFixed(1)}`,
  );
  console.log(
    `tool settings + strict check + forced schema: ${microseconds(PARSE_ROUNDS, () => forcedCallSchema(toolSettingsOf(chatTools, "required", false) as never)).toFixed(1)}`,
  );
}

async function startMesh(dir: string, modelPath: string) {
  const log = createLogger("bench");
  log.level = "error";
  const backend = catalogSchema.parse({
    models: [{ name: "x", backends: [{ name: "local", engine: "llama.cpp", model: modelPath, sequences: 1, threads: 1, gpu: false }] }],
  }).models[0].backends[0];
  const shard = await buildShard({ port: 0, host: "127.0.0.1", model: "tiny-llama", backend }, log);
  const catalog = catalogSchema.parse({ models: [{ name: "tiny-llama", backends: [{ ...backend, addresses: [`127.0.0.1:${shard.port}`] }] }] });
  const tokenizer = await buildTokenizer({ port: 0, host: "127.0.0.1", catalog }, log);
  const auth = await buildAuth({ port: 0, host: "127.0.0.1", dataDir: dir, bootstrapApiKey: API_KEY }, log);
  const router = await buildRouter({ port: 0, host: "127.0.0.1", catalog }, log);
  const edge = await buildEdge(
    {
      port: 0,
      host: "127.0.0.1",
      authAddress: `127.0.0.1:${auth.port}`,
      routerAddress: `127.0.0.1:${router.port}`,
      healthTargets: {},
      requestTimeoutMs: 60_000,
    },
    log,
  );
  return {
    url: `http://127.0.0.1:${edge.port}/v1`,
    stop: async () => {
      for (const s of [edge, router, tokenizer, auth, shard]) await s.close(500);
    },
  };
}

async function grammarCost(client: OpenAI): Promise<void> {
  console.log("\n## grammar cost per request (tiny model, 1 sequence, 1 thread)");
  let forcedMs = 0;
  let forcedTokens = 0;
  let plainMs = 0;
  let plainTokens = 0;
  for (let i = 0; i < requests; i++) {
    let start = performance.now();
    const forced = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: `weather ${i}` }],
      tools: chatTools,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      max_tokens: 300,
      seed: i,
    });
    forcedMs += performance.now() - start;
    const tokens = forced.usage!.completion_tokens;
    forcedTokens += tokens;
    start = performance.now();
    const plain = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: `weather ${i}` }],
      max_tokens: tokens,
      ignore_eos: true,
      seed: i,
    } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    plainMs += performance.now() - start;
    plainTokens += plain.usage!.completion_tokens;
  }
  const forcedPerToken = forcedMs / forcedTokens;
  const plainPerToken = plainMs / plainTokens;
  console.log(
    `forced tool call: ${(forcedMs / requests).toFixed(1)} ms/request, ${(forcedTokens / requests).toFixed(1)} tokens/request, ${forcedPerToken.toFixed(3)} ms/token`,
  );
  console.log(`unconstrained, same tokens: ${(plainMs / requests).toFixed(1)} ms/request, ${plainPerToken.toFixed(3)} ms/token`);
  console.log(`grammar cost: ${(forcedPerToken / plainPerToken).toFixed(2)}× per token, +${((forcedMs - plainMs) / requests).toFixed(1)} ms/request`);
}

async function embeddings(client: OpenAI, modelPath: string): Promise<void> {
  const texts = Array.from({ length: batch }, (_, i) => `embedding input number ${i}: the quick brown fox jumps over the lazy dog`);
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1 });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createEmbeddingContext({ threads: 1 });
  const rounds = Math.max(1, Math.floor(requests / 2));
  await client.embeddings.create({ model: "tiny-llama", input: texts });
  for (const t of texts) await context.getEmbeddingFor(t);
  // Alternating rounds, so a busy moment of this shared machine weighs on both alike.
  let directMs = 0;
  let meshMs = 0;
  for (let r = 0; r < rounds; r++) {
    let start = performance.now();
    for (const t of texts) await context.getEmbeddingFor(t);
    directMs += performance.now() - start;
    start = performance.now();
    await client.embeddings.create({ model: "tiny-llama", input: texts });
    meshMs += performance.now() - start;
  }
  const directPerS = (rounds * batch * 1000) / directMs;
  const meshPerS = (rounds * batch * 1000) / meshMs;
  console.log(`\n## embeddings/s (${rounds} rounds of batches of ${batch}, base64 as the SDK asks)`);
  console.log(`node-llama-cpp directly: ${directPerS.toFixed(0)}/s`);
  console.log(`through the mesh: ${meshPerS.toFixed(0)}/s (${(meshPerS / directPerS).toFixed(2)}× direct)`);
  await context.dispose();
  await model.dispose();
}

/** Completion tokens/s of one streamed chat request, as the client receives them. */
async function streamedTokens(
  client: OpenAI,
  seed: number,
  temperature: number,
  logprobs: { top: number } | undefined,
): Promise<{ tokens: number; ms: number }> {
  const start = performance.now();
  const stream = await client.chat.completions.create({
    model: "tiny-llama",
    messages: [{ role: "user", content: `logprobs ${seed}` }],
    max_tokens: LOGPROB_TOKENS,
    ignore_eos: true,
    seed,
    temperature,
    stream: true,
    stream_options: { include_usage: true },
    ...(logprobs ? { logprobs: true, top_logprobs: logprobs.top } : {}),
  } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
  let tokens = 0;
  let entries = 0;
  for await (const chunk of stream) {
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
    entries += chunk.choices[0]?.logprobs?.content?.length ?? 0;
  }
  if (logprobs && entries === 0) throw new Error("no logprobs came back");
  return { tokens, ms: performance.now() - start };
}

const LOGPROB_TOKENS = 128;

async function logprobsCost(client: OpenAI): Promise<void> {
  const variants = [
    { name: "logprobs off", logprobs: undefined },
    { name: "logprobs: true (sampled token only)", logprobs: { top: 0 } },
    { name: "logprobs: true, top_logprobs: 5", logprobs: { top: 5 } },
  ];
  const rounds = Math.max(1, Math.floor(requests / 2));
  console.log(`\n## logprobs cost (streamed, ${LOGPROB_TOKENS} tokens/request, ${rounds} alternating rounds, tiny model, 1 sequence, 1 thread)`);
  for (const temperature of [0, 1]) {
    const totals = variants.map(() => ({ tokens: 0, ms: 0 }));
    await streamedTokens(client, 0, temperature, { top: 5 });
    for (let r = 0; r < rounds; r++) {
      for (const [i, v] of variants.entries()) {
        const one = await streamedTokens(client, r, temperature, v.logprobs);
        totals[i].tokens += one.tokens;
        totals[i].ms += one.ms;
      }
    }
    const off = (totals[0].tokens * 1000) / totals[0].ms;
    for (const [i, v] of variants.entries()) {
      const perS = (totals[i].tokens * 1000) / totals[i].ms;
      console.log(`temperature ${temperature}, ${v.name}: ${perS.toFixed(0)} tokens/s (${(perS / off).toFixed(2)}× off)`);
    }
  }
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (!only) parsing();
  const dir = mkdtempSync(path.join(tmpdir(), "mesh-bench-"));
  const modelPath = path.join(dir, "tiny.gguf");
  await writeTinyModel(modelPath);
  const mesh = await startMesh(dir, modelPath);
  const client = new OpenAI({ baseURL: mesh.url, apiKey: API_KEY, maxRetries: 0 });
  try {
    if (!only || only === "grammar") await grammarCost(client);
    if (!only || only === "embeddings") await embeddings(client, modelPath);
    if (!only || only === "logprobs") await logprobsCost(client);
  } finally {
    await mesh.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
