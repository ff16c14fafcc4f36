import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { fileURLToPath } from "node:url";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { freePort } from "../../cli/up/launcher.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;

/** The bootstrap key every e2e mesh accepts. */
export const E2E_API_KEY = "sk-e2e-openai-0123456789abcdefghij";

/** A mesh started with `llm-mesh up` for one test file. */
export interface LaunchedMesh {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  /** `${url}/v1`, the OpenAI base URL. */
  baseURL: string;
  apiKey: string;
  /** host:port of each service, from the launcher's "listening" lines (e.g. "shard:tiny-llama/local"). */
  addresses: Map<string, string>;
  /** Everything the launcher printed, for failure messages. */
  output: string[];
  /** The service token the launcher generated (data dir's service-token), for tests that call internal gRPC. */
  serviceToken: string;
  stop(): Promise<void>;
}

export { freePort };

/** The launcher runs dist/: `npm test` builds before vitest starts (build yourself when running one file). */
function requireBuild(): void {
  if (!existsSync(path.join(ROOT, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npm run build` first (npm test does)");
}

/**
 * Builds, then runs `node bin/llm-mesh.js up` on a free port with the tiny
 * model (one llama.cpp thread: two spinning threads on a busy 2-core box
 * are far slower) and waits until it is ready.
 */
export async function launchMesh(env: Record<string, string> = {}): Promise<LaunchedMesh> {
  requireBuild();
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-e2e-"));
  const modelFile = path.join(dataDir, "tiny-llama.gguf");
  await writeTinyModel(modelFile);
  const catalog = { models: [{ name: "tiny-llama", backends: [{ name: "local", engine: "llama.cpp", model: modelFile, sequences: 4, threads: 1, gpu: false }] }] };
  const configFile = path.join(dataDir, "mesh.yaml");
  writeFileSync(configFile, JSON.stringify(catalog, null, 2));
  const args = ["bin/llm-mesh.js", "up", "--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, "--config", configFile];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, MESH_BOOTSTRAP_API_KEY: E2E_API_KEY, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const addresses = new Map<string, string>();
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mesh not ready in ${READY_TIMEOUT_MS} ms:\n${output.slice(-40).join("\n")}`)), READY_TIMEOUT_MS);
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on("line", (line) => {
        output.push(line);
        const listening = /^\[([^\]]+)\] .*"port":(\d+).*"msg":"listening"/.exec(line);
        if (listening) addresses.set(listening[1]!, `127.0.0.1:${listening[2]}`);
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
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (err) {
    await stop();
    throw err;
  }
  const url = `http://127.0.0.1:${port}`;
  const serviceToken = readFileSync(path.join(dataDir, "service-token"), "utf8").trim();
  return { url, baseURL: `${url}/v1`, apiKey: E2E_API_KEY, addresses, output, serviceToken, stop };
}

/** The shard's address of the default tiny model. */
export function shardAddress(mesh: LaunchedMesh): string {
  for (const [name, address] of mesh.addresses) if (name.startsWith("shard:")) return address;
  throw new Error("no shard address in the launcher output");
}

/** POSTs JSON to the mesh and returns status, headers and the parsed (or raw) body. */
export async function postJson(mesh: LaunchedMesh, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${mesh.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, any> };
}

/** Reads an SSE body into its `data:` payloads. */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}
