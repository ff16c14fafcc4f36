import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "./args.js";
import { serveEnvironment } from "./serve-command.js";

const dir = mkdtempSync(path.join(tmpdir(), "serve-cmd-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const catalogFile = path.join(dir, "mesh.json");
writeFileSync(
  catalogFile,
  JSON.stringify({
    models: [
      {
        name: "m",
        backends: [
          { name: "a", engine: "sim", addresses: ["x:1"] },
          { name: "b", engine: "sim" },
        ],
      },
    ],
  }),
);

describe("llm-mesh serve", () => {
  it("lays flags over the environment, the flag winning", async () => {
    const env = await serveEnvironment("edge", ["--port", "9000", "--auth", "auth:50051", "--router", "router:50051"], {
      PORT: "1",
      MESH_ROUTER_ADDR: "old:1",
      OTHER: "kept",
    });
    expect(env).toMatchObject({ PORT: "9000", MESH_AUTH_ADDR: "auth:50051", MESH_ROUTER_ADDR: "router:50051", OTHER: "kept" });
  });

  it("puts auth on NATS when --nats is given", async () => {
    expect(await serveEnvironment("auth", ["--nats", "nats://n:4222"], {})).toMatchObject({ MESH_NATS_URL: "nats://n:4222", MESH_STORE: "nats" });
    expect((await serveEnvironment("auth", [], {})).MESH_STORE).toBeUndefined();
  });

  it("reads the router's catalog file and a shard's backend out of it, without its addresses", async () => {
    const router = await serveEnvironment("router", ["--catalog", catalogFile], {});
    expect(JSON.parse(router.MESH_CATALOG!).models[0].name).toBe("m");
    const shard = await serveEnvironment("shard", ["--catalog", catalogFile, "--model", "m", "--backend-name", "a", "--nats", "nats://n:4222"], {});
    expect(JSON.parse(shard.MESH_SHARD_BACKEND!)).toMatchObject({ name: "a", engine: "sim" });
    expect(JSON.parse(shard.MESH_SHARD_BACKEND!).addresses).toBeUndefined();
    expect(shard).toMatchObject({ MESH_SHARD_MODEL: "m", MESH_NATS_URL: "nats://n:4222" });
  });

  it("refuses an unknown service, a flag of another service and an ambiguous backend", async () => {
    await expect(serveEnvironment("gateway", [], {})).rejects.toThrow(UsageError);
    await expect(serveEnvironment("edge", ["--catalog", catalogFile], {})).rejects.toThrow(/not a flag of "serve edge"/);
    await expect(serveEnvironment("shard", ["--catalog", catalogFile, "--model", "m"], {})).rejects.toThrow(/several backends/);
  });
});
