import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PrincipalSchema } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { ExperimentAdminService, RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import { grpcClient } from "../../lib/rpc/index.js";
import FindMyWay from "find-my-way";
import type { HTTPMethod } from "find-my-way";
import { readJson } from "../../services/edge/src/http-api.js";
import { ExperimentsApi, EXPERIMENT_ROUTES, forcedBackend } from "../../services/edge/src/experiments/experiments-api.js";
import { HttpError, sendError, toHttpError } from "../../services/edge/src/openai/errors.js";
import { build } from "../../services/router/src/server.js";
import { experimentsCommand } from "../../cli/experiments-command.js";
import { catalogOf, FakeShard, silentLog } from "../../tools/fake-shard/fake-shard.js";

const ADMIN = "good-admin-token";
let shards: FakeShard[];
let router: Awaited<ReturnType<typeof build>>;
let baseUrl: string;
let server: ReturnType<typeof createServer>;
let dir: string;
const principal = create(PrincipalSchema, { keyId: "key-1", admin: false });

beforeAll(async () => {
  shards = await Promise.all([FakeShard.start(), FakeShard.start()]);
  router = await build(
    { port: 0, host: "127.0.0.1", catalog: catalogOf({ a: [shards[0].address], b: [shards[1].address] }), healthCheckIntervalMs: 0 },
    silentLog,
  );
  const api = new ExperimentsApi({
    experiments: grpcClient(ExperimentAdminService, `127.0.0.1:${router.port}`),
    requireAdmin: async (req) => {
      if (req.headers.authorization !== `Bearer ${ADMIN}`)
        throw new HttpError(401, "admin token required", "invalid_request_error", null, "invalid_admin_token");
    },
    readJson,
  });
  // The edge's routing for these paths, without auth and the rest of the edge.
  const routes = FindMyWay();
  for (const [method, route, name] of EXPERIMENT_ROUTES) routes.on(method, route, () => undefined, { name });
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://edge");
    const found = routes.find(req.method as HTTPMethod, url.pathname);
    const rc = { params: found?.params ?? {}, query: url.searchParams };
    const run = found ? api.admin(req, res, (found.store as { name: string }).name, rc) : api.feedback(req, res, principal);
    run.catch((err: unknown) => sendError(res, toHttpError(err, "test")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(path.join(tmpdir(), "router-admin-"));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await router.close(0);
  await Promise.all([...shards.map((s) => s.close())]);
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<string> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  try {
    await experimentsCommand([...args, "--url", baseUrl]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe("experiments admin REST and CLI", () => {
  it("refuses the admin API without the admin token", async () => {
    const res = await fetch(`${baseUrl}/admin/v1/experiments`, { headers: { authorization: "Bearer sk-not-admin" } });
    expect(res.status).toBe(401);
  });

  it("sets, lists, reports and stops an experiment through `llm-mesh experiments`, and takes feedback", async () => {
    process.env.MESH_ADMIN_TOKEN = ADMIN;
    const file = path.join(dir, "exp.yaml");
    writeFileSync(file, "experiments:\n  - name: ab\n    model: m\n    arms:\n      - { backend: a, weight: 50 }\n      - { backend: b, weight: 50 }\n");
    expect(await cli("set", file)).toMatch(/ab\s+m\s+running\s+a:50 b:50/);

    const client = grpcClient(RouterServiceDesc, `127.0.0.1:${router.port}`);
    for (let i = 0; i < 10; i++) {
      for await (const _ of client.generate({ requestId: `q${i}`, model: "m", prompt: "x", unitId: `u${i}`, keyId: "key-1", sampling: { maxTokens: 2 } }));
    }
    const feedback = await fetch(`${baseUrl}/v1/feedback`, {
      method: "POST",
      body: JSON.stringify({ request_id: "chatcmpl-q0", metric: "thumbs_up", value: true }),
    });
    expect(feedback.status).toBe(200);
    expect(await feedback.json()).toMatchObject({ request_id: "q0", experiment: "ab" });
    const unknown = await fetch(`${baseUrl}/v1/feedback`, { method: "POST", body: JSON.stringify({ request_id: "nope", metric: "thumbs_up", value: true }) });
    expect(unknown.status).toBe(404);
    const bad = await fetch(`${baseUrl}/v1/feedback`, { method: "POST", body: JSON.stringify({ request_id: "q1", metric: "thumbs_up", value: "yes" }) });
    expect(bad.status).toBe(400);

    expect(await cli("list")).toContain("10");
    const svg = path.join(dir, "ab.svg");
    const text = await cli("report", "ab", "--svg", svg);
    expect(text).toContain("Verdict:");
    expect(text).toContain("thumbs_up");
    expect(readFileSync(svg, "utf8")).toContain("<svg");
    const json = JSON.parse(await cli("report", "ab", "--json")) as { totalRequests: number; srm: unknown };
    expect(json.totalRequests).toBe(10);
    expect(await cli("stop", "ab")).toMatch(/ab\s+m\s+stopped/);

    const invalid = await fetch(`${baseUrl}/admin/v1/experiments`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ experiments: [{ name: "x", model: "m", arms: [{ backend: "zzz", weight: 1 }] }] }),
    });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { message: string } }).error.message).toContain('no backend "zzz"');
    const missing = await fetch(`${baseUrl}/admin/v1/experiments/missing/report`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(missing.status).toBe(404);
  });

  it("lets only admin keys force an arm", () => {
    const req = { headers: { "x-mesh-force-backend": "b" } } as never;
    expect(forcedBackend(req, create(PrincipalSchema, { keyId: "k", admin: true }))).toBe("b");
    expect(() => forcedBackend(req, principal)).toThrow(/Only admin keys/);
    expect(forcedBackend({ headers: {} } as never, principal)).toBeUndefined();
  });
});
