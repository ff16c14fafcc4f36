/**
 * Auth micro-benchmark: (1) the cost of authenticating a request at the
 * edge with a warm principal cache, (2) how long a revocation takes to
 * reach two edges' caches over the real key watch (separate HTTP/2
 * connections to one auth server). Prints numbers; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/tools/bench/auth-bench.js [iterations] [revocations]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService, KeyAdminService } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { createLogger } from "../../lib/runtime/index.js";
import { generateAdminToken } from "../../services/auth/src/admin-token.js";
import { build } from "../../services/auth/src/server.js";
import { PrincipalCache } from "../../services/edge/src/principal-cache.js";
import { summarize } from "./stats.js";

const iterations = Number(process.argv[2] ?? 200_000);
const revocations = Number(process.argv[3] ?? 50);

function summary(label: string, samples: number[], unit: "µs" | "ms", scale: number): void {
  const s = summarize(samples);
  const f = (v: number) => (v * scale).toFixed(unit === "µs" ? 2 : 3);
  console.log(`${label}: n=${s.n} p50=${f(s.p50)} ${unit} p90=${f(s.p90)} ${unit} p99=${f(s.p99)} ${unit} max=${f(s.max)} ${unit}`);
}

const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-auth-bench-"));
const log = createLogger("auth-bench");
log.level = "silent";
const adminToken = generateAdminToken();
const server = await build({ port: 0, host: "127.0.0.1", dataDir, bootstrapApiKey: undefined, adminToken }, log);
const connection = () => createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` });
const admin = createClient(KeyAdminService, connection());
const asAdmin = { headers: { authorization: `Bearer ${adminToken}` } };
const stop = new AbortController();
const edges = [new PrincipalCache(createClient(AuthService, connection()), log), new PrincipalCache(createClient(AuthService, connection()), log)];
for (const edge of edges) void edge.follow(stop.signal);
while (!edges.every((e) => e.watching)) await new Promise((r) => setTimeout(r, 10));

try {
  // (1) Warm-cache authentication: what the edge adds per request once the key is cached.
  const { apiKey } = await admin.createKey({ name: "bench" }, asAdmin);
  const edge = edges[0];
  await edge.authenticate(apiKey);
  for (let i = 0; i < 10_000; i++) await edge.authenticate(apiKey);
  const samples = new Array<number>(iterations);
  const startedAt = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await edge.authenticate(apiKey);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  const totalNs = Number(process.hrtime.bigint() - startedAt);
  summary("warm-cache authenticate (PrincipalCache.authenticate)", samples, "µs", 1e-3);
  console.log(`  throughput ${(iterations / (totalNs / 1e9)).toFixed(0)} authentications/s on one core`);

  // (2) Revocation propagation: revoke call start → both edges evicted the key.
  const propagation: number[] = [];
  const push: number[] = [];
  let publishedAt = 0;
  const publish = server.auth.publish.bind(server.auth);
  server.auth.publish = (change) => {
    publishedAt = performance.now();
    publish(change);
  };
  for (let i = 0; i < revocations; i++) {
    const key = await admin.createKey({ name: `revoke-${i}` }, asAdmin);
    for (const e of edges) await e.authenticate(key.apiKey);
    const id = key.keyInfo!.id;
    const seen = edges.map((e) => new Promise<void>((resolve) => (e.onEvict = (k) => k === id && resolve())));
    const t0 = performance.now();
    await admin.revokeKey({ id }, asAdmin);
    await Promise.all(seen);
    const done = performance.now();
    propagation.push(done - t0);
    push.push(done - publishedAt);
  }
  summary("revocation committed in auth → evicted at both edges (the push)", push, "ms", 1);
  summary("revoke RPC start → evicted at both edges (incl. the admin RPC)", propagation, "ms", 1);
} finally {
  stop.abort();
  await server.close(500);
  rmSync(dataDir, { recursive: true, force: true });
}
