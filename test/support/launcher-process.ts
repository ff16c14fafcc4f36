import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { fileURLToPath } from "node:url";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { freePort } from "../../cli/up/launcher.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const READY_TIMEOUT_MS = 120_000;
const DEFAULT_STOP_TIMEOUT_MS = 20_000;

/** How to start `llm-mesh up` on the tiny model for a test. */
export interface LauncherOptions {
  /** The bootstrap key the mesh registers (MESH_BOOTSTRAP_API_KEY). */
  apiKey: string;
  /** Catalog fields of the one llama.cpp backend over the defaults (4 sequences, 1 thread, CPU). */
  backend?: Record<string, unknown>;
  /** Extra `llm-mesh up` arguments. */
  args?: string[];
  /** Extra environment for the launcher (and so every service). */
  env?: Record<string, string>;
  /** Keep the data dir after stop. */
  keepDataDir?: boolean;
  dataDirPrefix?: string;
  stopTimeoutMs?: number;
}

/** A running `llm-mesh up` child and what it printed. */
export interface LauncherProcess {
  url: string;
  port: number;
  dataDir: string;
  child: ChildProcess;
  /** Every line the launcher printed (all services, prefixed with their names). */
  output: string[];
  /** host:port from the services' "listening" lines, by process name (e.g. "shard:tiny-llama/local"). */
  addresses: Map<string, string>;
  /** host:port of each process's metrics server (METRICS_PORT set), by process name. */
  metrics: Map<string, string>;
  /** Calls `listener` after every line; returns the unsubscribe. */
  onLine(listener: () => void): () => void;
  stop(): Promise<void>;
}

/**
 * Writes the tiny model and a one-backend catalog, runs `node bin/llm-mesh.js
 * up` (the build in dist/: `npm test` builds once) on a free port and waits
 * for "llm-mesh is ready". The topology follows MESH_TOPOLOGY (the vitest
 * project sets it). One llama.cpp thread: two spinning threads on a busy
 * 2-core box are far slower.
 */
export async function startLauncher(options: LauncherOptions): Promise<LauncherProcess> {
  if (!existsSync(path.join(ROOT, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npm run build` first (npm test does)");
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), options.dataDirPrefix ?? "mesh-e2e-"));
  const modelFile = path.join(dataDir, "tiny-llama.gguf");
  await writeTinyModel(modelFile);
  const backend = { name: "local", engine: "llama.cpp", model: modelFile, sequences: 4, threads: 1, gpu: false, ...options.backend };
  const configFile = path.join(dataDir, "mesh.yaml");
  writeFileSync(configFile, JSON.stringify({ models: [{ name: "tiny-llama", backends: [backend] }] }, null, 2));
  const args = ["bin/llm-mesh.js", "up", "--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, "--config", configFile, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, MESH_BOOTSTRAP_API_KEY: options.apiKey, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const addresses = new Map<string, string>();
  const metrics = new Map<string, string>();
  const listeners = new Set<() => void>();
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mesh not ready in ${READY_TIMEOUT_MS} ms:\n${output.slice(-40).join("\n")}`)), READY_TIMEOUT_MS);
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on("line", (line) => {
        output.push(line);
        const listening = /^\[([^\]]+)\] .*"port":(\d+).*"msg":"listening"/.exec(line);
        if (listening) addresses.set(listening[1], `127.0.0.1:${listening[2]}`);
        const metricsLine = /^\[([^\]]+)\] .*"port":(\d+).*"msg":"metrics on GET \/metrics"/.exec(line);
        if (metricsLine) metrics.set(metricsLine[1], `127.0.0.1:${metricsLine[2]}`);
        for (const listener of listeners) listener();
        if (line.includes("llm-mesh is ready on")) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`launcher exited (${code}):\n${output.slice(-40).join("\n")}`));
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    child,
    output,
    addresses,
    metrics,
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop,
  };
}
