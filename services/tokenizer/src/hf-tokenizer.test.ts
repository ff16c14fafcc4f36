import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSchema } from "../../../lib/catalog/index.js";
import { writeTinyTokenizer } from "../../../test/fixtures/tiny-tokenizer.js";
import { loadTokenizers } from "./server.js";

describe("tokenizers from the catalog", () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "mesh-hf-"));
    file = await writeTinyTokenizer(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads a tokenizer.json with a named template; the rendered prompt's specials become single tokens", async () => {
    const up = { name: "up", engine: "openai-upstream", url: "http://127.0.0.1:1/v1" };
    const catalog = catalogSchema.parse({ models: [{ name: "m", template: "llama-2-chat", tokenizer: file, backends: [up] }] });
    const tokenizer = (await loadTokenizers(catalog)).get("m")!;
    expect(tokenizer.contextLength).toBe(4096);
    const prompt = tokenizer.renderChat([{ role: "user", content: "How many stars?" }], true);
    expect(prompt).toBe("<s>[INST] How many stars? [/INST]");
    const ids = tokenizer.tokenize(prompt, true);
    expect(ids.slice(0, 2)).toEqual([1, 3]); // <s> [INST], no second BOS
    expect(ids.at(-1)).toBe(4); // [/INST]
    expect(tokenizer.tokenize("How many stars?", false)[0]).toBe(1); // a raw completion prompt gets its BOS
    expect(tokenizer.detokenize(tokenizer.tokenize(" the galaxy ünïcode 星", true))).toBe(" the galaxy ünïcode 星");
  });

  it("refuses chat for a completion-only model, with FailedPrecondition", async () => {
    const catalog = catalogSchema.parse({
      models: [
        { name: "code", template: "completion-only", completion_only: true, tokenizer: file, context_length: 4096, backends: [{ name: "s", engine: "sim" }] },
      ],
    });
    const tokenizer = (await loadTokenizers(catalog)).get("code")!;
    const err = (() => {
      try {
        tokenizer.renderChat([{ role: "user", content: "x" }], true);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.FailedPrecondition);
    expect(tokenizer.tokenize("def f():", false).length).toBeGreaterThan(3);
  });

  it("counts words for a simulator-only model without a tokenizer file", async () => {
    const catalog = catalogSchema.parse({ models: [{ name: "s", backends: [{ name: "sim", engine: "sim", context_length: 1000 }] }] });
    const tokenizer = (await loadTokenizers(catalog)).get("s")!;
    expect(tokenizer.contextLength).toBe(1000);
    expect(tokenizer.tokenize("one two, three", false)).toHaveLength(4);
  });
});
