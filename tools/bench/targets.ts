/**
 * The systems a scenario measures, started on loopback for the run: the
 * project's zero-delay fake engine, the mesh (every service as its own
 * process, through the launcher) and Portkey's open-source gateway.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { catalogSchema } from "../../lib/catalog/index.js";
import { freePort, launch } from "../../cli/up/launcher.js";
import type { Topology } from "../../cli/up/launcher.js";
import type { ChatTarget } from "./openai-client.js";

/** The key the bench registers in the meshes it starts. */
export const BENCH_API_KEY = "sk-bench-0123456789abcdefghijklmnop";

const running = new Set<() => Promise<void>>();

/** Stops every system the bench started and has not stopped yet (for Ctrl-C). */
export async function stopAllTargets(): Promise<void> {
  await Promise.allSettled([...running].map((stop) => stop()));
}

function tracked(stop: () => Promise<void>): () => Promise<void> {
  const once = async () => {
    running.delete(once);
    await stop();
  };
  running.add(once);
  return once;
}

/** A started system: where to send requests, and how to stop it. */
export interface RunningTarget {
  name: string;
  target: ChatTarget;
  /** Process ids of the system's own processes by name (for CPU per request), where known. */
  pids?: () => Map<string, number>;
  stop(): Promise<void>;
}

/** Backend settings of a mesh the bench starts. */
export type MeshBackend =
  | { engine: "openai-upstream"; url: string; /** A GGUF whose vocabulary and template the mesh's tokenizer uses. */ tokenizer: string }
  | {
      engine: "llama.cpp";
      model: string;
      sequences: number;
      threads?: number;
      threadsBatch?: number;
      gpu?: "auto" | false;
      runtime?: "node-llama-cpp" | "llama-server";
    };

/**
 * Starts the whole mesh with one model (`model`) on one backend, with the
 * bench key registered, logs kept quiet (the last lines are shown on failure).
 */
export async function startMesh(model: string, backend: MeshBackend, topology: Topology = "split"): Promise<RunningTarget> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-bench-"));
  const entry =
    backend.engine === "openai-upstream"
      ? { name: "upstream", engine: "openai-upstream", url: backend.url, api_key: "x", max_concurrency: 1024 }
      : {
          name: "local",
          engine: "llama.cpp",
          model: backend.model,
          sequences: backend.sequences,
          threads: backend.threads,
          threads_batch: backend.threadsBatch,
          gpu: backend.gpu ?? false,
          runtime: backend.runtime,
          max_queue: 1024,
        };
  const tokenizer = backend.engine === "openai-upstream" ? { tokenizer: backend.tokenizer } : {};
  const catalog = catalogSchema.parse({ models: [{ name: model, ...tokenizer, backends: [entry] }] });
  const lines: string[] = [];
  const saved = { key: process.env.MESH_BOOTSTRAP_API_KEY, level: process.env.LOG_LEVEL };
  process.env.MESH_BOOTSTRAP_API_KEY = BENCH_API_KEY;
  process.env.LOG_LEVEL = "warn";
  try {
    const mesh = await launch({
      port: await freePort(),
      host: "127.0.0.1",
      dataDir,
      catalog,
      topology,
      out: (line) => {
        lines.push(line);
        if (lines.length > 50) lines.shift();
      },
    });
    return {
      name: topology === "split" ? "mesh" : `mesh-${topology}`,
      target: { url: `${mesh.url}/v1`, model, apiKey: BENCH_API_KEY },
      pids: () => new Map([...mesh.processes].flatMap(([name, p]) => (p.pid === undefined ? [] : [[name, p.pid] as const]))),
      stop: tracked(async () => {
        await mesh.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }),
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`the mesh did not start: ${(err as Error).message}\n${lines.join("\n")}`, { cause: err });
  } finally {
    restoreEnv("MESH_BOOTSTRAP_API_KEY", saved.key);
    restoreEnv("LOG_LEVEL", saved.level);
  }
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/**
 * Starts Portkey's open-source gateway (a dev dependency) as a child process,
 * routing every request to `upstreamUrl` (an OpenAI-compatible base URL with /v1).
 */
export async function startPortkey(upstreamUrl: string, model: string): Promise<RunningTarget> {
  const require = createRequire(import.meta.url);
  const script = path.join(path.dirname(require.resolve("@portkey-ai/gateway/package.json")), "build", "start-server.js");
  const port = await freePort();
  const child = spawn(process.execPath, [script, `--port=${port}`, "--headless"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = tracked(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portkey exited with ${child.exitCode}:\n${output}`);
    try {
      await fetch(url);
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`portkey did not listen in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const config = JSON.stringify({ provider: "openai", custom_host: upstreamUrl, api_key: "x" });
  return { name: "portkey", target: { url: `${url}/v1`, model, headers: { "x-portkey-config": config } }, stop };
}
