/**
 * A GPU backend that node-llama-cpp picks with `gpu: "auto"` can load and
 * still abort the whole process at the first llama_decode: node-llama-cpp
 * 3.22.1's prebuilt CUDA binary ships PTX from CUDA 13.1 for sm_90, which a
 * CUDA 13.0 driver (580) refuses ("the provided PTX was compiled with an
 * unsupported toolchain"). So before an auto-picked GPU is used in process,
 * a child process loads the model on it and decodes one token; if the child
 * dies, the shard runs on the CPU and says why. An explicit `gpu` skips the
 * probe: the operator asked for that backend.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { Llama, LlamaGpuType } from "node-llama-cpp";
import type { LlamaCppBackend } from "../../../../lib/catalog/index.js";

/** How long the probe may take (loading one layer of a large model included). */
export const GPU_PROBE_TIMEOUT_MS = 120_000;

/** What a probe child reported. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** The backend chosen and why. */
export interface GpuVerdict {
  /** The backend in use: a GPU type, or false for the CPU. */
  gpu: LlamaGpuType;
  /** Whether a probe ran, and its result. */
  probe?: ProbeResult;
  /** Set when an auto-picked GPU was rejected. */
  fallbackReason?: string;
}

/** What `guardedLlama` needs from the outside (tests pass fakes). */
export interface GpuGuardDeps {
  getLlama(gpu: LlamaCppBackend["gpu"]): Promise<Llama>;
  probe(gpu: LlamaGpuType, modelPath: string): Promise<ProbeResult>;
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * The decision alone: given what was asked for, what getLlama picked and
 * (when one ran) the probe's result, which backend to use.
 */
export function decideBackend(
  requested: LlamaCppBackend["gpu"],
  picked: LlamaGpuType,
  probe?: ProbeResult,
): { gpu: LlamaGpuType; needsProbe: boolean; reason?: string } {
  if (requested !== "auto" || picked === false) return { gpu: picked, needsProbe: false };
  if (!probe) return { gpu: picked, needsProbe: true };
  if (probe.ok) return { gpu: picked, needsProbe: false };
  return { gpu: false, needsProbe: false, reason: `the ${picked} backend failed a test decode in a child process (${probe.reason}); running on the CPU` };
}

/**
 * The llama binding for a backend: getLlama as asked, and for `gpu: "auto"`
 * that picked a GPU, a probe in a child process first; a failed probe
 * disposes the GPU binding and returns a CPU one, with a warning.
 */
export async function guardedLlama(backend: Pick<LlamaCppBackend, "gpu" | "model">, deps: GpuGuardDeps): Promise<{ llama: Llama; verdict: GpuVerdict }> {
  const llama = await deps.getLlama(backend.gpu);
  const first = decideBackend(backend.gpu, llama.gpu);
  if (!first.needsProbe) return { llama, verdict: { gpu: llama.gpu } };
  const probe = await deps.probe(llama.gpu, backend.model);
  const decision = decideBackend(backend.gpu, llama.gpu, probe);
  if (decision.gpu !== false) return { llama, verdict: { gpu: decision.gpu, probe } };
  deps.warn(
    { gpu: llama.gpu, reason: probe.ok ? undefined : probe.reason },
    `GPU disabled: ${decision.reason}. Set gpu: false to skip this probe, or gpu: "${llama.gpu}" to force the GPU.`,
  );
  await llama.dispose();
  return { llama: await deps.getLlama(false), verdict: { gpu: false, probe, fallbackReason: decision.reason } };
}

/** The child's program: load the model with one layer on `gpu`, decode one token, exit 0. */
const PROBE_SCRIPT = `
const [lib, gpuName, modelPath] = process.argv.slice(-3);
const gpu = gpuName === "false" ? false : gpuName;
const { getLlama, LlamaLogLevel } = await import(lib);
const llama = await getLlama({ gpu, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error, progressLogs: false });
if (llama.gpu !== gpu) throw new Error("backend " + gpu + " did not load (got " + llama.gpu + ")");
const model = await llama.loadModel({ modelPath, gpuLayers: 1 });
const context = await model.createContext({ contextSize: Math.min(256, model.trainContextSize), sequences: 1 });
const first = model.tokens.bos ?? model.tokenize("a")[0];
const tokens = context.getSequence().evaluate([first], { temperature: 0 });
await tokens.next();
process.stdout.write("probe-ok\\n");
process.exit(0);
`;

/**
 * Runs the probe in a child process (`command` and `args` replace node and
 * the probe script, for tests). A child killed by a signal, exiting non-zero,
 * not saying "probe-ok" or running past the timeout fails the probe.
 */
export function runGpuProbe(gpu: LlamaGpuType, modelPath: string, opts: { timeoutMs?: number; command?: string; args?: string[] } = {}): Promise<ProbeResult> {
  const lib = pathToFileURL(createRequire(import.meta.url).resolve("node-llama-cpp")).href;
  // A file, not `node -e`: node-llama-cpp tests its binary in a child of its own, which fails under -e.
  const dir = mkdtempSync(path.join(os.tmpdir(), "llama-gpu-probe-"));
  const script = path.join(dir, "probe.mjs");
  writeFileSync(script, PROBE_SCRIPT);
  const command = opts.command ?? process.execPath;
  const args = opts.args ?? [script, lib, String(gpu), modelPath];
  return probeChild(command, args, opts.timeoutMs ?? GPU_PROBE_TIMEOUT_MS).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function probeChild(command: string, args: string[], timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `could not start: ${err.message}` });
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const tail = telling(stderr);
      if (code === 0 && stdout.includes("probe-ok")) resolve({ ok: true });
      else if (timedOut) resolve({ ok: false, reason: `timed out after ${timeoutMs} ms` });
      else if (signal) resolve({ ok: false, reason: `killed by ${signal}${tail ? `: ${tail}` : ""}` });
      else resolve({ ok: false, reason: `exited with ${code}${tail ? `: ${tail}` : ""}` });
    });
  });
}

/** The stderr line that says most: the last one naming an error, else the last one. */
function telling(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.findLast((l) => /error|unsupported|fail/i.test(l)) ?? lines.at(-1) ?? "").slice(0, 300);
}
