import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSchema } from "../../lib/catalog/index.js";
import type { LlamaCppBackend } from "../../lib/catalog/index.js";
import { Code, ConnectError, errorDetails } from "../../lib/errors.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { SamplingParamsSchema } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { LlamaCppEngine } from "../../services/model-shard/src/engines/llama-cpp-engine.js";
import {
  MAX_SCHEMA_BYTES,
  MAX_SCHEMA_DEPTH,
  MAX_SCHEMA_ENUM_VALUES,
  MAX_SCHEMA_PROPERTIES,
} from "../../services/model-shard/src/engines/llama-json-grammar.js";

async function complete(engine: LlamaCppEngine, jsonSchema: string, maxTokens: number, seed = 1): Promise<{ text: string; finishReason: string }> {
  const gen = engine.generate(
    {
      requestId: "j",
      promptTokenIds: [1, 300, 301],
      messages: [],
      prompt: "",
      sampling: create(SamplingParamsSchema, { temperature: 1, seed, maxTokens, jsonSchema }),
    },
    new AbortController().signal,
  );
  let text = "";
  for (;;) {
    const next = await gen.next();
    if (next.done) return { text, finishReason: next.value.finishReason };
    text += next.value.text;
  }
}

/** Whether `text` can be continued into valid JSON (a prefix of some JSON text). */
function isJsonPrefix(text: string): boolean {
  for (const tail of [
    "",
    '"',
    "}",
    '"}',
    "]}",
    '"]}',
    "0}",
    ":0}",
    '":0}',
    "null}",
    "]",
    '"]',
    "}}",
    '"}}',
    "}]}",
    "e}",
    "ull}",
    "ll}",
    "l}",
    "rue}",
    "ue}",
    "alse}",
    "lse}",
    "se}",
  ]) {
    for (const close of ["", "}", "}}", "]}", "}]}", "}}}"]) {
      try {
        JSON.parse(text + tail + close);
        return true;
      } catch {
        // try the next completion
      }
    }
  }
  return false;
}

describe("llama.cpp engine: structured output through grammars", () => {
  let dir: string;
  let engine: LlamaCppEngine;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-json-"));
    const modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
    const backend = catalogSchema.parse({
      models: [{ name: "t", backends: [{ name: "l", engine: "llama.cpp", model: modelPath, gpu: false, threads: 1, sequences: 2, context_size: 2 * 256 }] }],
    }).models[0].backends[0] as LlamaCppBackend;
    engine = await LlamaCppEngine.create("t", backend);
  });
  afterAll(async () => {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("json_object: the text is a JSON object (or, cut at max_tokens, the start of one)", async () => {
    for (const seed of [1, 2, 3]) {
      const { text, finishReason } = await complete(engine, "{}", 120, seed);
      expect(text.trimStart().startsWith("{")).toBe(true);
      if (finishReason === "stop") expect(typeof JSON.parse(text)).toBe("object");
      else expect(isJsonPrefix(text)).toBe(true);
    }
  });

  it("json_schema: an enum field takes one of the enum values", async () => {
    const schema = { type: "object", properties: { color: { enum: ["red", "green", "blue"] }, ok: { type: "boolean" } }, required: ["color", "ok"] };
    for (const seed of [1, 2, 3]) {
      const { text, finishReason } = await complete(engine, JSON.stringify(schema), 60, seed);
      expect(finishReason).toBe("stop");
      const value = JSON.parse(text) as { color: string; ok: boolean };
      expect(["red", "green", "blue"]).toContain(value.color);
      expect(typeof value.ok).toBe("boolean");
    }
  });

  it("rejects a schema that cannot become a grammar, naming response_format", async () => {
    for (const bad of ["[1]", "not json", '{"foo": 1}']) {
      const error = await complete(engine, bad, 8).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
      expect(errorDetails(error as ConnectError).param).toBe("response_format");
    }
  });

  it("refuses a schema past a size limit before compiling it, naming the limit", async () => {
    const nested = (depth: number): unknown => (depth === 0 ? { type: "string" } : { type: "array", items: nested(depth - 1) });
    const cases: Array<[unknown, string]> = [
      [{ type: "object", properties: { a: { enum: Array.from({ length: 50_000 }, (_, i) => `v${i}`) } } }, `${MAX_SCHEMA_BYTES} bytes`],
      [
        { type: "object", properties: { a: { enum: Array.from({ length: MAX_SCHEMA_ENUM_VALUES + 1 }, (_, i) => i) } } },
        `${MAX_SCHEMA_ENUM_VALUES} enum values`,
      ],
      [
        { type: "object", properties: Object.fromEntries(Array.from({ length: MAX_SCHEMA_PROPERTIES + 1 }, (_, i) => [`p${i}`, { type: "integer" }])) },
        `${MAX_SCHEMA_PROPERTIES} properties`,
      ],
      [nested(MAX_SCHEMA_DEPTH + 1), `${MAX_SCHEMA_DEPTH} levels`],
    ];
    for (const [schema, limit] of cases) {
      const error = await complete(engine, JSON.stringify(schema), 8).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
      expect((error as ConnectError).rawMessage).toContain(limit);
      expect(errorDetails(error as ConnectError)).toEqual({ reason: "schema_too_large", param: "response_format" });
    }
  });

  it("accepts a schema at the enum limit and keeps its compiled grammar for the next request", async () => {
    const schema = JSON.stringify({
      type: "object",
      properties: { n: { enum: Array.from({ length: MAX_SCHEMA_ENUM_VALUES }, (_, i) => `v${i}`) } },
      required: ["n"],
    });
    const first = await complete(engine, schema, 40, 1);
    const second = await complete(engine, schema, 40, 1);
    expect(second).toEqual(first);
    if (first.finishReason === "stop") expect((JSON.parse(first.text) as { n: string }).n).toMatch(/^v\d+$/);
  });
});
