import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { RecordUsageRequestSchema, WatchKeyChangesResponse_Kind as ChangeKind } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { connectNats, meshNatsNames } from "../../../../lib/nats/index.js";
import { NatsServerProcess } from "../../../../lib/nats/nats-server-process.js";
import { AuthService } from "../auth-service.js";
import type { KeyChange } from "./key-store.js";
import type { KeyRecord } from "./key-store.js";
import { NatsKeyStore, REQUEST_LOG_MAX_AGE_MS } from "./nats-key-store.js";
import { until } from "../../../../test/support/until.js";

const NS_PER_MS = 1_000_000;
let run = 0;

function keyRecord(id: string, accountId = "acme"): KeyRecord {
  const now = Date.now();
  return {
    id,
    accountId,
    name: id,
    secretHash: `h-${id}`,
    previousSecretHash: null,
    previousValidUntilMs: 0,
    allowedModels: [],
    requestsPerMinute: 0,
    tokensPerMinute: 0,
    createdAtMs: now,
    expiresAtMs: 0,
    revokedAtMs: 0,
    admin: false,
  };
}

describe("NATS key store", () => {
  let nats: NatsServerProcess;
  let dir: string;
  const stores: NatsKeyStore[] = [];

  /** A store as one auth replica would open it (its own connection). */
  async function openStore(prefix: string, extra: { spillFile?: string } = {}): Promise<NatsKeyStore> {
    const nc = await connectNats({ url: nats.url, name: "test", reconnectWaitMs: 100 });
    const store = await NatsKeyStore.open({ nc, names: meshNatsNames(prefix), ownsConnection: true, publishTimeoutMs: 300, replayIntervalMs: 200, ...extra });
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-nats-store-"));
    nats = await NatsServerProcess.start({ dir });
  });
  afterEach(async () => {
    if (!nats.running) await nats.start();
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("tells every replica about a revocation, a rotation and an account's retention change", async () => {
    const prefix = `r${++run}`;
    const a = await openStore(prefix);
    const b = await openStore(prefix);
    await a.createAccount({ id: "acme", name: "Acme", retentionOptOut: false, createdAtMs: 1 });
    await a.putKey(keyRecord("k1"));
    await a.putKey(keyRecord("k2"));
    const seen: KeyChange[] = [];
    b.onKeyChange((c) => seen.push(c));
    // Replica b reads a key replica a wrote a moment ago.
    expect((await b.getKey("k1"))?.id).toBe("k1");
    await a.putKey({ ...keyRecord("k1"), revokedAtMs: Date.now() });
    await a.putKey({ ...keyRecord("k2"), secretHash: "new-hash" });
    await a.updateAccount({ id: "acme", name: "Acme", retentionOptOut: true, createdAtMs: 1 });
    await until(() => seen.length >= 4);
    expect(seen).toEqual([
      { kind: ChangeKind.REVOKED, keyId: "k1" },
      { kind: ChangeKind.ROTATED, keyId: "k2" },
      { kind: ChangeKind.UPDATED, keyId: "k1" },
      { kind: ChangeKind.UPDATED, keyId: "k2" },
    ]);
    expect((await b.getKey("k1"))?.revokedAtMs).toBeGreaterThan(0);
  });

  it("keeps request logs 30 days and writes none for an opted-out account", async () => {
    const store = await openStore(`l${++run}`);
    const jsm = await jetstreamManager(await connectNats({ url: nats.url, name: "inspect" }));
    try {
      const info = await jsm.streams.info(store.names.requestLogStream);
      expect(info.config.max_age).toBe(REQUEST_LOG_MAX_AGE_MS * NS_PER_MS);
      await store.createAccount({ id: "keeps", name: "k", retentionOptOut: false, createdAtMs: 1 });
      await store.createAccount({ id: "private", name: "p", retentionOptOut: true, createdAtMs: 1 });
      const auth = new AuthService(store);
      const record = (requestId: string, accountId: string) =>
        auth.recordUsage(
          create(RecordUsageRequestSchema, {
            requestId,
            accountId,
            keyId: "k",
            model: "tiny",
            promptTokens: 3,
            completionTokens: 2,
            requestJson: '{"messages":[]}',
            responseText: "secret words",
          }),
        );
      await record("req-kept", "keeps");
      await record("req-private", "private");
      expect((await store.getRequestLog("req-kept"))?.responseText).toBe("secret words");
      expect(await store.getRequestLog("req-private")).toBeUndefined();
      expect((await jsm.streams.info(store.names.requestLogStream)).state.messages).toBe(1);
      // Usage is counted for both: it is not request content.
      expect((await store.queryUsage({ groupBy: "model" }))[0]?.requests).toBe(2);
    } finally {
      await (jsm as unknown as { nc: { close(): Promise<void> } }).nc.close();
    }
  });

  it("buffers usage while NATS is down and stores each record exactly once after it returns", async () => {
    const store = await openStore(`o${++run}`);
    const watcher = await openStore(store.names.prefix);
    const usage = (requestId: string) => ({
      requestId,
      keyId: "k1",
      accountId: "acme",
      model: "tiny",
      backend: "b",
      promptTokens: 10,
      completionTokens: 1,
      status: "ok" as const,
      ttftMs: 1,
      e2eMs: 2,
      createdAtMs: Date.now(),
    });
    expect(await store.recordUsage(usage("before"))).toBe(true);
    await store.createAccount({ id: "acme", name: "Acme", retentionOptOut: false, createdAtMs: 1 });
    await store.putKey(keyRecord("k1"));

    await nats.stop();
    const during = ["r1", "r2", "r3", "r4", "r5"];
    for (const id of during) expect(await store.recordUsage(usage(id))).toBe(true);
    // Retries of the same request (an edge retrying) and of one stored before the outage.
    expect(await store.recordUsage(usage("r3"))).toBe(true);
    expect(await store.recordUsage(usage("before"))).toBe(true);
    expect(store.buffered).toBe(7);
    // Reads keep working from the mirror while NATS is away.
    expect((await store.getKey("k1"))?.id).toBe("k1");

    await nats.start();
    await until(() => store.buffered === 0, 15_000);
    expect(await store.queryUsage({ accountId: "acme", groupBy: "key" })).toEqual([{ group: "k1", requests: 6, promptTokens: 60, completionTokens: 6 }]);
    const nc = await connectNats({ url: nats.url, name: "inspect" });
    try {
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info(store.names.usageStream)).state.messages).toBe(6);
    } finally {
      await nc.close();
    }
    // The key watch survived the restart: a revocation still reaches the other replica.
    const seen: KeyChange[] = [];
    watcher.onKeyChange((c) => seen.push(c));
    await store.putKey({ ...keyRecord("k1"), revokedAtMs: Date.now() });
    await until(() => seen.length > 0);
    expect(seen[0]).toEqual({ kind: ChangeKind.REVOKED, keyId: "k1" });
  });

  it("saves undelivered usage at close and delivers it from the next start", async () => {
    const prefix = `s${++run}`;
    const spillFile = path.join(dir, `${prefix}-outbox.json`);
    const first = await openStore(prefix, { spillFile });
    await nats.stop();
    expect(
      await first.recordUsage({
        requestId: "late",
        keyId: "k",
        accountId: "acme",
        model: "m",
        backend: "b",
        promptTokens: 4,
        completionTokens: 4,
        status: "ok",
        ttftMs: 1,
        e2eMs: 1,
        createdAtMs: Date.now(),
      }),
    ).toBe(true);
    stores.splice(stores.indexOf(first), 1);
    const closing = first.close();
    await closing;
    expect(JSON.parse(await readFile(spillFile, "utf8"))).toHaveLength(1);
    await nats.start();
    const second = await openStore(prefix, { spillFile });
    await until(() => second.buffered === 0);
    expect(await second.queryUsage({ groupBy: "model" })).toEqual([{ group: "m", requests: 1, promptTokens: 4, completionTokens: 4 }]);
  });
});
