import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WatchKeyChangesResponse_Kind as ChangeKind } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { connectNats, meshNatsNames } from "../../lib/nats/index.js";
import { startNatsCluster } from "../../lib/nats/nats-server-process.js";
import type { NatsServerProcess } from "../../lib/nats/nats-server-process.js";
import type { KeyChange } from "../../services/auth/src/store/index.js";
import { NatsKeyStore } from "../../services/auth/src/store/index.js";
import type { KeyRecord, UsageRecord } from "../../services/auth/src/store/index.js";
import { until } from "../support/until.js";

function keyRecord(id: string): KeyRecord {
  return {
    id,
    accountId: "acme",
    name: id,
    secretHash: `h-${id}`,
    previousSecretHash: null,
    previousValidUntilMs: 0,
    allowedModels: [],
    requestsPerMinute: 0,
    tokensPerMinute: 0,
    createdAtMs: Date.now(),
    expiresAtMs: 0,
    revokedAtMs: 0,
    admin: false,
  };
}

function usage(requestId: string): UsageRecord {
  return {
    requestId,
    keyId: "k1",
    accountId: "acme",
    model: "tiny",
    backend: "b",
    promptTokens: 10,
    completionTokens: 2,
    status: "ok",
    ttftMs: 1,
    e2eMs: 2,
    createdAtMs: Date.now(),
  };
}

describe("NATS key store on a 3-node JetStream cluster", { timeout: 60_000 }, () => {
  let dir: string;
  let nodes: NatsServerProcess[] = [];
  const stores: NatsKeyStore[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-nats-cluster-"));
    nodes = await startNatsCluster(dir, 3);
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("keeps working, with no record lost or doubled, when the bucket's leader node dies", async () => {
    const url = nodes.map((n) => n.url).join(",");
    const open = async () => {
      const nc = await connectNats({ url, name: "cluster-test", reconnectWaitMs: 100 });
      const store = await NatsKeyStore.open({
        nc,
        names: meshNatsNames("cluster"),
        replicas: 3,
        ownsConnection: true,
        publishTimeoutMs: 500,
        replayIntervalMs: 200,
      });
      stores.push(store);
      return { nc, store };
    };
    const a = await open();
    const b = await open();
    await a.store.createAccount({ id: "acme", name: "Acme", retentionOptOut: false, createdAtMs: 1 });
    await a.store.putKey(keyRecord("k1"));
    for (const id of ["u1", "u2", "u3"]) expect(await a.store.recordUsage(usage(id))).toBe(true);

    // The worst node to lose: the leader of the auth bucket's stream (a new one is elected in seconds).
    const jsm = await jetstreamManager(a.nc);
    const leader = (await jsm.streams.info(`KV_${a.store.names.authBucket}`)).cluster?.leader;
    const victim = nodes.find((n) => n.spec.serverName === leader)!;
    expect(victim).toBeDefined();
    await victim.stop();

    // At once, during the election: reads come from the local mirror, usage is accepted (buffered if need be).
    expect((await a.store.getKey("k1"))?.id).toBe("k1");
    expect((await b.store.listKeys("acme")).map((k) => k.id)).toEqual(["k1"]);
    for (const id of ["u4", "u5"]) expect(await a.store.recordUsage(usage(id))).toBe(true);
    const seen: KeyChange[] = [];
    b.store.onKeyChange((c) => seen.push(c));
    // A retry of a stored record: false, or true if it queued behind buffered ones; stored once either way.
    await a.store.recordUsage(usage("u1"));
    await a.store.putKey(keyRecord("k2"));
    expect((await b.store.getKey("k2"))?.id).toBe("k2");
    await a.store.putKey({ ...keyRecord("k1"), revokedAtMs: Date.now() });
    await until(() => seen.some((c) => c.kind === ChangeKind.REVOKED && c.keyId === "k1"), 15_000);
    await until(() => a.store.buffered === 0, 15_000);
    expect(await b.store.queryUsage({ accountId: "acme", groupBy: "model" })).toEqual([{ group: "tiny", requests: 5, promptTokens: 50, completionTokens: 10 }]);
  });
});
