import { execFileSync } from "node:child_process";
import { statSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";
import { alive } from "../support/alive.js";

/** The pids of a process's children (Linux /proc). */
function childPids(pid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
      .split("\n")
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

async function healthz(url: string): Promise<number> {
  try {
    return (await fetch(`${url}/healthz`)).status;
  } catch {
    return 0;
  }
}

describe("llm-mesh up (the launcher)", () => {
  let mesh: MeshProcess;

  beforeAll(async () => {
    // No bootstrap key: the first start must create one.
    mesh = await startMeshProcess({ env: { MESH_BOOTSTRAP_API_KEY: "", LOG_LEVEL: "info" } });
  });

  afterAll(async () => {
    if (mesh && mesh.child.exitCode === null) await mesh.stop();
  });

  it("creates the first key once, mode 0600, and prints where it is saved, never the key itself, to a pipe", () => {
    const file = path.join(mesh.dataDir, "first-api-key");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(mesh.dataDir).mode & 0o777).toBe(0o700);
    const key = readFileSync(file, "utf8").trim();
    expect(key).toMatch(/^sk-mesh-[a-z0-9]{12}-[A-Za-z0-9_-]{43}$/);
    expect(mesh.output()).toContain(`is saved in ${mesh.dataDir}/first-api-key`);
    expect(mesh.output()).not.toContain(key.slice(-43));
  });

  it("writes the tiny model into the data dir and prefixes service logs with their names", () => {
    expect(statSync(path.join(mesh.dataDir, "tiny-llama.gguf")).size).toBeGreaterThan(100_000);
    expect(mesh.output()).toMatch(/^\[(auth|tokenizer|router|edge|shard:tiny-llama\/local)\] /m);
  });

  it("names a dead service in /healthz and restarts it", async () => {
    const pids = childPids(mesh.child.pid!);
    // Five services and the spare shard process (for models added at run time).
    expect(pids.length).toBe(6);
    const shardPid = pids.find((pid) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes("MESH_SHARD_MODEL=tiny-llama"))!;
    process.kill(shardPid, "SIGKILL");
    let sawFailure = false;
    for (let i = 0; i < 300; i++) {
      const res = await fetch(`${mesh.url}/healthz`).catch(() => undefined);
      if (res?.status === 503) {
        const body = (await res.json()) as { failing: string[] };
        expect(body.failing).toContain("shard:tiny-llama/local");
        sawFailure = true;
      }
      if (sawFailure && res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(sawFailure).toBe(true);
    expect(await healthz(mesh.url)).toBe(200);
    expect(mesh.output()).toContain("restarting in");
  });

  it("stops every service on SIGTERM and leaves nothing running", async () => {
    const pids = childPids(mesh.child.pid!);
    expect(pids.length).toBe(6);
    const stopping = performance.now();
    const code = await mesh.stop();
    console.log(`launcher stopped every service in ${(performance.now() - stopping).toFixed(0)} ms`);
    expect(code).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(pids.filter(alive)).toEqual([]);
  });
});
