import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getLlama, LlamaLogLevel, readGgufFileInfo } from "node-llama-cpp";
import type { Llama, LlamaModel, Token } from "node-llama-cpp";
import { GgufWriter, TINY_CHAT_TEMPLATE, buildTinyVocab, writeTinyModel } from "./index.js";

const THREADS = 2;

let dir: string;
let llama: Llama;
let model: LlamaModel;
let modelPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tiny-gguf-"));
  modelPath = join(dir, "tiny.gguf");
  await writeTinyModel(modelPath, { seed: 7 });
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: THREADS });
  model = await llama.loadModel({ modelPath });
}, 60_000);

afterAll(async () => {
  await model?.dispose();
  await llama?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("tiny vocabulary", () => {
  it("has unk/bos/eos, 256 byte tokens and normal pieces with matching scores and types", () => {
    const v = buildTinyVocab();
    expect(v.tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
    expect(v.tokenTypes.slice(0, 3)).toEqual([2, 3, 3]);
    expect(v.tokens[3]).toBe("<0x00>");
    expect(v.tokens[258]).toBe("<0xFF>");
    expect(v.tokenTypes.slice(3, 259).every((t) => t === 6)).toBe(true);
    expect(v.tokens).toContain("\u2581the");
    expect(new Set(v.tokens).size).toBe(v.tokens.length);
    expect(v.scores.length).toBe(v.tokens.length);
    expect(v.tokenTypes.length).toBe(v.tokens.length);
  });
});

describe("GgufWriter", () => {
  it("writes the GGUF v3 magic and 32-byte aligned tensor data", async () => {
    const path = join(dir, "small.gguf");
    const w = new GgufWriter().addString("general.architecture", "x").addTensorF32("t", [3], () => new Float32Array([1, 2, 3]));
    const bytes = await w.write(path);
    const buf = await readFile(path);
    expect(bytes).toBe(buf.length);
    expect(buf.subarray(0, 4).toString("ascii")).toBe("GGUF");
    expect(buf.readUInt32LE(4)).toBe(3);
    expect(buf.length % 32).toBe(0);
    const header = w.encodeHeader();
    expect(header.length % 32).toBe(0);
    expect(buf.readFloatLE(header.length + 8)).toBe(3);
  });

  it("rejects tensor data whose length does not match the dims", async () => {
    const w = new GgufWriter().addTensorF32("t", [4], () => new Float32Array(3));
    await expect(w.write(join(dir, "bad.gguf"))).rejects.toThrow(/expected 4 elements/);
  });
});

describe("writeTinyModel", () => {
  it("writes a byte-identical file for the same seed and a different one for another seed", async () => {
    const a = await writeTinyModel(join(dir, "a.gguf"), { seed: 123 });
    const b = await writeTinyModel(join(dir, "b.gguf"), { seed: 123 });
    const c = await writeTinyModel(join(dir, "c.gguf"), { seed: 124 });
    expect(a.preset).toBe("tiny");
    expect(a.bytes).toBe((await stat(a.path)).size);
    expect(a.bytes).toBeLessThan(1_000_000);
    const [ba, bb, bc] = await Promise.all([readFile(a.path), readFile(b.path), readFile(c.path)]);
    expect(ba.equals(bb)).toBe(true);
    expect(bc.length).toBe(ba.length);
    expect(ba.equals(bc)).toBe(false);
  });

  it("exposes the chat template, special tokens and hyper-parameters to readGgufFileInfo", async () => {
    const info = await readGgufFileInfo(modelPath, { logWarnings: false });
    const md = info.metadata;
    expect(md.general.architecture).toBe("llama");
    expect(md.general.name).toBe("tiny-llama");
    expect(md.tokenizer.chat_template).toBe(TINY_CHAT_TEMPLATE);
    expect(md.tokenizer.ggml.bos_token_id).toBe(1);
    expect(md.tokenizer.ggml.eos_token_id).toBe(2);
    expect(md.tokenizer.ggml.add_bos_token).toBe(false);
    expect(info.architectureMetadata).toMatchObject({ embedding_length: 64, context_length: 4096, block_count: 2 });
    expect(info.tensorInfo?.length).toBe(3 + 2 * 9);
  });

  it("tokenizes ASCII, accented, emoji and Chinese text so that detokenize round-trips it", () => {
    const texts = ["Hello world, how are you?", "the cat is on the mat.", "café naïve résumé", "🙂👍🏽 ok", "你好，世界", "<|user|>\nhi"];
    for (const text of texts) {
      const tokens = model.tokenize(text);
      expect(tokens.length).toBeGreaterThan(0);
      expect(tokens).not.toContain(0); // never <unk>: byte fallback covers everything
      expect(model.detokenize(tokens)).toBe(text);
    }
    // Common words map to whole pieces rather than bytes.
    expect(model.tokenize("the")).toHaveLength(1);
  });

  it("generates about 20 tokens with a context sequence", async () => {
    const context = await model.createContext({ contextSize: 512, threads: THREADS });
    try {
      const sequence = context.getSequence();
      const generated: Token[] = [];
      for await (const token of sequence.evaluate(model.tokenize("Hello world"), { temperature: 0.8, seed: 1, yieldEogToken: true })) {
        generated.push(token);
        if (generated.length >= 20) break;
      }
      // Speed is the benchmarks' business (docs/benchmarks.md), not a test's.
      expect(generated.length).toBe(20);
      expect(typeof model.detokenize(generated)).toBe("string");
    } finally {
      await context.dispose();
    }
  });

  it("writes the bench preset (~110 MB), which loads fully and generates", async () => {
    const benchDir = await mkdtemp(join(tmpdir(), "tiny-gguf-bench-"));
    try {
      const res = await writeTinyModel(join(benchDir, "bench.gguf"), { preset: "bench", seed: 1 });
      expect(res.preset).toBe("bench");
      expect(res.bytes).toBeGreaterThan(100_000_000);
      expect(res.bytes).toBeLessThan(120_000_000);
      const bench = await llama.loadModel({ modelPath: res.path });
      try {
        expect(bench.fileInfo.metadata.general.name).toBe("tiny-llama-bench");
        const context = await bench.createContext({ contextSize: 256, threads: THREADS });
        try {
          const generated: Token[] = [];
          for await (const token of context.getSequence().evaluate(bench.tokenize("Hello"), { yieldEogToken: true })) {
            generated.push(token);
            if (generated.length >= 2) break;
          }
          expect(generated).toHaveLength(2);
        } finally {
          await context.dispose();
        }
      } finally {
        await bench.dispose();
      }
    } finally {
      await rm(benchDir, { recursive: true, force: true });
    }
  }, 120_000);
});
