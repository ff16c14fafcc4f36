import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../lib/gguf/index.js";
import { GgufTokenizer } from "./gguf-tokenizer.js";

const CONVERSATIONS = [
  [{ role: "user", content: "Hello there, how are you?" }],
  [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Crème brûlée, 北京, emoji 🎉 and </s> inside." },
    { role: "assistant", content: "Noted." },
    { role: "user", content: "  leading and trailing spaces  " },
  ],
];

describe("GgufTokenizer", () => {
  let dir: string;
  let modelPath: string;
  let llama: Llama;
  let engineModel: LlamaModel;
  let tokenizer: GgufTokenizer;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-tok-"));
    modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });
    engineModel = await llama.loadModel({ modelPath });
    tokenizer = await GgufTokenizer.load(llama, modelPath);
  });

  afterAll(async () => {
    await engineModel?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("renders the chat template stored in the GGUF", () => {
    const prompt = tokenizer.renderChat([{ role: "user", content: "Hi" }], true);
    expect(prompt).toBe("<s><|user|>\nHi</s>\n<|assistant|>\n");
  });

  it.each(CONVERSATIONS.map((c, i) => [i, c] as const))("gives the engine's own token ids for conversation %i", (_i, messages) => {
    const prompt = tokenizer.renderChat(messages, true);
    const ours = tokenizer.tokenize(prompt, true);
    const engines = engineModel.tokenize(prompt, true);
    expect(ours).toEqual([...engines]);
    expect(ours[0]).toBe(engineModel.tokens.bos);
  });

  it("reads the context length from the GGUF metadata", () => {
    expect(tokenizer.contextLength).toBe(4096);
  });

  it("round-trips text through tokenize and detokenize", () => {
    const text = "Ünïcödé 日本語 ✓";
    expect(tokenizer.detokenize(tokenizer.tokenize(text, false))).toBe(text);
  });
});
