import { readdirSync, readFileSync } from "node:fs";
import { startLauncher } from "../support/launcher-process.js";

const STOP_TIMEOUT_MS = 30_000;

/** The bootstrap key every reliability mesh accepts (R8 searches for it afterwards). */
export const RELIABILITY_API_KEY = "sk-reliability-0123456789abcdefghijklmn";

/** A size from the environment: the short form inside `npm test`, the full one under `npm run test:reliability`. */
export function size(name: string, short: number): number {
  const raw = process.env[name];
  return raw === undefined || raw === "" ? short : Number(raw);
}

/** Options for one reliability mesh. */
export interface ReliabilityMeshOptions {
  /** Shard replicas of the one backend (catalog `replicas`). */
  replicas?: number;
  /** Sequences (generation slots) per shard. */
  sequences?: number;
  /** The shard's wait queue in front of its sequences (catalog `max_queue`). */
  maxQueue?: number;
  /** Extra `llm-mesh up` arguments (e.g. --nats URL). */
  args?: string[];
  /** Extra environment for the launcher (and so every service). */
  env?: Record<string, string>;
  /** Keep the data dir after stop (R8 reads it). */
  keepDataDir?: boolean;
}

/** A process of the mesh, found under the launcher by its PORT. */
export interface MeshChild {
  pid: number;
  port: number;
  script: string;
}

/** `llm-mesh up` as a real process, with what the reliability tests need to look inside it. */
export interface ReliabilityMesh {
  url: string;
  baseURL: string;
  apiKey: string;
  dataDir: string;
  launcherPid: number;
  /** host:port from the launcher's "listening" lines, by process name (e.g. "shard:tiny-llama/local#0"). */
  addresses: Map<string, string>;
  /** Every line the launcher printed (all services, prefixed with their names). */
  output: string[];
  /** The live child process serving `name` (by its port); undefined while it restarts. */
  child(name: string): MeshChild | undefined;
  /** host:port of each process's metrics server (METRICS_PORT set), by process name. */
  metrics: Map<string, string>;
  /** Names of the shard processes. */
  shardNames(): string[];
  /** Resolves once `name` logged "listening" again after `since` lines of output. */
  relistened(name: string, since: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Children of `parentPid` from /proc, each with its PORT environment variable and script. */
function childrenOf(parentPid: number): MeshChild[] {
  const found: MeshChild[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== parentPid) continue;
      const env = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      const port = Number(env.find((e) => e.startsWith("PORT="))?.slice(5));
      const script = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")[1] ?? "";
      found.push({ pid: Number(entry), port, script });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * Writes the tiny model and a catalog (replicas, sequences), runs
 * `node bin/llm-mesh.js up` (the build in dist/) on a free port and waits for "llm-mesh is ready".
 * The topology follows MESH_TOPOLOGY (the vitest project sets it).
 */
export async function startReliabilityMesh(options: ReliabilityMeshOptions = {}): Promise<ReliabilityMesh> {
  const backend = {
    sequences: options.sequences ?? 4,
    replicas: options.replicas ?? 1,
    ...(options.maxQueue === undefined ? {} : { max_queue: options.maxQueue }),
  };
  const mesh = await startLauncher({
    apiKey: RELIABILITY_API_KEY,
    backend,
    args: options.args,
    env: { LOG_LEVEL: "info", ...options.env },
    keepDataDir: options.keepDataDir,
    dataDirPrefix: "mesh-rel-",
    stopTimeoutMs: STOP_TIMEOUT_MS,
  });
  const { addresses, output, child } = mesh;
  return {
    url: mesh.url,
    baseURL: `${mesh.url}/v1`,
    apiKey: RELIABILITY_API_KEY,
    dataDir: mesh.dataDir,
    launcherPid: child.pid!,
    addresses,
    metrics: mesh.metrics,
    output,
    child(name) {
      const address = addresses.get(name);
      if (!address) throw new Error(`no process ${name}; known: ${[...addresses.keys()].join(", ")}`);
      const p = Number(address.split(":")[1]);
      return childrenOf(child.pid!).find((c) => c.port === p);
    },
    shardNames: () => [...addresses.keys()].filter((n) => n.startsWith("shard:")),
    relistened(name, since, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (output.slice(since).some((l) => l.startsWith(`[${name}] `) && l.includes('"msg":"listening"'))) {
            unsubscribe();
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          unsubscribe();
          reject(new Error(`${name} did not listen again in ${timeoutMs} ms:\n${output.slice(-20).join("\n")}`));
        }, timeoutMs);
        const unsubscribe = mesh.onLine(check);
        check();
      });
    },
    stop: mesh.stop,
  };
}

/** Sends one chat completion with fetch and reads it to its end; returns a failure text, or undefined when it succeeded. */
export async function chatOnce(
  mesh: ReliabilityMesh,
  i: number,
  options: { stream: boolean; maxTokens?: number; signal?: AbortSignal },
): Promise<string | undefined> {
  const res = await fetch(`${mesh.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "tiny-llama",
      messages: [{ role: "user", content: `request ${i}` }],
      max_tokens: options.maxTokens ?? 4,
      ignore_eos: true,
      stream: options.stream,
    }),
    signal: options.signal,
  });
  const text = await res.text();
  if (res.status !== 200) return `${res.status} ${text.slice(0, 200)}`;
  if (options.stream && !text.trimEnd().endsWith("data: [DONE]")) return `stream without [DONE]: ${text.slice(-200)}`;
  if (options.stream && text.includes('"error"')) return `error event: ${text.slice(-200)}`;
  return undefined;
}

/** The benchmarks' percentile (0–100, numpy's interpolation), so the reliability reports and the benchmarks agree. */
export { percentile } from "../../tools/bench/stats.js";
