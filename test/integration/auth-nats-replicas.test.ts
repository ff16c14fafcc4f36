import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService, KeyAdminService } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { NatsServerProcess } from "../../lib/nats/nats-server-process.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { generateAdminToken } from "../../services/auth/src/admin-token.js";
import { loadAuthConfig } from "../../services/auth/src/config.js";
import { build } from "../../services/auth/src/server.js";
import { PrincipalCache } from "../../services/edge/src/principal-cache.js";
import { until } from "./auth-fixtures.js";

const log = createLogger("auth-nats-test");
log.level = "silent";

describe("auth replicas sharing NATS (MESH_STORE=nats)", () => {
  let dir: string;
  let nats: NatsServerProcess;
  const adminToken = generateAdminToken();
  const replicas: { close: (ms?: number) => Promise<void>; auth: Client<typeof AuthService>; admin: Client<typeof KeyAdminService> }[] = [];
  const stop = new AbortController();
  const asAdmin = { headers: { authorization: `Bearer ${adminToken}` } };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-auth-nats-"));
    nats = await NatsServerProcess.start({ dir: path.join(dir, "nats") });
    for (const name of ["a", "b"]) {
      const config = loadAuthConfig({
        PORT: "0",
        MESH_DATA_DIR: path.join(dir, name),
        MESH_ADMIN_TOKEN: adminToken,
        MESH_STORE: "nats",
        MESH_NATS_URL: nats.url,
        MESH_NATS_PREFIX: "replicas",
      });
      const server = await build(config, log, { heartbeatMs: 200 });
      const address = `127.0.0.1:${server.port}`;
      replicas.push({ close: (ms) => server.close(ms ?? 200), auth: grpcClient(AuthService, address), admin: grpcClient(KeyAdminService, address) });
    }
  });
  afterAll(async () => {
    stop.abort();
    await Promise.all(replicas.map((r) => r.close()));
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("parses the store selection and defaults to SQLite", () => {
    expect(loadAuthConfig({}).store).toBe("sqlite");
    expect(loadAuthConfig({ MESH_STORE: "nats", MESH_NATS_URL: "nats://a:4222,nats://b:4222", MESH_NATS_REPLICAS: "3" })).toMatchObject({
      store: "nats",
      natsUrl: "nats://a:4222,nats://b:4222",
      natsReplicas: 3,
    });
    expect(() => loadAuthConfig({ MESH_STORE: "postgres" })).toThrow(/MESH_STORE/);
  });

  it("pushes a revocation made on replica a to an edge that watches replica b", async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const edge = new PrincipalCache(b.auth, log);
    void edge.follow(stop.signal);
    await until(() => edge.watching);
    const { apiKey, keyInfo } = await a.admin.createKey({ name: "shared" }, asAdmin);
    // Replica b knows a key replica a just created, and the edge caches its principal.
    await edge.authenticate(apiKey);
    const evicted = new Promise<void>((resolve) => {
      edge.onEvict = (id) => id === keyInfo!.id && resolve();
    });
    await a.admin.revokeKey({ id: keyInfo!.id }, asAdmin);
    await evicted;
    const err = ConnectError.from(await edge.authenticate(apiKey).catch((e: unknown) => e));
    expect(err.code).toBe(Code.Unauthenticated);
  });

  it("counts usage recorded through one replica in the other's report, once", async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const { keyInfo } = await a.admin.createKey({ name: "metered" }, asAdmin);
    const record = { requestId: "req-1", keyId: keyInfo!.id, accountId: "default", model: "tiny", promptTokens: 7, completionTokens: 3 };
    expect((await a.auth.recordUsage(record)).recorded).toBe(true);
    expect((await b.auth.recordUsage(record)).recorded).toBe(false);
    const { rows } = await b.admin.getUsage({ accountId: "default", groupBy: "key" }, asAdmin);
    expect(rows.filter((r) => r.group === keyInfo!.id).map((r) => [Number(r.requests), Number(r.promptTokens)])).toEqual([[1, 7]]);
  });
});
