import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import type { ChildProcess } from "node:child_process";
import { freePort } from "../runtime/free-port.js";

/** How long llama-server may take to load the model and answer /health. */
const START_TIMEOUT_MS = 60_000;
/** How long a stopped llama-server gets before SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;
/** Lines of its stderr kept to explain a failed start or an exit. */
const STDERR_TAIL_LINES = 40;

/** How a llama-server is started. */
export interface LlamaServerProcessOptions {
  binary: string;
  model: string;
  /** Parallel slots (`-np`): each one sequence of continuous batching. */
  slots: number;
  /** Threads for a batch of one token (`-t`). */
  threads: number;
  /** Threads for a batch of several tokens: prompts, several slots' next tokens (`-tb`); default: `threads`. */
  threadsBatch?: number;
  /** Total context (all slots), tokens (`-c`). */
  contextSize: number;
  /** Layers on the GPU (`-ngl`); 0 keeps it on the CPU. */
  gpuLayers?: number;
}

/** A running llama-server child on a loopback port. */
export interface LlamaServerProcess {
  /** http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  args: string[];
  /** The watchdog shell (see WATCHDOG); its exit is llama-server's. */
  child: ChildProcess;
  /** llama-server's own process id (the watchdog's child), where /proc tells. */
  serverPid(): number | undefined;
  /** The last lines it wrote to stderr. */
  stderrTail(): string;
  /** SIGTERM (through the watchdog), then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

/** A model at least this wide (its embedding length) gives every thread of a multi-token batch enough work. */
export const BATCH_THREADS_MIN_EMBEDDING = 256;

/**
 * The default of `-tb`, the threads for a batch of several tokens (a prompt, several slots' next
 * tokens): every core for a model of a real size, where each thread's share of a batch outweighs
 * llama.cpp's barrier between graph nodes; `threads` for a narrower one (the 64-wide test model,
 * whose batches are too small to split). Measured on 2 cores (docs/models.md): the 512-wide bench
 * preset at 8 streams +18 to +33 % through the mesh with 2 batch threads, the test model −13 %.
 */
export function defaultBatchThreads(embeddingLength: number, threads: number, cores = os.availableParallelism()): number {
  return embeddingLength >= BATCH_THREADS_MIN_EMBEDDING ? Math.max(threads, cores) : threads;
}

/** The command-line arguments for `o` on `port`. */
export function llamaServerArgs(o: LlamaServerProcessOptions, port: number): string[] {
  return [
    ...["-m", o.model, "--host", "127.0.0.1", "--port", String(port)],
    ...["-np", String(o.slots), "-t", String(o.threads), "-tb", String(o.threadsBatch ?? o.threads), "-c", String(o.contextSize)],
    ...["-ngl", String(o.gpuLayers ?? 0)],
    "--no-webui",
    // Warnings and errors only: its per-request info lines cost both processes CPU on the token path.
    ...["-lv", "2"],
  ];
}

/** Starts llama-server on a free loopback port and waits until /health answers 200 (model loaded). */
export async function startLlamaServerProcess(o: LlamaServerProcessOptions): Promise<LlamaServerProcess> {
  const port = await freePort();
  const args = llamaServerArgs(o, port);
  // Started through a watchdog shell that holds our end of a pipe: when this process goes away, even
  // by SIGKILL, the pipe closes and the watchdog stops llama-server, so no server outlives its shard.
  const child = spawn("sh", ["-c", WATCHDOG, o.binary, ...args], { stdio: ["pipe", "ignore", "pipe"] });
  const tail: string[] = [];
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    tail.push(...chunk.split("\n").filter(Boolean));
    if (tail.length > STDERR_TAIL_LINES) tail.splice(0, tail.length - STDERR_TAIL_LINES);
  });
  const url = `http://127.0.0.1:${port}`;
  const running: LlamaServerProcess = {
    url,
    args,
    child,
    serverPid: () => childPids(child.pid)[0],
    stderrTail: () => tail.join("\n"),
    stop: () => stopChild(child),
  };
  try {
    await waitHealthy(url, child);
  } catch (err) {
    child.stdin?.destroy();
    child.kill("SIGKILL");
    throw new Error(`llama-server did not start: ${(err as Error).message}\n${running.stderrTail().slice(-2000)}`, { cause: err });
  }
  return running;
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));
  while (Date.now() < deadline) {
    if (spawnError) throw spawnError;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode})`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no healthy /health within ${START_TIMEOUT_MS} ms`);
}

/**
 * Runs llama-server ("$0" "$@") in the background and waits for it; a
 * second background job reads stdin (as fd 3: a background job's own stdin is /dev/null) to its end (our pipe closing: a stop, or
 * this process gone) and then sends SIGTERM, and SIGKILL 5 s later.
 */
const WATCHDOG = `exec 3<&0
"$0" "$@" </dev/null 3<&- &
server=$!
{ while read -r _ <&3; do :; done; kill -TERM "$server" 2>/dev/null; sleep ${STOP_TIMEOUT_MS / 1000}; kill -KILL "$server" 2>/dev/null; } &
wait "$server"`;

/** Closes the watchdog's pipe (it stops llama-server) and waits for the exit; SIGKILL for the shell if it hangs. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    child.stdin?.destroy();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS * 2);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.stdin?.end();
  });
}

/** Process ids of a process's children (Linux /proc; empty elsewhere or when it is gone). */
function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
