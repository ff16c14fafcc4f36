/**
 * llama.cpp's own `llama-server`, built once from the llama.cpp source
 * node-llama-cpp ships (`llama/gitRelease.bundle`, release named in
 * `llama/llama.cpp.info.json`), so it runs the same llama.cpp as the
 * in-process engine on the same GGUF. The build is cached outside the
 * repository, in `~/.cache/llm-mesh/llama-server-<release>/`
 * (`MESH_LLAMA_SERVER_CACHE` overrides the parent folder);
 * `LLAMA_SERVER_BIN` uses a binary built elsewhere (a CUDA build, say).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";

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

/** Where the cached build's binary is (whether or not it is built). */
function cachedBinary(release = llamaRelease()): string {
  return path.join(llamaServerCacheDir(release), "src", "build", "bin", "llama-server");
}

/** The llama-server binary without building: `LLAMA_SERVER_BIN`, else the cached build; undefined when neither exists. */
export function findLlamaServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.LLAMA_SERVER_BIN) return existsSync(env.LLAMA_SERVER_BIN) ? env.LLAMA_SERVER_BIN : undefined;
  const binary = cachedBinary();
  return existsSync(binary) ? binary : undefined;
}

/** How to get a binary, for errors that find none. */
export const LLAMA_SERVER_HINT = "run `llm-mesh llama-server build` (about 13 minutes on 2 cores, once) or set LLAMA_SERVER_BIN to a llama-server binary";

/**
 * The llama-server binary: `LLAMA_SERVER_BIN`, else the cached build, else
 * built now (git clone of the bundle, cmake, `--target llama-server`; about
 * 13 minutes on 2 vCPUs). Build output goes to the cache's build.log, not the terminal.
 */
export async function llamaServerBinary(log: (line: string) => void): Promise<string> {
  if (process.env.LLAMA_SERVER_BIN) return process.env.LLAMA_SERVER_BIN;
  const release = llamaRelease();
  const dir = llamaServerCacheDir(release);
  const src = path.join(dir, "src");
  const binary = cachedBinary(release);
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
