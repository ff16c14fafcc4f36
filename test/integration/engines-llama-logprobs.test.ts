import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSchema } from "../../lib/catalog/index.js";
import type { LlamaCppBackend } from "../../lib/catalog/index.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { SamplingParamsSchema } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import type { EngineLogprob } from "../../services/model-shard/src/engine.js";
import { LlamaCppEngine } from "../../services/model-shard/src/engines/llama-cpp-engine.js";
import { logprobOf } from "../../services/model-shard/src/engines/llama-logprobs.js";

const PROMPT = [1, 300, 301, 302] as Token[];

interface Generated {
  text: string;
  tokens: number[];
  logprobs: EngineLogprob[] | undefined;
}

async function generate(engine: LlamaCppEngine, sampling: MessageInitShape<typeof SamplingParamsSchema>): Promise<Generated> {
  const gen = engine.generate(
    {
      requestId: "lp",
      promptTokenIds: PROMPT,
      messages: [],
      prompt: "",
      sampling: create(SamplingParamsSchema, { maxTokens: 24, ignoreEos: true, ...sampling }),
    },
    new AbortController().signal,
  );
  let text = "";
  const tokens: number[] = [];
  let logprobs: EngineLogprob[] | undefined;
  for (;;) {
    const next = await gen.next();
    if (next.done) return { text, tokens, logprobs };
    text += next.value.text;
    tokens.push(...next.value.tokenIds);
    if (next.value.logprobs) (logprobs ??= []).push(...next.value.logprobs);
  }
}

/** Entries spell the text, and each run of entries (tokens of one character: "" then the text) has bytes that decode to its text. */
function expectSpelled(text: string, entries: readonly EngineLogprob[]): void {
  expect(entries.map((e) => e.token).join("")).toBe(text);
  let run: Uint8Array[] = [];
  for (const e of entries) {
    run.push(e.bytes);
    if (e.token === "") continue;
    expect(Buffer.concat(run).toString("utf8")).toBe(e.token);
    run = [];
  }
}

describe("llama.cpp engine: logprobs are llama.cpp's own probabilities", () => {
  let dir: string;
  let engine: LlamaCppEngine;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-logprobs-"));
    const modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
    const entry = { name: "l", engine: "llama.cpp", model: modelPath, gpu: false, threads: 1, sequences: 2, context_size: 2 * 256 };
    const backend = catalogSchema.parse({ models: [{ name: "t", backends: [entry] }] }).models[0].backends[0] as LlamaCppBackend;
    engine = await LlamaCppEngine.create("t", backend);
  });
  afterAll(async () => {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reports nothing unless asked", async () => {
    const { logprobs } = await generate(engine, { temperature: 0 });
    expect(logprobs).toBeUndefined();
  });

  it("greedy: each entry is ln of the probability node-llama-cpp's evaluateWithMetadata gives the same token, alternatives its top entries", async () => {
    const { text, tokens, logprobs } = await generate(engine, { temperature: 0, logprobs: true, topLogprobs: 3 });
    expect(tokens).toHaveLength(24);
    expectSpelled(text, logprobs!);
    if (process.env.DEBUG_LOGPROBS) console.log(JSON.stringify(logprobs!.map((e) => [e.token, Array.from(e.bytes)])));
    // The reference: a fresh context on the same weights, the same prompt, greedy, every candidate's probability.
    const context = await engine.model.createContext({ sequences: 1, contextSize: 256, threads: 1 });
    try {
      const reference: { token: Token; probabilities: Map<Token, number> }[] = [];
      for await (const out of context.getSequence().evaluateWithMetadata(PROMPT, { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
        reference.push(out);
        if (reference.length === tokens.length) break;
      }
      expect(reference.map((r) => r.token)).toEqual(tokens);
      // No end-of-generation token came out here, so there is one entry per token.
      expect(logprobs).toHaveLength(tokens.length);
      for (const [i, entry] of logprobs!.entries()) {
        const top = [...reference[i].probabilities.entries()].slice(0, 3);
        expect(entry.logprob).toBeCloseTo(logprobOf(reference[i].probabilities.get(tokens[i] as Token)!), 5);
        expect(entry.topLogprobs.map((t) => t.logprob)).toEqual(top.map(([, p]) => expect.closeTo(logprobOf(p), 5)));
        // Greedy: the sampled token is the likeliest.
        expect(entry.logprob).toBe(entry.topLogprobs[0].logprob);
        // Past the first token (whose leading space the detokenizer drops), a whole token's text is its alternative's text.
        if (i > 0 && entry.token && !entry.token.includes("\uFFFD") && logprobs![i - 1].token !== "") expect(entry.topLogprobs[0].token).toBe(entry.token);
      }
    } finally {
      await context.dispose();
    }
  });

  it("sampling: the sampled token's logprob is its probability after temperature and top-k/top-p, alternatives sorted", async () => {
    const { text, logprobs } = await generate(engine, { temperature: 1, seed: 3, logprobs: true, topLogprobs: 5 });
    expectSpelled(text, logprobs!);
    for (const entry of logprobs!) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.topLogprobs).toHaveLength(5);
      const values = entry.topLogprobs.map((t) => t.logprob);
      expect(values).toEqual([...values].sort((a, b) => b - a));
      expect(entry.logprob).toBeLessThanOrEqual(values[0]);
    }
  });

  it("logprobs alone (no alternatives) asks only for the sampled token's probability, and the numbers match the full run", async () => {
    const full = await generate(engine, { temperature: 0, logprobs: true, topLogprobs: 2 });
    const alone = await generate(engine, { temperature: 0, logprobs: true });
    expect(alone.text).toBe(full.text);
    expect(alone.logprobs!.every((e) => e.topLogprobs.length === 0)).toBe(true);
    expect(alone.logprobs!.map((e) => e.logprob)).toEqual(full.logprobs!.map((e) => expect.closeTo(e.logprob, 5)));
  });

  it("under a JSON grammar the entries spell the shown JSON (the trailing newlines are not shown, nor their entries)", async () => {
    const { text, logprobs } = await generate(engine, { temperature: 1, seed: 5, jsonSchema: "{}", maxTokens: 40, logprobs: true });
    expectSpelled(text, logprobs!);
  });
});
