import { afterEach, describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { RouterService as RouterServiceDesc } from "../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateResponse } from "../../src/gen/mesh/router/v1/router_pb.js";
import { Code } from "../../lib/errors.js";
import { grpcClient, startRpcServer, ServingStatus } from "../../lib/rpc/index.js";
import type { RpcServer } from "../../lib/rpc/index.js";
import { HealthChecker } from "../../services/router/src/health-checker.js";
import { RouterService } from "../../services/router/src/router-service.js";
import type { RouterOptions } from "../../services/router/src/router-service.js";
import { catalogOf, FakeShard, fakeTokenizer, silentLog } from "../../tools/fake-shard/fake-shard.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/** Starts a router in front of `shards` (one backend "a", replicas in order) on a real gRPC port. */
async function startRouter(shards: FakeShard[], options: RouterOptions = {}) {
  const router = new RouterService(catalogOf({ a: shards.map((s) => s.address) }), fakeTokenizer(), silentLog, { random: () => 0, ...options });
  const server: RpcServer = await startRpcServer({ port: 0, serviceNames: [RouterServiceDesc.typeName], routes: (r) => r.service(RouterServiceDesc, router) });
  cleanup.push(() => server.close(0));
  for (const shard of shards) cleanup.push(() => shard.close());
  return { router, client: grpcClient(RouterServiceDesc, `127.0.0.1:${server.port}`) };
}

type Client = Awaited<ReturnType<typeof startRouter>>["client"];

/** Runs one request; returns the events seen and the error it ended with, failing the test if it hangs. */
async function generate(client: Client, requestId = "r1"): Promise<{ events: GenerateResponse[]; error?: ConnectError }> {
  const events: GenerateResponse[] = [];
  const run = (async () => {
    try {
      for await (const e of client.generate({ requestId, model: "m", prompt: "hi", sampling: { maxTokens: 3 } }, { timeoutMs: 20_000 })) events.push(e);
      return { events };
    } catch (err) {
      return { events, error: ConnectError.from(err) };
    }
  })();
  const hang = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("request hung")), 15_000).unref());
  return Promise.race([run, hang]);
}

const cases = (events: GenerateResponse[]) => events.map((e) => e.event.case);

