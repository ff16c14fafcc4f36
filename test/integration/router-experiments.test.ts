import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExperimentAdminService, RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateResponse } from "../../src/gen/mesh/router/v1/router_pb.js";
import { grpcClient } from "../../lib/rpc/index.js";
import type { CatalogExperiment } from "../../lib/catalog/index.js";
import { build } from "../../services/router/src/server.js";
import { catalogOf, FakeShard, silentLog } from "../../tools/fake-shard/fake-shard.js";

let a: FakeShard;
let b: FakeShard;
let candidate: FakeShard;
let dir: string;

beforeAll(async () => {
  [a, b, candidate] = await Promise.all([FakeShard.start(), FakeShard.start(), FakeShard.start({ tokenDelayMs: 400 })]);
  dir = mkdtempSync(path.join(tmpdir(), "router-exp-"));
});
afterAll(async () => {
  await Promise.all([a.close(), b.close(), candidate.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const experiment: CatalogExperiment = {
  name: "a-vs-b",
  model: "m",
  unit: "user",
  arms: [
    { backend: "a", weight: 50 },
    { backend: "b", weight: 50 },
  ],
};

async function startRouter(experimentsFile: string, experiments: CatalogExperiment[] = [experiment]) {
  const catalog = catalogOf({ a: [a.address], b: [b.address], candidate: [candidate.address] }, experiments);
  const service = await build({ port: 0, host: "127.0.0.1", catalog, healthCheckIntervalMs: 0, experimentsFile }, silentLog);
  const address = `127.0.0.1:${service.port}`;
  return { service, client: grpcClient(RouterServiceDesc, address), admin: grpcClient(ExperimentAdminService, address) };
}

type Router = Awaited<ReturnType<typeof startRouter>>;

async function run(router: Router, unitId: string, requestId: string): Promise<GenerateResponse[]> {
  const events: GenerateResponse[] = [];
  for await (const e of router.client.generate(
    { requestId, model: "m", prompt: "hi", unitId, keyId: "key-1", sampling: { maxTokens: 3 } },
    { timeoutMs: 10_000 },
  )) {
    events.push(e);
  }
  return events;
}

const experimentOf = (events: GenerateResponse[]) => (events[0].event.case === "started" ? events[0].event.value.experiment : "");

describe("router experiments", () => {
  it("keeps every unit in its arm across two routers and a restart, with run-time weights kept", async () => {
    const file = path.join(dir, "sticky.json");
    const one = await startRouter(file);
    const two = await startRouter(path.join(dir, "other.json"));
    const units = Array.from({ length: 60 }, (_, i) => `u${i}`);
    const first = await Promise.all(units.map((u, i) => run(one, u, `one-${i}`).then(experimentOf)));
    const second = await Promise.all(units.map((u, i) => run(two, u, `two-${i}`).then(experimentOf)));
    expect(first).toEqual(second);
    expect(new Set(first)).toEqual(new Set(["a-vs-b=a", "a-vs-b=b"]));
    // Re-weight at run time, then restart the first router from the same file.
    await one.admin.setExperiments({
      experiments: [
        {
          ...experiment,
          arms: [
            { backend: "a", weight: 30 },
            { backend: "b", weight: 70 },
          ],
        },
      ],
    });
    const reweighted = await Promise.all(units.map((u, i) => run(one, u, `rw-${i}`).then(experimentOf)));
    await one.service.close(0);
    const restarted = await startRouter(file);
    const listed = await restarted.admin.listExperiments({});
    expect(listed.experiments[0].experiment!.arms.map((x) => x.weight)).toEqual([30, 70]);
    const after = await Promise.all(units.map((u, i) => run(restarted, u, `re-${i}`).then(experimentOf)));
    expect(after).toEqual(reweighted);
    // Only units moving to the arm that gained weight changed.
    first.forEach((arm, i) => {
      if (arm !== reweighted[i]) expect(reweighted[i]).toBe("a-vs-b=b");
    });
    await Promise.all([two.service.close(0), restarted.service.close(0)]);
  });

  it("measures every arm, takes feedback by request id and reports text, JSON and SVG", async () => {
    const router = await startRouter(path.join(dir, "report.json"));
    const arms = new Map<string, string>();
    for (let i = 0; i < 40; i++) arms.set(`req-${i}`, experimentOf(await run(router, `user-${i}`, `req-${i}`)).split("=")[1]);
    const [requestId, arm] = [...arms][0];
    const feedback = await router.admin.recordFeedback({ requestId, metric: "thumbs_up", value: { case: "flag", value: true }, keyId: "key-1" });
    expect(feedback.arm).toBe(arm);
    await expect(router.admin.recordFeedback({ requestId, metric: "thumbs_up", value: { case: "flag", value: true }, keyId: "key-2" })).rejects.toThrow(
      /no experiment request/,
    );
    const res = await router.admin.getExperimentReport({ name: "a-vs-b" });
    const report = JSON.parse(res.reportJson) as {
      totalRequests: number;
      arms: { arm: string; requests: number; metrics: Record<string, { count: number }>; proportions: Record<string, { count: number }> }[];
      srm: { pValue: number };
      verdict: string;
    };
    expect(report.totalRequests).toBe(40);
    for (const a of report.arms) {
      expect(a.requests).toBe([...arms.values()].filter((x) => x === a.arm).length);
      expect(Object.keys(a.metrics)).toEqual(expect.arrayContaining(["ttft_ms", "tpot_ms", "e2e_ms", "completion_tokens"]));
      expect(a.metrics.completion_tokens.count).toBe(a.requests);
    }
    expect(report.arms.find((a) => a.arm === arm)!.proportions.thumbs_up.count).toBe(1);
    expect(res.text).toContain("Verdict:");
    expect(res.svg).toContain("<svg");
    await router.service.close(0);
  });

  it("records errors by type for the arm whose backend fails", async () => {
    const router = await startRouter(path.join(dir, "errors.json"));
    b.behaviour = "unavailable";
    try {
      for (let i = 0; i < 30; i++) await run(router, `e-${i}`, `err-${i}`).catch(() => undefined);
    } finally {
      b.behaviour = "serve";
    }
    const report = JSON.parse((await router.admin.getExperimentReport({ name: "a-vs-b" })).reportJson) as {
      arms: { arm: string; requests: number; errors: { total: number; byType: Record<string, number> } }[];
    };
    const armB = report.arms.find((x) => x.arm === "b")!;
    expect(armB.requests).toBeGreaterThan(0);
    expect(armB.errors.byType).toEqual({ unavailable: armB.requests });
    expect(report.arms.find((x) => x.arm === "a")!.errors.total).toBe(0);
    await router.service.close(0);
  });

  it("mirrors shadow traffic without making the client wait, and measures it beside the arms", async () => {
    const router = await startRouter(path.join(dir, "shadow.json"), [{ ...experiment, shadow: { backend: "candidate", percent: 100 } }]);
    const before = candidate.calls;
    await Promise.all([0, 1, 2].map((i) => run(router, `s-${i}`, `shadow-${i}`)));
    // The candidate takes 3 × 400 ms per request: the clients are done while it still runs.
    expect(candidate.calls - before).toBe(3);
    expect(candidate.running).toBeGreaterThan(0);
    while (candidate.running > 0) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 50));
    const report = JSON.parse((await router.admin.getExperimentReport({ name: "a-vs-b" })).reportJson) as {
      arms: { arm: string }[];
      shadow: { arms: { arm: string; requests: number; metrics: Record<string, { mean: number }> }[] };
    };
    expect(report.arms.map((x) => x.arm)).toEqual(["a", "b"]);
    const shadowArm = report.shadow.arms.find((x) => x.arm === "candidate")!;
    expect(shadowArm.requests).toBe(3);
    expect(shadowArm.metrics.e2e_ms.mean).toBeGreaterThan(1_000);
    expect(report.shadow.arms.find((x) => x.arm === "served")!.requests).toBe(3);
    await router.service.close(0);
  });

  it("does not assign or measure a forced arm", async () => {
    const router = await startRouter(path.join(dir, "forced.json"));
    const events: GenerateResponse[] = [];
    for await (const e of router.client.generate({
      requestId: "f",
      model: "m",
      prompt: "hi",
      unitId: "u",
      forceBackend: "candidate",
      sampling: { maxTokens: 2 },
    }))
      events.push(e);
    expect(events[0].event.case === "started" && events[0].event.value.backend).toBe("candidate");
    expect(experimentOf(events)).toBe("");
    const list = await router.admin.listExperiments({});
    expect(list.experiments[0].requests).toBe(0n);
    await router.service.close(0);
  });
});
