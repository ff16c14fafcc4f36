import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WatchKeyChangesRequestSchema, WatchKeyChangesResponse_Kind as Kind } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { createLogger } from "../../lib/runtime/index.js";
import { AuthService } from "../../services/auth/src/auth-service.js";
import { SqliteKeyStore } from "../../services/auth/src/store/index.js";
import { PrincipalCache } from "../../services/edge/src/principal-cache.js";
import { startAuth, until } from "./auth-fixtures.js";

const log = createLogger("edge-test");
log.level = "silent";

/** Resolves once `cache` evicts `keyId` (a pushed change arrived). */
function evicted(cache: PrincipalCache, keyId: string): Promise<void> {
  return new Promise((resolve) => {
    const previous = cache.onEvict;
    cache.onEvict = (id) => {
      previous?.(id);
      if (id === keyId) resolve();
    };
  });
}

describe("revocation pushed to edges", () => {
  let a: Awaited<ReturnType<typeof startAuth>>;
  const stop = new AbortController();
  let edges: PrincipalCache[];

  beforeAll(async () => {
    a = await startAuth();
    edges = [new PrincipalCache(a.auth, log), new PrincipalCache(a.auth, log)];
    for (const edge of edges) void edge.follow(stop.signal);
    await until(() => edges.every((e) => e.watching));
  });
  afterAll(async () => {
    stop.abort();
    await a?.stop();
  });

  it("makes two edges with warm caches refuse a revoked key without waiting for a TTL", async () => {
    const { apiKey, keyInfo } = await a.admin.createKey({ name: "watched" }, a.asAdmin);
    for (const edge of edges) await edge.authenticate(apiKey);
    // Warm: answered from the cache.
    const spy = vi.spyOn(a.server.auth, "authenticate");
    for (const edge of edges) await edge.authenticate(apiKey);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    const startedAt = performance.now();
    const seen = edges.map((e) => evicted(e, keyInfo!.id));
    await a.admin.revokeKey({ id: keyInfo!.id }, a.asAdmin);
    await Promise.all(seen);
    const propagationMs = performance.now() - startedAt;
    for (const edge of edges) {
      const err = ConnectError.from(await edge.authenticate(apiKey).catch((e: unknown) => e));
      expect(err.code).toBe(Code.Unauthenticated);
    }
    console.log(`revocation reached both edges in ${propagationMs.toFixed(2)} ms`);
  });

  it("stops trusting a cached old secret when a rotation's grace ends", async () => {
    const { apiKey: oldKey, keyInfo } = await a.admin.createKey({ name: "rot" }, a.asAdmin);
    await edges[0].authenticate(oldKey);
    const seen = evicted(edges[0], keyInfo!.id);
    await a.admin.rotateKey({ id: keyInfo!.id, graceMs: 300n }, a.asAdmin);
    await seen;
    await expect(edges[0].authenticate(oldKey)).resolves.toBeDefined();
    await new Promise((r) => setTimeout(r, 350));
    const err = ConnectError.from(await edges[0].authenticate(oldKey).catch((e: unknown) => e));
    expect(err.code).toBe(Code.Unauthenticated);
  });

  it("refuses garbage keys at the edge without asking auth", async () => {
    const spy = vi.spyOn(a.server.auth, "authenticate");
    for (const bad of [
      "sk-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9",
      `sk-${"a".repeat(10_000)}`,
    ]) {
      const err = ConnectError.from(await edges[0].authenticate(bad).catch((e: unknown) => e));
      expect(err.code).toBe(Code.Unauthenticated);
    }
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });
});

describe("the key watch heartbeat", () => {
  it("gives each watcher its own heartbeat, one per interval however many watch", async () => {
    vi.useFakeTimers();
    const store = new SqliteKeyStore(":memory:");
    const auth = new AuthService(store, { heartbeatMs: 100 });
    const abort = new AbortController();
    const ctx = { signal: abort.signal } as HandlerContext;
    const watchers = [0, 1, 2].map(() => auth.watchKeyChanges(create(WatchKeyChangesRequestSchema), ctx));
    const counts = [0, 0, 0];
    const done = watchers.map(async (w, i) => {
      for await (const change of w) if (change.kind === Kind.HEARTBEAT) counts[i]++;
    });
    // Let every watcher subscribe (first next() runs to the SYNCED yield and past it).
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(1_000);
    abort.abort();
    await Promise.allSettled(done);
    vi.useRealTimers();
    expect(counts).toEqual([10, 10, 10]);
    await store.close();
  });
});
