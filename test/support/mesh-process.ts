import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { freePort } from "../../cli/up/launcher.js";

/** A bootstrap key tests use (registered through MESH_BOOTSTRAP_API_KEY). */
export const TEST_API_KEY = "sk-test-0123456789abcdefghijklmnop";

export interface MeshProcess {
  url: string;
  port: number;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<number | null>;
}

/**
 * Starts `llm-mesh up` from the build (dist/) as a real process on a free
 * port and waits for /healthz 200. Run `npm run build` first (npm test does).
 */
export async function startMeshProcess(options: { args?: string[]; env?: Record<string, string>; dataDir?: string } = {}): Promise<MeshProcess> {
  const port = await freePort();
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), "mesh-e2e-"));
  const child = spawn(
    process.execPath,
    ["bin/llm-mesh.js", "up", "--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, ...(options.args ?? [])],
    {
      env: { ...process.env, MESH_BOOTSTRAP_API_KEY: TEST_API_KEY, LOG_LEVEL: "warn", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llm-mesh up exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`mesh not healthy in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  // The banner follows /healthz 200 by a moment.
  for (let i = 0; i < 100 && !output.includes("llm-mesh is ready"); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    url,
    port,
    dataDir,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      const code = await exited;
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
