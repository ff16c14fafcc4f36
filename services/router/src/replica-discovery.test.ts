import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { parseDnsTarget } from "./dns-target.js";
import { joinHostPort, ReplicaDiscovery } from "./replica-discovery.js";
import type { Resolver } from "./replica-discovery.js";
import { ReplicaSet } from "./replicas.js";

const log = pino({ level: "silent" });

const backend = (addresses: string[]) => ({
  name: "b",
  engine: "sim" as const,
  replicas: 1,
  prefill_tokens_per_s: 1,
  decode_ms_per_token: 1,
  decode_ms_per_extra_sequence: 0,
  max_batch: 1,
  max_queue: 1,
  context_length: 4096,
  addresses,
});

/** A resolver whose answer (or failure) a test sets per host. */
function fakeResolver(answers: Record<string, string[] | Error>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (host: string): Promise<string[]> => {
    calls.push(host);
    const answer = answers[host];
    if (answer === undefined) throw new Error(`ENOTFOUND ${host}`);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return Object.assign(resolve, { calls });
}

const addresses = (set: ReplicaSet) => set.replicas.map((r) => r.address);

describe("replica discovery", () => {
  it("parses dns:///NAME:PORT targets and rejects malformed ones", () => {
    expect(parseDnsTarget("dns:///model-shard.llm-mesh:50051")).toEqual({ host: "model-shard.llm-mesh", port: 50051 });
    expect(parseDnsTarget("dns:///[::1]:7")).toEqual({ host: "::1", port: 7 });
    for (const bad of ["dns:///shard", "dns:///shard:0", "dns:///shard:x", "shard:1", "dns://auth/shard:1"]) expect(() => parseDnsTarget(bad), bad).toThrow();
    expect(joinHostPort("fd00::5", 50051)).toBe("[fd00::5]:50051");
    expect(() => new ReplicaSet(backend(["dns:///shard"]))).not.toThrow();
    expect(() => new ReplicaDiscovery(new ReplicaSet(backend(["dns:///shard"])), log)).toThrow(/dns:\/\/\/NAME:PORT/);
  });

  it("makes one replica per resolved address, drops one that disappears, and keeps plain entries", async () => {
    const answers: Record<string, string[] | Error> = { shard: ["10.0.0.1", "10.0.0.2"] };
    const set = new ReplicaSet(backend(["dns:///shard:50051", "static:1"]));
    const discovery = new ReplicaDiscovery(set, log, fakeResolver(answers));
    await discovery.refresh();
    expect(addresses(set)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051", "static:1"]);
    const [kept, dropped] = set.replicas;
    answers.shard = ["10.0.0.1", "fd00::3"];
    await discovery.refresh();
    expect(addresses(set)).toEqual(["10.0.0.1:50051", "[fd00::3]:50051", "static:1"]);
    expect(set.replicas[0]).toBe(kept);
    expect(dropped.removedSignal.aborted).toBe(true);
  });

  it("keeps the last good addresses when resolution fails or comes back empty, and has none before a first success", async () => {
    const answers: Record<string, string[] | Error> = { shard: new Error("SERVFAIL") };
    const set = new ReplicaSet(backend(["dns:///shard:50051"]));
    const resolver = fakeResolver(answers);
    const discovery = new ReplicaDiscovery(set, log, resolver);
    await discovery.refresh();
    expect(addresses(set)).toEqual([]);
    answers.shard = ["10.0.0.1", "10.0.0.2"];
    await discovery.refresh();
    expect(addresses(set)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051"]);
    answers.shard = new Error("ETIMEOUT");
    await discovery.refresh();
    expect(addresses(set)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051"]);
    answers.shard = [];
    await discovery.refresh();
    expect(addresses(set)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051"]);
    expect(resolver.calls).toEqual(["shard", "shard", "shard", "shard"]);
  });

  it("re-resolves on its interval until stopped", async () => {
    const answers: Record<string, string[] | Error> = { shard: ["10.0.0.1"] };
    const set = new ReplicaSet(backend(["dns:///shard:50051"]));
    const resolver = fakeResolver(answers);
    const stop = new AbortController();
    await new ReplicaDiscovery(set, log, resolver, 10).start(stop.signal);
    expect(addresses(set)).toEqual(["10.0.0.1:50051"]);
    answers.shard = ["10.0.0.1", "10.0.0.2"];
    await expect.poll(() => addresses(set), { timeout: 5_000 }).toEqual(["10.0.0.1:50051", "10.0.0.2:50051"]);
    stop.abort();
    const calls = resolver.calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(resolver.calls.length).toBe(calls);
  });
});
