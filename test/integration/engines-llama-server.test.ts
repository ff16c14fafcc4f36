import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { findLlamaServer, LLAMA_SERVER_HINT } from "../../lib/llama-server/index.js";
import { SamplingParamsSchema } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Engine, EngineLogprob, EngineResult } from "../../services/model-shard/src/engine.js";
import { LlamaCppEngine } from "../../services/model-shard/src/engines/llama-cpp-engine.js";
import { LlamaServerEngine } from "../../services/model-shard/src/engines/llama-server-engine.js";
import { until } from "../support/until.js";
import { alive } from "../support/alive.js";
import { llamaBackend } from "../support/llama-backend.js";

// .ci/run builds the binary (`llm-mesh llama-server build`), so CI always runs these.
const BINARY = findLlamaServer();
const PROMPT = [1, 20, 30, 40];

interface Run {
  ids: number[];
  text: string;
  result: EngineResult;
}

async function generate(
  engine: Engine,
  sampling: MessageInitShape<typeof SamplingParamsSchema>,
  signal = new AbortController().signal,
  prompt = PROMPT,
): Promise<Run> {
  const gen = engine.generate(
    { requestId: "t", promptTokenIds: prompt, messages: [], prompt: "", sampling: create(SamplingParamsSchema, { temperature: 0, ...sampling }) },
    signal,
  );
  const run = { ids: [] as number[], text: "" };
  for (;;) {
    const next = await gen.next();
    if (next.done) return { ...run, result: next.value };
    run.ids.push(...next.value.tokenIds);
    run.text += next.value.text;
  }
}

