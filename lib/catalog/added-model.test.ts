import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../gguf/index.js";
import { AddedModelError, addedModelEntry, checkAddedModelFiles, MAX_ADDED_MODEL_JSON_BYTES, parseAddedModelEntry } from "./added-model.js";

describe("added models", () => {
  let dir: string;
  let gguf: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-added-"));
    gguf = path.join(dir, "m.gguf");
    await writeTinyModel(gguf);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function refusal(f: () => unknown): { param: string; message: string } {
    try {
      f();
    } catch (err) {
      if (err instanceof AddedModelError) return { param: err.param, message: err.message };
      throw err;
    }
    throw new Error("not refused");
  }

  it("builds one llama.cpp or one openai-upstream backend from the spec", () => {
    expect(addedModelEntry({ name: "org/m:1", model: gguf, replicas: 2, sequences: 3 }).backends).toEqual([
      expect.objectContaining({ name: "local", engine: "llama.cpp", model: gguf, replicas: 2, sequences: 3 }),
    ]);
    const up = addedModelEntry({ name: "u", upstream: "https://up.example/v1/", upstreamModel: "m", upstreamKeyEnv: "UP_KEY", tokenizer: gguf });
    expect(up.tokenizer).toBe(gguf);
    expect(up.backends).toEqual([
      expect.objectContaining({ engine: "openai-upstream", url: "https://up.example/v1", upstream_model: "m", api_key_env: "UP_KEY", replicas: 1 }),
    ]);
  });

  it("refuses bad names, paths, URLs and sizes, naming the field", () => {
    expect(refusal(() => addedModelEntry({ name: "", model: gguf })).param).toBe("name");
    expect(refusal(() => addedModelEntry({ name: "a b", model: gguf })).param).toBe("name");
    expect(refusal(() => addedModelEntry({ name: "x".repeat(129), model: gguf })).param).toBe("name");
    expect(refusal(() => addedModelEntry({ name: "a", model: gguf, upstream: "http://x/v1" })).message).toContain("exactly one");
    expect(refusal(() => addedModelEntry({ name: "a" })).message).toContain("exactly one");
    expect(refusal(() => addedModelEntry({ name: "a", model: "rel/m.gguf" })).message).toContain("absolute");
    expect(refusal(() => addedModelEntry({ name: "a", model: path.join(dir, "m.bin") })).message).toContain(".gguf");
    expect(refusal(() => addedModelEntry({ name: "a", model: "/".repeat(5_000) })).param).toBe("model");
    expect(refusal(() => addedModelEntry({ name: "a", model: gguf, replicas: 17 })).param).toBe("replicas");
    expect(refusal(() => addedModelEntry({ name: "a", model: gguf, replicas: 0 })).param).toBe("replicas");
    for (const url of ["ftp://x/v1", "file:///etc/passwd", "javascript:alert(1)", "not a url"]) {
      expect(refusal(() => addedModelEntry({ name: "a", upstream: url, tokenizer: gguf })).param).toBe("upstream");
    }
    expect(refusal(() => addedModelEntry({ name: "a", upstream: "http://u:p@x/v1", tokenizer: gguf })).message).toContain("credentials");
    expect(refusal(() => addedModelEntry({ name: "a", upstream: "http://x/v1" })).param).toBe("tokenizer");
    expect(refusal(() => addedModelEntry({ name: "a", upstream: "http://x/v1", tokenizer: gguf, upstreamKeyEnv: "A-B" })).param).toBe("upstream_key_env");
  });

  it("parses stored entries with the same rules, and refuses what only a hand-written entry could hold", () => {
    const ok = JSON.stringify({ name: "a", backends: [{ name: "local", engine: "llama.cpp", model: gguf }] });
    expect(parseAddedModelEntry(ok).name).toBe("a");
    expect(refusal(() => parseAddedModelEntry("{")).message).toContain("not JSON");
    expect(refusal(() => parseAddedModelEntry(" ".repeat(MAX_ADDED_MODEL_JSON_BYTES + 1))).message).toContain("larger");
    const withAddresses = JSON.stringify({ name: "a", backends: [{ name: "local", engine: "llama.cpp", model: gguf, addresses: ["10.0.0.1:1"] }] });
    expect(refusal(() => parseAddedModelEntry(withAddresses)).message).toContain("addresses");
    const sim = JSON.stringify({ name: "a", backends: [{ name: "s", engine: "sim" }] });
    expect(refusal(() => parseAddedModelEntry(sim)).message).toContain("cannot be added");
    const key = JSON.stringify({ name: "a", tokenizer: gguf, backends: [{ name: "u", engine: "openai-upstream", url: "http://x/v1", api_key: "secret" }] });
    expect(refusal(() => parseAddedModelEntry(key)).message).toContain("api_key");
  });

  it("checks that the files exist, are regular files, and that a GGUF is one", async () => {
    await expect(checkAddedModelFiles(addedModelEntry({ name: "a", model: gguf }))).resolves.toBeUndefined();
    await expect(checkAddedModelFiles(addedModelEntry({ name: "a", model: path.join(dir, "missing.gguf") }))).rejects.toThrow(/no such file/);
    const folder = path.join(dir, "folder.gguf");
    await (await import("node:fs/promises")).mkdir(folder);
    await expect(checkAddedModelFiles(addedModelEntry({ name: "a", model: folder }))).rejects.toThrow(/not a regular file/);
    const text = path.join(dir, "text.gguf");
    await writeFile(text, "hello");
    await expect(checkAddedModelFiles(addedModelEntry({ name: "a", model: text }))).rejects.toThrow(/not a GGUF/);
    await expect(checkAddedModelFiles(addedModelEntry({ name: "a", upstream: "http://x/v1", tokenizer: path.join(dir, "none.json") }))).rejects.toThrow(
      /no such file/,
    );
  });
});