describe("router failover", () => {
  it("retries on another replica when the first fails before the first token", async () => {
    const bad = await FakeShard.start({ behaviour: "unavailable" });
    const good = await FakeShard.start();
    const { client } = await startRouter([bad, good]);
    const { events, error } = await generate(client);
    expect(error).toBeUndefined();
    expect(bad.calls).toBe(1);
    expect(good.calls).toBe(1);
    // The fake shard's three deltas may arrive together, and the router forwards those as one (merge-deltas.ts).
    const kinds = cases(events);
    expect([kinds[0], kinds.at(-1)]).toEqual(["started", "finished"]);
    const deltas = events.filter((e) => e.event.case === "delta").map((e) => e.event.value as { tokenCount: number });
    expect(kinds.slice(1, -1).every((k) => k === "delta")).toBe(true);
    expect(deltas.reduce((n, d) => n + d.tokenCount, 0)).toBe(3);
    const started = events[0].event.value as { replica: string };
    expect(started.replica).toBe(good.address);
  });

  it("never retries after a token was sent: the stream ends with the error", async () => {
    const bad = await FakeShard.start({ behaviour: "fail-after-token" });
    const good = await FakeShard.start();
    const { client } = await startRouter([bad, good]);
    const { events, error } = await generate(client);
    expect(error?.code).toBe(Code.Unavailable);
    expect(cases(events)).toEqual(["started", "delta"]);
    expect(good.calls).toBe(0);
  });

  it("ends an admitted stream with an error, not a hang, when its shard dies", async () => {
    const dying = await FakeShard.start({ behaviour: "die-after-token" });
    const { client } = await startRouter([dying]);
    const { events, error } = await generate(client);
    expect(cases(events)).toEqual(["started", "delta"]);
    expect(error).toBeDefined();
    // The client did not cancel: the shard left, which is Unavailable (never Canceled, which would read as the caller's own doing).
    expect(error!.code).toBe(Code.Unavailable);
  });

  it("tries only twice: two failing replicas give Unavailable", async () => {
    const shards = await Promise.all([1, 2, 3].map(() => FakeShard.start({ behaviour: "unavailable" })));
    const { client } = await startRouter(shards);
    const { error } = await generate(client);
    expect(error?.code).toBe(Code.Unavailable);
    expect(shards.reduce((n, s) => n + s.calls, 0)).toBe(2);
  });

  it("answers ResourceExhausted with retry-after when every replica's queue is full", async () => {
    const shards = await Promise.all([1, 2].map(() => FakeShard.start({ behaviour: "exhausted" })));
    const { router, client } = await startRouter(shards);
    const { events, error } = await generate(client);
    expect(events).toEqual([]);
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.metadata.get("retry-after")).toBe("1");
    // A full queue is load, not a fault: nobody is ejected.
    expect(router.replicas().every((r) => r.consecutiveFailures === 0)).toBe(true);
  });

  it("bounds the requests in flight per model with 429-style ResourceExhausted", async () => {
    const slow = await FakeShard.start({ behaviour: "hang" });
    const { client } = await startRouter([slow], { maxInFlightPerModel: 1 });
    const first = generate(client, "first");
    while (slow.calls === 0) await new Promise((r) => setTimeout(r, 10));
    const second = await generate(client, "second");
    expect(second.error?.code).toBe(Code.ResourceExhausted);
    expect(second.error?.metadata.get("retry-after")).toBe("1");
    await slow.close();
    expect((await first).error).toBeDefined();
  });

  it("ejects a replica after consecutive failures and takes it back after a success on probation", async () => {
    const flaky = await FakeShard.start({ behaviour: "unavailable" });
    const good = await FakeShard.start();
    const { router, client } = await startRouter([flaky, good]);
    const replica = router.replicas().find((r) => r.address === flaky.address)!;
    for (let i = 0; i < 3; i++) expect((await generate(client, `f${i}`)).error).toBeUndefined();
    expect(flaky.calls).toBe(3);
    expect(replica.ejectedUntilMs).toBeGreaterThan(Date.now());
    // Ejected: requests go straight to the good replica.
    for (let i = 0; i < 3; i++) expect((await generate(client, `e${i}`)).error).toBeUndefined();
    expect(flaky.calls).toBe(3);
    // Back-off over, still failing: one probe, ejected again for twice as long.
    replica.ejectedUntilMs = Date.now();
    expect((await generate(client, "p1")).error).toBeUndefined();
    expect(flaky.calls).toBe(4);
    const secondBackoff = replica.ejectedUntilMs - Date.now();
    expect(secondBackoff).toBeGreaterThan(5_000);
    // Back-off over, recovered: the probe succeeds and it is in again.
    flaky.behaviour = "serve";
    replica.ejectedUntilMs = Date.now();
    expect((await generate(client, "p2")).error).toBeUndefined();
    expect(flaky.calls).toBe(5);
    expect(replica.ejections).toBe(0);
    expect(replica.available(Date.now())).toBe(true);
  });

  it("active health checks take a NOT_SERVING or unreachable replica out and a SERVING one back", async () => {
    const a = await FakeShard.start();
    const b = await FakeShard.start();
    const { router, client } = await startRouter([a, b]);
    const checker = new HealthChecker(() => router.replicas(), silentLog, 1_000, 500);
    const [ra, rb] = router.replicas();
    a.server.health.setAll(ServingStatus.NOT_SERVING);
    await checker.checkAll();
    expect(ra.healthy).toBe(false);
    expect(rb.healthy).toBe(true);
    for (let i = 0; i < 4; i++) expect((await generate(client, `h${i}`)).error).toBeUndefined();
    expect(a.calls).toBe(0);
    a.server.health.setAll(ServingStatus.SERVING);
    await checker.checkAll();
    expect(ra.healthy).toBe(true);
    await b.close();
    await checker.checkAll();
    expect(rb.healthy).toBe(true); // one miss is not enough
    await checker.checkAll();
    expect(rb.healthy).toBe(false);
    expect((await generate(client, "after")).error).toBeUndefined();
  });
});
