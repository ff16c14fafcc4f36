/**
 * Where the mesh's time goes: p50 latency of each hop on its own, every
 * service its own process (as `llm-mesh up` runs them), the zero-delay fake
 * engine behind an openai-upstream backend.
 *
 *   node dist/tools/bench/hop-latency.js [calls=200] [tokens=16]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { RouterService } from "../../src/gen/mesh/router/v1/router_pb.js";
import { ShardService } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { TokenizerService } from "../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import { freePort, launch } from "../../cli/up/launcher.js";
import { catalogSchema } from "../../lib/catalog/index.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { startFakeOpenAI } from "../fake-openai/index.js";
import { percentile } from "./stats.js";
import { BENCH_API_KEY } from "./targets.js";

const CALLS = Number(process.argv[2] ?? 200);
const TOKENS = Number(process.argv[3] ?? 16);

async function p50(name: string, call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < CALLS; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  process.stdout.write(`| ${name} | ${percentile(times, 50).toFixed(2)} |\n`);
}

const dir = mkdtempSync(path.join(tmpdir(), "mesh-hops-"));
const gguf = path.join(dir, "tiny.gguf");
await writeTinyModel(gguf);
const fake = await startFakeOpenAI({ tokens: TOKENS });
process.env.MESH_BOOTSTRAP_API_KEY = BENCH_API_KEY;
process.env.LOG_LEVEL = "warn";
const catalog = catalogSchema.parse({
  models: [{ name: "m", tokenizer: gguf, backends: [{ name: "up", engine: "openai-upstream", url: fake.url, api_key: "x", max_concurrency: 1024 }] }],
});
const mesh = await launch({ port: await freePort(), host: "127.0.0.1", dataDir: dir, catalog, out: () => {} });
try {
  const address = (prefix: string): string => {
    const proc = [...mesh.processes.values()].find((p) => p.spec.name.startsWith(prefix))!;
    return `127.0.0.1:${proc.spec.env.PORT}`;
  };
  const messages = [{ role: "user", content: "hello there" }];
  const tokenizer = grpcClient(TokenizerService, address("tokenizer"), { serviceToken: mesh.serviceToken });
  const shard = grpcClient(ShardService, address("shard"), { serviceToken: mesh.serviceToken });
  const router = grpcClient(RouterService, address("router"), { serviceToken: mesh.serviceToken });
  const { tokenIds } = await tokenizer.renderChat({ model: "m", messages, addGenerationPrompt: true });
  const drain = async (stream: AsyncIterable<unknown>): Promise<void> => {
    for await (const _ of stream);
  };
  process.stdout.write(`${CALLS} calls after ${CALLS} warm-up, ${TOKENS} tokens per answer\n\n| call | p50 ms |\n|---|---|\n`);
  await p50("trivial unary gRPC call to another process (grpc.health.v1 Check)", () => grpcClient(Health, address("router")).check({ service: "" }));
  await p50("tokenizer RenderChat", () => tokenizer.renderChat({ model: "m", messages, addGenerationPrompt: true }));
  await p50("fake engine called directly (fetch, stream)", async () => {
    const res = await fetch(`${fake.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages, stream: true }),
    });
    await res.text();
  });
  await p50("model-shard Generate (openai-upstream → fake)", () =>
    drain(shard.generate({ model: "m", promptTokenIds: tokenIds, messages, sampling: { maxTokens: TOKENS, temperature: 0 } })),
  );
  await p50("router Generate (tokenizer + shard)", () =>
    drain(router.generate({ model: "m", messages, sampling: { maxTokens: TOKENS, temperature: 0 }, unitId: "u" })),
  );
  await p50("edge, OpenAI REST non-stream (auth cache + router)", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BENCH_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages, max_tokens: TOKENS }),
    });
    await res.text();
  });
} finally {
  await mesh.stop();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
}
