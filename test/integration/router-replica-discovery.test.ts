import { afterEach, describe, expect, it } from "vitest";
import { RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateResponse } from "../../src/gen/mesh/router/v1/router_pb.js";
import { grpcClient, startRpcServer } from "../../lib/rpc/index.js";
import type { Resolver } from "../../services/router/src/replica-discovery.js";
import { RouterService } from "../../services/router/src/router-service.js";
import { catalogOf, FakeShard, fakeTokenizer, silentLog } from "../../tools/fake-shard/fake-shard.js";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/** Two fake shards on one port, at 127.0.0.1 and 127.0.0.2, as a headless Service's pods would be. */
async function twoShards(): Promise<[FakeShard, FakeShard]> {
  const a = await FakeShard.start({ tokenDelayMs: 100 });
  cleanup.push(() => a.close());
  const b = await FakeShard.start({ tokenDelayMs: 100, host: "127.0.0.2", port: a.server.port });
  cleanup.push(() => b.close());
  return [a, b];
}

async function startRouter(port: number, answers: { ips: string[] }) {
  const resolver: Resolver = async (host) => {
    if (host !== "model-shard.test") throw new Error(`ENOTFOUND ${host}`);
    return answers.ips;
  };
  const router = new RouterService(catalogOf({ a: [`dns:///model-shard.test:${port}`] }), fakeTokenizer(), silentLog, {
    random: () => 0,
    resolver,
    resolveIntervalMs: 20,
  });
  const stop = new AbortController();
  cleanup.push(() => stop.abort());
  await router.discoverReplicas(stop.signal);
  router.watchLoad(stop.signal);
  const server = await startRpcServer({ port: 0, serviceNames: [RouterServiceDesc.typeName], routes: (r) => r.service(RouterServiceDesc, router) });
  cleanup.push(() => server.close(0));
  return { router, client: grpcClient(RouterServiceDesc, `127.0.0.1:${server.port}`) };
}

type Client = Awaited<ReturnType<typeof startRouter>>["client"];

/** One request to its end; returns the replica that served it and the event kinds. */
async function generate(client: Client, requestId: string): Promise<{ replica: string; cases: string[] }> {
  const events: GenerateResponse[] = [];
  for await (const e of client.generate({ requestId, model: "m", prompt: "hi", sampling: { maxTokens: 3 } }, { timeoutMs: 10_000 })) events.push(e);
  return { replica: (events[0].event.value as { replica: string }).replica, cases: events.map((e) => e.event.case!) };
}

describe("router replica discovery (dns:///)", () => {
  it("spreads requests over every resolved shard, and drops one that leaves the answer while its call finishes", async () => {
    const [a, b] = await twoShards();
    const answers = { ips: ["127.0.0.1", "127.0.0.2"] };
    const { router, client } = await startRouter(a.server.port, answers);
    expect(router.replicas().map((r) => r.address)).toEqual([a.address, b.address]);

    // Two at once: the second goes to the replica the first is not on.
    const both = await Promise.all([generate(client, "r1"), generate(client, "r2")]);
    expect(both.map((r) => r.replica).sort()).toEqual([a.address, b.address]);
    expect([a.calls, b.calls]).toEqual([1, 1]);

    // The shard serving a request disappears from DNS: that call finishes, new ones go to the other only.
    const running = generate(client, "r3");
    await expect.poll(() => a.running + b.running, { timeout: 5_000 }).toBe(1);
    const busy = a.running > 0 ? a : b;
    busy.tokenDelayMs = 500; // its remaining tokens outlast the re-resolution below
    answers.ips = busy === b ? ["127.0.0.1"] : ["127.0.0.2"];
    const survivor = busy === b ? a : b;
    await expect.poll(() => router.replicas().map((r) => r.address), { timeout: 5_000 }).toEqual([survivor.address]);
    expect(busy.running).toBe(1);
    const finished = await running;
    busy.tokenDelayMs = 100;
    expect(finished.cases.at(-1)).toBe("finished");
    expect(finished.replica).toBe(busy.address);
    const callsBefore = busy.calls;
    for (const id of ["r4", "r5"]) expect((await generate(client, id)).replica).toBe(survivor.address);
    expect(busy.calls).toBe(callsBefore);

    // A failed resolution keeps the last good set; B comes back when DNS answers it again.
    answers.ips = [];
    await new Promise((r) => setTimeout(r, 100));
    expect(router.replicas().map((r) => r.address)).toEqual([survivor.address]);
    answers.ips = ["127.0.0.1", "127.0.0.2"];
    await expect.poll(() => router.replicas().length, { timeout: 5_000 }).toBe(2);
    const again = await Promise.all([generate(client, "r6"), generate(client, "r7")]);
    expect(again.map((r) => r.replica).sort()).toEqual([a.address, b.address]);
  });
});
