/**
 * Router micro-benchmark: (1) the router's decision cost per request (sticky
 * experiment assignment + load-aware replica choice), (2) end-to-end latency
 * percentiles through a real router (gRPC) in front of four fake shards of
 * which one is slow, with least-loaded-of-two choice and with random choice.
 * Prints numbers; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/tools/bench/router-bench.js [decisions] [requests] [concurrency] [random-first]
 */
import { RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import { grpcClient, startRpcServer } from "../../lib/rpc/index.js";
import { ExperimentRegistry } from "../../services/router/src/experiment-registry.js";
import { ReplicaSet } from "../../services/router/src/replicas.js";
import type { ReplicaChoice } from "../../services/router/src/replicas.js";
import { RouterService } from "../../services/router/src/router-service.js";
import { catalogOf, FakeShard, fakeTokenizer, silentLog } from "../fake-shard/fake-shard.js";
import { percentile } from "./stats.js";

const decisions = Number(process.argv[2] ?? 200_000);
const requests = Number(process.argv[3] ?? 800);
const concurrency = Number(process.argv[4] ?? 16);
const TOKENS = 16;
const FAST_TOKEN_MS = 2;
const SLOW_TOKEN_MS = 20;

function decisionCost(): void {
  const catalog = catalogOf({ a: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"], b: ["127.0.0.1:5"] }, [
    {
      name: "ab",
      model: "m",
      unit: "user",
      arms: [
        { backend: "a", weight: 50 },
        { backend: "b", weight: 50 },
      ],
    },
  ]);
  const registry = new ExperimentRegistry(catalog.models, catalog.experiments);
  const set = new ReplicaSet(catalog.models[0].backends[0]);
  set.replicas.forEach((r, i) => (r.running = i));
  const run = (label: string, fn: (i: number) => unknown) => {
    for (let i = 0; i < 10_000; i++) fn(i); // warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < decisions; i++) fn(i);
    const us = Number(process.hrtime.bigint() - t0) / 1e3 / decisions;
    console.log(`  ${label.padEnd(44)} ${us.toFixed(2)} µs/request`);
  };
  console.log(`decision cost (${decisions} requests):`);
  run("replica choice (least loaded of two)", () => set.pick());
  run("experiment assignment (2 arms, sha256)", (i) => registry.assign("m", { requestId: "", unitId: `user-${i % 5000}`, keyId: "k" }));
  run(
    "assignment + feedback index + replica choice",
    (i) => (registry.assign("m", { requestId: `r${i}`, unitId: `user-${i % 5000}`, keyId: "k" }), set.pick()),
  );
}

async function tail(choice: ReplicaChoice): Promise<void> {
  const shards = await Promise.all([0, 1, 2, 3].map((i) => FakeShard.start({ tokens: TOKENS, tokenDelayMs: i === 0 ? SLOW_TOKEN_MS : FAST_TOKEN_MS })));
  const router = new RouterService(catalogOf({ a: shards.map((s) => s.address) }), fakeTokenizer(), silentLog, { replicaChoice: choice });
  const stop = new AbortController();
  router.watchLoad(stop.signal);
  const server = await startRpcServer({ port: 0, serviceNames: [RouterServiceDesc.typeName], routes: (r) => r.service(RouterServiceDesc, router) });
  const client = grpcClient(RouterServiceDesc, `127.0.0.1:${server.port}`);
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      next++;
      const t0 = performance.now();
      for await (const _ of client.generate({ requestId: `q${next}`, model: "m", prompt: "x", sampling: { maxTokens: TOKENS } }, { timeoutMs: 30_000 }));
      latencies.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const slowShare = shards[0].calls / requests;
  console.log(
    `  ${choice.padEnd(22)} p50 ${percentile(latencies, 50, true).toFixed(1)} ms  p90 ${percentile(latencies, 90, true).toFixed(1)} ms  p99 ${percentile(latencies, 99, true).toFixed(1)} ms` +
      `  ${(requests / seconds).toFixed(0)} req/s  slow replica got ${(100 * slowShare).toFixed(1)} %`,
  );
  stop.abort();
  await server.close(0);
  await Promise.all(shards.map((s) => s.close()));
}

decisionCost();
console.log(
  `\nend-to-end latency, ${requests} requests × ${TOKENS} tokens, ${concurrency} concurrent, 4 replicas, one ${SLOW_TOKEN_MS / FAST_TOKEN_MS}× slower (${SLOW_TOKEN_MS} vs ${FAST_TOKEN_MS} ms/token):`,
);
const order: ReplicaChoice[] = process.argv[5] === "random-first" ? ["random", "least-loaded-of-two"] : ["least-loaded-of-two", "random"];
for (const choice of order) await tail(choice);
