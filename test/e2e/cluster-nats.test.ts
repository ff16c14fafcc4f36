import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExperimentAdminService, RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateResponse } from "../../src/gen/mesh/router/v1/router_pb.js";
import { catalogSchema } from "../../lib/catalog/index.js";
import { NatsServerProcess } from "../../lib/nats/nats-server-process.js";
import { grpcClient, hasChannel } from "../../lib/rpc/index.js";
import { freePort } from "../../lib/runtime/free-port.js";
import { build } from "../../services/router/src/server.js";
import type { RunningRouter } from "../../services/router/src/server.js";
import { FakeShard, silentLog } from "../../tools/fake-shard/fake-shard.js";

/** Polls `check` every 50 ms until it holds or `ms` pass; returns how long it took (throws after). */
async function within(ms: number, check: () => boolean): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

const simBackend = { name: "pool", engine: "sim", decode_ms_per_token: 1, max_batch: 4, max_queue: 8 };

describe("cluster mode on NATS: shards announce themselves, experiments are shared", () => {
  let dir: string;
  let nats: NatsServerProcess;
  let a: FakeShard;
  let b: FakeShard;
  const routers: RunningRouter[] = [];
  const children: ChildProcess[] = [];

  async function startRouter(): Promise<RunningRouter> {
    const catalog = catalogSchema.parse({
      models: [
        {
          name: "m",
          backends: [
            { name: "a", engine: "sim", addresses: [a.address] },
            { name: "b", engine: "sim", addresses: [b.address] },
          ],
        },
        { name: "pooled", backends: [simBackend] },
      ],
    });
    const router = await build({ port: 0, host: "127.0.0.1", catalog, healthCheckIntervalMs: 0, natsUrl: nats.url, natsPrefix: "cluster" }, silentLog);
    routers.push(router);
    return router;
  }

  /** A real shard process from the build (`llm-mesh serve shard`, sim engine), announcing itself on NATS. */
  async function startShard(): Promise<{ child: ChildProcess; address: string }> {
    const port = await freePort();
    const backendFile = path.join(dir, "backend.json");
    await writeFile(backendFile, JSON.stringify(simBackend));
    const args = [
      "serve",
      "shard",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--model",
      "pooled",
      "--backend",
      backendFile,
      "--nats",
      nats.url,
      "--nats-prefix",
      "cluster",
    ];
    const child = spawn(process.execPath, ["bin/llm-mesh.js", ...args], { env: { ...process.env, LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "inherit"] });
    children.push(child);
    return { child, address: `127.0.0.1:${port}` };
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-cluster-"));
    nats = await NatsServerProcess.start({ dir: path.join(dir, "nats") });
    [a, b] = await Promise.all([FakeShard.start(), FakeShard.start()]);
    await startRouter();
    await startRouter();
  });
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(routers.map((r) => r.close(0)));
    await Promise.all([a?.close(), b?.close()]);
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pooled = (r: RunningRouter) => r.router.replicaSet("pooled", "pool")!.replicas.map((x) => x.address);

  it("adds a shard that announces itself to every router, serves through it, and drops it within 5 s of a kill without notice", async () => {
    const shard = await startShard();
    await within(20_000, () => routers.every((r) => pooled(r).includes(shard.address)));
    const client = grpcClient(RouterServiceDesc, `127.0.0.1:${routers[1].port}`);
    const events: GenerateResponse[] = [];
    for await (const e of client.generate(
      { requestId: "via-nats", model: "pooled", prompt: "hi", unitId: "u", keyId: "k", sampling: { maxTokens: 3 } },
      { timeoutMs: 10_000 },
    ))
      events.push(e);
    expect(events.at(-1)!.event.case).toBe("finished");
    expect(hasChannel(shard.address)).toBe(true);

    shard.child.kill("SIGKILL");
    const tookMs = await within(5_000, () => routers.every((r) => !pooled(r).includes(shard.address)));
    expect(tookMs).toBeLessThan(5_000);
    expect(hasChannel(shard.address)).toBe(false);
    // The catalog's own addresses are untouched by NATS discovery.
    expect(routers[0].router.replicaSet("m", "a")!.replicas.map((x) => x.address)).toEqual([a.address]);
  }, 40_000);

  it("shares an experiment set through one router: both split traffic the same way and print the same merged report", async () => {
    const [one, two] = routers as [RunningRouter, RunningRouter];
    const admin1 = grpcClient(ExperimentAdminService, `127.0.0.1:${one.port}`);
    const admin2 = grpcClient(ExperimentAdminService, `127.0.0.1:${two.port}`);
    await admin1.setExperiments({
      experiments: [
        {
          name: "a-vs-b",
          model: "m",
          unit: "user",
          arms: [
            { backend: "a", weight: 50 },
            { backend: "b", weight: 50 },
          ],
        },
      ],
    });
    await within(5_000, () => two.router.experiments.running("m")?.config.name === "a-vs-b");
    expect((await admin2.listExperiments({})).experiments.map((e) => e.experiment!.name)).toEqual(["a-vs-b"]);

    const arms = async (router: RunningRouter, prefix: string): Promise<string[]> => {
      const client = grpcClient(RouterServiceDesc, `127.0.0.1:${router.port}`);
      return Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          let arm = "";
          for await (const e of client.generate(
            { requestId: `${prefix}-${i}`, model: "m", prompt: "hi", unitId: `u${i}`, keyId: "k", sampling: { maxTokens: 2 } },
            { timeoutMs: 10_000 },
          )) {
            if (e.event.case === "started") arm = e.event.value.experiment;
          }
          return arm;
        }),
      );
    };
    const first = await arms(one, "one");
    const second = await arms(two, "two");
    expect(new Set(first)).toEqual(new Set(["a-vs-b=a", "a-vs-b=b"]));
    expect(second).toEqual(first); // the same unit gets the same arm on either router

    // Each router publishes its statistics within a second; then both reports count all 60 requests.
    const report = async (admin: typeof admin1) =>
      JSON.parse((await admin.getExperimentReport({ name: "a-vs-b" })).reportJson) as { arms: { arm: string; requests: number }[] };
    const total = (r: { arms: { requests: number }[] }) => r.arms.reduce((n, x) => n + x.requests, 0);
    // Wait for both routers: each merges the other's statistics only once they have been published.
    let r1 = await report(admin1);
    let r2 = await report(admin2);
    const deadline = Date.now() + 5_000;
    while ((total(r1) < 60 || total(r2) < 60) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      r1 = await report(admin1);
      r2 = await report(admin2);
    }
    expect(total(r1)).toBe(60);
    const text1 = (await admin1.getExperimentReport({ name: "a-vs-b" })).text;
    const text2 = (await admin2.getExperimentReport({ name: "a-vs-b" })).text;
    const withoutTime = (t: string) => t.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>");
    expect(withoutTime(text2)).toBe(withoutTime(text1));
    expect(r2.arms.map((x) => [x.arm, x.requests])).toEqual(r1.arms.map((x) => [x.arm, x.requests]));
    for (const admin of [admin1, admin2]) expect((await admin.listExperiments({})).experiments[0].requests).toBe(60n);
  }, 40_000);

  it("rides out a NATS outage: pools stay as they were, an experiment change fails whole, and both come back", async () => {
    const shard = await startShard();
    await within(20_000, () => routers.every((r) => pooled(r).includes(shard.address)));
    const admin1 = grpcClient(ExperimentAdminService, `127.0.0.1:${routers[0].port}`);
    const before = (await admin1.listExperiments({})).experiments.map((e) => [e.experiment!.name, e.state]);

    await nats.stop();
    await new Promise((r) => setTimeout(r, 4_500)); // past the shards' expiry
    for (const r of routers) expect(pooled(r)).toContain(shard.address);
    const change = admin1.setExperiments({
      experiments: [
        {
          name: "during-outage",
          model: "m",
          unit: "user",
          arms: [
            { backend: "a", weight: 1 },
            { backend: "b", weight: 1 },
          ],
        },
      ],
      replace: true,
    });
    await expect(change).rejects.toMatchObject({ code: Code.Unavailable });
    expect((await admin1.listExperiments({})).experiments.map((e) => [e.experiment!.name, e.state])).toEqual(before);

    await nats.start();
    const stopped = { experiments: [], replace: true };
    let stored = false;
    const deadline = Date.now() + 20_000;
    while (!stored && Date.now() < deadline) {
      stored = await admin1.setExperiments(stopped).then(
        () => true,
        () => false,
      );
      if (!stored) await new Promise((r) => setTimeout(r, 500));
    }
    expect(stored).toBe(true);
    await within(5_000, () => routers[1].router.experiments.running("m") === undefined);
    await new Promise((r) => setTimeout(r, 4_000));
    for (const r of routers) expect(pooled(r)).toContain(shard.address);
    shard.child.kill("SIGKILL");
    await within(5_000, () => routers.every((r) => !pooled(r).includes(shard.address)));
  }, 90_000);
});
