import { describe, expect, it } from "vitest";
import { EJECT_AFTER_FAILURES, EJECT_BACKOFF_MS, MAX_EJECT_BACKOFF_MS, ReplicaSet } from "./replicas.js";

const backend = (n: number) => ({
  name: "b",
  engine: "sim" as const,
  replicas: n,
  prefill_tokens_per_s: 1,
  decode_ms_per_token: 1,
  decode_ms_per_extra_sequence: 0,
  max_batch: 1,
  max_queue: 1,
  context_length: 4096,
  addresses: Array.from({ length: n }, (_, i) => `127.0.0.1:${1 + i}`),
});

describe("replica set", () => {
  it("picks the less loaded of two replicas", () => {
    const set = new ReplicaSet(backend(2), () => 0);
    set.replicas[0].running = 5;
    expect(set.pick()).toBe(set.replicas[1]);
    set.replicas[1].queued = 9;
    expect(set.pick()).toBe(set.replicas[0]);
  });

  it("ejects after consecutive failures with a doubling back-off, and forgets after a success", () => {
    const set = new ReplicaSet(backend(2), () => 0);
    const [r] = set.replicas;
    for (let i = 0; i < EJECT_AFTER_FAILURES - 1; i++) r.failed(0);
    expect(r.available(0)).toBe(true);
    r.failed(0);
    expect(r.ejectedUntilMs).toBe(EJECT_BACKOFF_MS);
    expect(set.pick(new Set(), 1)).toBe(set.replicas[1]);
    // On probation, one more failure ejects it again for twice as long.
    r.failed(EJECT_BACKOFF_MS);
    expect(r.ejectedUntilMs).toBe(3 * EJECT_BACKOFF_MS);
    for (let i = 0; i < 10; i++) r.failed(0);
    expect(r.ejectedUntilMs).toBe(MAX_EJECT_BACKOFF_MS);
    r.succeeded();
    expect(r.ejections).toBe(0);
    r.failed(0);
    expect(r.ejectedUntilMs).toBe(MAX_EJECT_BACKOFF_MS); // unchanged: one failure is not enough again
  });

  it("tries ejected replicas when every healthy one is ejected, and none that is unhealthy", () => {
    const set = new ReplicaSet(backend(2), () => 0);
    for (const r of set.replicas) for (let i = 0; i < EJECT_AFTER_FAILURES; i++) r.failed(0);
    expect(set.pick(new Set(), 1)).toBeDefined();
    for (const r of set.replicas) r.healthy = false;
    expect(set.pick(new Set(), 1)).toBeUndefined();
    expect(set.retryAfterMs(1)).toBe(EJECT_BACKOFF_MS - 1);
  });

  it("setAddresses keeps replicas that stay (with their state), adds new ones and drops and stops gone ones", () => {
    const set = new ReplicaSet(backend(2), () => 0);
    const [first, second] = set.replicas;
    first.running = 7;
    const change = set.setAddresses(["127.0.0.1:1", "127.0.0.1:9", "127.0.0.1:9"]);
    expect(change).toEqual({ added: ["127.0.0.1:9"], removed: ["127.0.0.1:2"] });
    expect(set.replicas.map((r) => r.address)).toEqual(["127.0.0.1:1", "127.0.0.1:9"]);
    expect(set.replicas[0]).toBe(first);
    expect(set.replicas[0].running).toBe(7);
    expect(second.removedSignal.aborted).toBe(true);
    expect(first.removedSignal.aborted).toBe(false);
    expect(set.pick(new Set([first]))?.address).toBe("127.0.0.1:9");
    expect(set.setAddresses([])).toEqual({ added: [], removed: ["127.0.0.1:1", "127.0.0.1:9"] });
    expect(set.pick()).toBeUndefined();
  });

  it("leaves dns:/// entries to discovery: only plain addresses become replicas at first", () => {
    const set = new ReplicaSet({ ...backend(0), addresses: ["dns:///shard:50051", "10.0.0.1:50051"] });
    expect(set.replicas.map((r) => r.address)).toEqual(["10.0.0.1:50051"]);
  });
});