describe.skipIf(!BINARY)(`llama.cpp engine on the llama-server runtime (skipped when llama-server is not built: ${LLAMA_SERVER_HINT})`, () => {
  let dir: string;
  let modelPath: string;
  let engine: LlamaServerEngine;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-llama-server-"));
    modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
    engine = await LlamaServerEngine.create("t", llamaBackend(modelPath, { runtime: "llama-server", sequences: 2, context_size: 2 * 256 }));
  });
  afterAll(async () => {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("describes itself as the in-process runtime would: a slot per sequence, each with its share of the context", () => {
    expect(engine.info).toMatchObject({ engine: "llama-server", model: "t", maxSequences: 2, contextLength: 256 });
  });

  it("generates the same greedy tokens as node-llama-cpp on the same GGUF (the same llama.cpp release)", async () => {
    const served = await generate(engine, { maxTokens: 16, ignoreEos: true });
    expect(served.result).toEqual({ finishReason: "length", promptTokens: PROMPT.length, completionTokens: 16 });
    expect(served.ids).toHaveLength(16);
    const inProcess = await LlamaCppEngine.create("t", llamaBackend(modelPath, { sequences: 1, context_size: 256 }));
    try {
      const reference = await generate(inProcess, { maxTokens: 16, ignoreEos: true });
      expect(served.ids).toEqual(reference.ids);
      expect(served.text.replace(/\uFFFD/g, "")).toEqual(reference.text.replace(/\uFFFD/g, ""));
    } finally {
      await inProcess.close();
    }
  });

  it("frees the slot of a cancelled or abandoned request: both slots serve again afterwards", async () => {
    for (let i = 0; i < 3; i++) {
      const abort = new AbortController();
      const gen = engine.generate(
        {
          requestId: `c${i}`,
          promptTokenIds: PROMPT,
          messages: [],
          prompt: "",
          sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens: 200, ignoreEos: true }),
        },
        abort.signal,
      );
      expect((await gen.next()).done).toBe(false);
      abort.abort();
      let last = await gen.next();
      while (!last.done) last = await gen.next();
      expect(last.value.finishReason).toBe("cancelled");
    }
    // A consumer that stops reading (a stop sequence in the shard) ends the request too.
    const gen = engine.generate(
      {
        requestId: "r",
        promptTokenIds: PROMPT,
        messages: [],
        prompt: "",
        sampling: create(SamplingParamsSchema, { temperature: 0, maxTokens: 200, ignoreEos: true }),
      },
      new AbortController().signal,
    );
    await gen.next();
    await gen.return({ finishReason: "stop", promptTokens: 0, completionTokens: 0 });
    const both = await Promise.all([generate(engine, { maxTokens: 8, ignoreEos: true }), generate(engine, { maxTokens: 8, ignoreEos: true })]);
    expect(both.map((r) => r.result.completionTokens)).toEqual([8, 8]);
  });

  it("constrains output to a JSON schema", async () => {
    const schema = { type: "object", properties: { pick: { enum: ["red", "green"] } }, required: ["pick"], additionalProperties: false };
    const run = await generate(engine, { maxTokens: 48, temperature: 1, seed: 7, jsonSchema: JSON.stringify(schema) });
    const parsed = JSON.parse(run.text) as { pick: string };
    expect(["red", "green"]).toContain(parsed.pick);
    expect(Object.keys(parsed)).toEqual(["pick"]);
  });

  for (const temperature of [0, 1]) {
    it(`reports logprobs whose entries spell the text, with sorted alternatives (temperature ${temperature})`, async () => {
      const gen = engine.generate(
        {
          requestId: "lp",
          promptTokenIds: PROMPT,
          messages: [],
          prompt: "",
          sampling: create(SamplingParamsSchema, { temperature, seed: 3, maxTokens: 12, ignoreEos: true, logprobs: true, topLogprobs: 3 }),
        },
        new AbortController().signal,
      );
      let text = "";
      let tokens = 0;
      const ids: number[] = [];
      const entries: EngineLogprob[] = [];
      for (let next = await gen.next(); !next.done; next = await gen.next()) {
        text += next.value.text;
        tokens += next.value.tokenCount ?? 0;
        ids.push(...next.value.tokenIds);
        entries.push(...(next.value.logprobs ?? []));
      }
      expect(tokens).toBe(12);
      // One entry per token llama-server names (a character split across tokens is named once: llama-server-logprobs.ts).
      expect(entries).toHaveLength(ids.length);
      expect(entries.length).toBeGreaterThan(6);
      expect(entries.map((e) => e.token).join("")).toBe(text);
      for (const entry of entries) {
        expect(entry.logprob).toBeLessThanOrEqual(0);
        expect(entry.topLogprobs.length).toBeGreaterThan(0);
        expect(entry.topLogprobs.length).toBeLessThanOrEqual(3);
        const values = entry.topLogprobs.map((t) => t.logprob);
        expect([...values].sort((a, b) => b - a)).toEqual(values);
        // Greedy picks the most likely token: its logprob is the first alternative's.
        if (temperature === 0) expect(entry.logprob).toBeCloseTo(values[0], 5);
      }
    });
  }

  it("refuses prompts past the context with InvalidArgument", async () => {
    const tooLong = await generate(
      engine,
      { maxTokens: 250 },
      undefined,
      Array.from({ length: 10 }, (_, i) => i + 1),
    ).catch((err: unknown) => err);
    expect((tooLong as ConnectError).code).toBe(Code.InvalidArgument);
    expect((tooLong as ConnectError).rawMessage).toMatch(/exceeds the context length 256/);
  });

  it("starts llama-server again after it dies; requests meanwhile fail with Unavailable, not a hang", async () => {
    const pid = engine.serverPid;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, "SIGKILL");
    await until(() => engine.serverPid === undefined, 5_000);
    const during = await generate(engine, { maxTokens: 4 }).catch((err: unknown) => err);
    // Either refused while it is down, or already served by the new one.
    if (during instanceof ConnectError) expect(during.code).toBe(Code.Unavailable);
    await until(() => engine.serverPid !== undefined, 30_000);
    expect(engine.serverPid).not.toBe(pid);
    const after = await generate(engine, { maxTokens: 8, ignoreEos: true });
    expect(after.result.completionTokens).toBe(8);
  });

  // The child runs the build in dist/ (npm test builds first).
  it("leaves no llama-server behind when its shard is killed with SIGKILL (the watchdog stops it)", () => {
    const script = `
      const { startLlamaServerProcess } = await import(${JSON.stringify(new URL("../../dist/lib/llama-server/index.js", import.meta.url).href)});
      const s = await startLlamaServerProcess({ binary: ${JSON.stringify(BINARY)}, model: ${JSON.stringify(modelPath)}, slots: 1, threads: 1, contextSize: 256 });
      process.stdout.write(String(s.serverPid()));
      process.kill(process.pid, "SIGKILL");`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    const pid = Number(child.stdout);
    expect(child.signal).toBe("SIGKILL");
    expect(pid).toBeGreaterThan(0);
    return until(() => !alive(pid), 10_000);
  });
});
