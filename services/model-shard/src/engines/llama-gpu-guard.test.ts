import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import type { Llama, LlamaGpuType } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { writeTinyModel } from "../../../../lib/gguf/index.js";
import { decideBackend, guardedLlama, runGpuProbe } from "./llama-gpu-guard.js";
import type { GpuGuardDeps, ProbeResult } from "./llama-gpu-guard.js";

function fakeLlama(gpu: LlamaGpuType): Llama & { disposed: boolean } {
  const llama = { gpu, disposed: false, dispose: async () => void (llama.disposed = true) };
  return llama as unknown as Llama & { disposed: boolean };
}

function deps(picked: LlamaGpuType, probe: ProbeResult): GpuGuardDeps & { made: Array<Llama & { disposed: boolean }> } {
  const made: Array<Llama & { disposed: boolean }> = [];
  return {
    made,
    getLlama: vi.fn(async (gpu) => {
      const llama = fakeLlama(gpu === false ? false : picked);
      made.push(llama);
      return llama;
    }),
    probe: vi.fn(async () => probe),
    warn: vi.fn(),
  };
}

describe("GPU guard: deciding the backend", () => {
  it("probes only an auto-picked GPU, and uses it when the probe passes", () => {
    expect(decideBackend("auto", false)).toEqual({ gpu: false, needsProbe: false });
    expect(decideBackend("auto", "cuda")).toEqual({ gpu: "cuda", needsProbe: true });
    expect(decideBackend("auto", "cuda", { ok: true })).toEqual({ gpu: "cuda", needsProbe: false });
    expect(decideBackend("cuda", "cuda")).toEqual({ gpu: "cuda", needsProbe: false });
    expect(decideBackend(false, false)).toEqual({ gpu: false, needsProbe: false });
  });

  it("falls back to the CPU when the probe dies, saying why", () => {
    const decision = decideBackend("auto", "cuda", { ok: false, reason: "killed by SIGABRT: the provided PTX was compiled with an unsupported toolchain" });
    expect(decision.gpu).toBe(false);
    expect(decision.reason).toMatch(/cuda backend failed a test decode.*unsupported toolchain.*CPU/);
  });

  it("disposes a GPU binding whose probe died and returns a CPU one, with a warning", async () => {
    const d = deps("cuda", { ok: false, reason: "killed by SIGABRT" });
    const { llama, verdict } = await guardedLlama({ gpu: "auto", model: "m.gguf" }, d);
    expect(llama.gpu).toBe(false);
    expect(verdict).toMatchObject({ gpu: false, probe: { ok: false } });
    expect(d.probe).toHaveBeenCalledWith("cuda", "m.gguf");
    expect(d.made[0].disposed).toBe(true);
    expect(d.getLlama).toHaveBeenLastCalledWith(false);
    expect(vi.mocked(d.warn).mock.calls[0][1]).toMatch(/GPU disabled.*SIGABRT/);
  });

  it("keeps a GPU whose probe passed", async () => {
    const d = deps("vulkan", { ok: true });
    const { llama, verdict } = await guardedLlama({ gpu: "auto", model: "m.gguf" }, d);
    expect(llama.gpu).toBe("vulkan");
    expect(verdict).toEqual({ gpu: "vulkan", probe: { ok: true } });
    expect(d.warn).not.toHaveBeenCalled();
  });

  it("skips the probe for an explicit gpu", async () => {
    const d = deps("cuda", { ok: false, reason: "x" });
    const { llama } = await guardedLlama({ gpu: "cuda", model: "m.gguf" }, d);
    expect(llama.gpu).toBe("cuda");
    expect(d.probe).not.toHaveBeenCalled();
  });

  it("runs no probe on this CPU machine: auto picks no GPU here", async () => {
    const probe = vi.fn(async (): Promise<ProbeResult> => ({ ok: true }));
    const { llama, verdict } = await guardedLlama(
      { gpu: "auto", model: "unused.gguf" },
      { getLlama: (gpu) => getLlama({ gpu, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error, progressLogs: false }), probe, warn: vi.fn() },
    );
    if (llama.gpu !== false) return; // a machine with a working GPU: nothing to check here
    expect(verdict).toEqual({ gpu: false });
    expect(probe).not.toHaveBeenCalled();
  });
});

describe("GPU guard: the probe child", () => {
  let dir: string;
  let modelPath: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "gpu-probe-"));
    modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes when the child loads the model and decodes a token (CPU backend here)", async () => {
    expect(await runGpuProbe(false, modelPath)).toEqual({ ok: true });
  });

  it("fails when the child aborts, naming the signal and the error line", async () => {
    const script = "process.stderr.write('CUDA error: the provided PTX was compiled with an unsupported toolchain\\n'); process.abort()";
    const result = await runGpuProbe("cuda", modelPath, { args: ["-e", script] });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/SIGABRT.*unsupported toolchain/);
  });

  it("fails when the backend cannot load, and when the child hangs", async () => {
    expect((await runGpuProbe("cuda", path.join(dir, "missing.gguf"), { args: ["-e", "process.exit(3)"] })).ok).toBe(false);
    const hung = await runGpuProbe("cuda", modelPath, { args: ["-e", "setInterval(() => {}, 1000)"], timeoutMs: 300 });
    expect(hung).toEqual({ ok: false, reason: "timed out after 300 ms" });
  });
});
