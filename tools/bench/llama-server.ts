/**
 * llama.cpp's own `llama-server` as a benchmark peer, built once from the
 * llama.cpp source node-llama-cpp ships (`llama/gitRelease.bundle`, release
 * named in `llama/llama.cpp.info.json`), so both run the same llama.cpp on
 * the same GGUF. The build is cached outside the repository, in
 * `~/.cache/llm-mesh/llama-server-<release>/` (`MESH_LLAMA_SERVER_CACHE`
 * overrides the parent folder); `LLAMA_SERVER_BIN` uses a binary built elsewhere.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../../cli/up/launcher.js";
import type { RunningTarget } from "./targets.js";
import { availableCores, measureThreads, threadCandidates } from "../../services/model-shard/src/engines/llama-threads.js";

/** How long llama-server may take to load the model and answer /health. */
const START_TIMEOUT_MS = 60_000;
/** How long a stopped llama-server gets before SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;

/** Where node-llama-cpp keeps its llama.cpp source and release name. */
function llamaSourceDir(): string {
  const require = createRequire(import.meta.url);
  // The package exports no package.json: walk up from its entry point.
  for (let dir = path.dirname(require.resolve("node-llama-cpp")); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "llama", "llama.cpp.info.json"))) return path.join(dir, "llama");
  }
  throw new Error("node-llama-cpp's llama/ folder (llama.cpp source and release) was not found");
}

/** The llama.cpp release node-llama-cpp was built from. */
export function llamaRelease(): string {
  const info = JSON.parse(readFileSync(path.join(llamaSourceDir(), "llama.cpp.info.json"), "utf8")) as { tag?: string };
  if (!info.tag || !/^[\w.-]+$/.test(info.tag)) throw new Error("node-llama-cpp's llama.cpp.info.json names no release");
  return info.tag;
}

/** The cache folder of this release's build. */
export function llamaServerCacheDir(release = llamaRelease()): string {
  const parent = process.env.MESH_LLAMA_SERVER_CACHE ?? path.join(os.homedir(), ".cache", "llm-mesh");
  return path.join(parent, `llama-server-${release}`);
}

/**
 * The llama-server binary: `LLAMA_SERVER_BIN`, else the cached build, else
 * built now (git clone of the bundle, cmake, `--target llama-server`; about
 * 13 minutes on 2 vCPUs). Build output goes to `log`'s file, not the terminal.
 */
export async function llamaServerBinary(log: (line: string) => void): Promise<string> {
  if (process.env.LLAMA_SERVER_BIN) return process.env.LLAMA_SERVER_BIN;
  const release = llamaRelease();
  const dir = llamaServerCacheDir(release);
  const src = path.join(dir, "src");
  const binary = path.join(src, "build", "bin", "llama-server");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const buildLog = path.join(dir, "build.log");
  log(`llama-server ${release} is not built yet: building it once into ${dir} (log: ${buildLog}; ~13 min on 2 cores)`);
  if (!existsSync(path.join(src, "CMakeLists.txt"))) {
    rmSync(src, { recursive: true, force: true });
    await run("git", ["clone", "--quiet", path.join(llamaSourceDir(), "gitRelease.bundle"), src], dir, buildLog);
  }
  const jobs = String(Math.max(1, os.availableParallelism()));
  await run("cmake", ["-B", "build", "-DLLAMA_CURL=OFF", "-DCMAKE_BUILD_TYPE=Release"], src, buildLog);
  await run("cmake", ["--build", "build", "--target", "llama-server", "-j", jobs], src, buildLog);
  if (!existsSync(binary)) throw new Error(`the llama-server build ended without ${binary} (see ${buildLog})`);
  log(`llama-server built: ${binary}`);
  return binary;
}

function run(command: string, args: string[], cwd: string, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", `exec "$0" "$@" >> "${logFile}" 2>&1`, command, ...args], { cwd, stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} failed (exit ${code}); see ${logFile}`))));
  });
}

/** How llama-server is started: the same slots, threads and per-slot context as the mesh's engine. */
export interface LlamaServerOptions {
  binary: string;
  model: string;
  /** The model name requests carry (llama-server serves one model, whatever the name). */
  name: string;
  slots: number;
  threads: number;
  /** Total context (all slots), tokens. */
  contextSize: number;
}

/** Starts llama-server on a free loopback port and waits until /health answers. */
export async function startLlamaServer(o: LlamaServerOptions): Promise<RunningTarget & { args: string[] }> {
  const port = await freePort();
  const args = [
    "-m",
    o.model,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "-np",
    String(o.slots),
    "-t",
    String(o.threads),
    "-tb",
    String(o.threads),
    "-c",
    String(o.contextSize),
    "--no-webui",
    "--log-disable",
  ];
  const child = spawn(o.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  const tail: string[] = [];
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    tail.push(chunk);
    if (tail.length > 40) tail.shift();
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`llama-server did not start: ${(err as Error).message}\n${tail.join("").slice(-2000)}`, { cause: err });
  }
  // cpp-httplib closes idle keep-alive sockets on its own clock, which a pooled client then finds dead
  // ("socket hang up"): one connection per request instead (a loopback connect is ~22 µs here).
  const target = { url: `${url}/v1`, model: o.name, headers: { connection: "close" } };
  return { name: "llama-server", args, target, stop: () => stopChild(child) };
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no healthy /health within ${START_TIMEOUT_MS} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** The thread count the mesh's llama.cpp engine picks for `modelPath` on this machine (measured the same way). */
export async function threadsLikeTheEngine(modelPath: string): Promise<number> {
  const candidates = threadCandidates(availableCores());
  if (candidates.length === 1) return candidates[0];
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: Math.max(...candidates), logLevel: LlamaLogLevel.error, progressLogs: false });
  const model = await llama.loadModel({ modelPath });
  try {
    return (await measureThreads(model, candidates)).threads;
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}
