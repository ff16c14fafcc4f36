import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { promptFormat } from "../templates/index.js";
import { catalogSchema } from "./index.js";

const SEED = fileURLToPath(new URL("../../catalog/seed-models.yaml", import.meta.url));

describe("catalog", () => {
  it("ships the seed's five models with their prompt formats and context lengths", () => {
    const catalog = catalogSchema.parse(parse(readFileSync(SEED, "utf8")));
    const byName = Object.fromEntries(catalog.models.map((m) => [m.name, m]));
    expect(Object.keys(byName).sort()).toEqual([
      "codellama-34b-instruct",
      "llama-2-13b-chat",
      "llama-2-70b-chat",
      "mistral-7b-instruct",
      "replit-code-v1.5-3b",
    ]);
    expect(byName["mistral-7b-instruct"]).toMatchObject({ template: "mistral-instruct", context_length: 8192 });
    expect(byName["llama-2-13b-chat"]).toMatchObject({ template: "llama-2-chat", context_length: 4096 });
    expect(byName["llama-2-70b-chat"]).toMatchObject({ template: "llama-2-chat", context_length: 4096 });
    expect(byName["codellama-34b-instruct"]).toMatchObject({ template: "codellama-instruct", context_length: 16384 });
    expect(byName["replit-code-v1.5-3b"]).toMatchObject({ completion_only: true, context_length: 4096 });
    for (const model of catalog.models) expect(promptFormat(model.template!)).toBeDefined();
  });

  it("names the path and the problem of an invalid entry", () => {
    const result = catalogSchema.safeParse({
      models: [
        { name: "a", template: "chatml-typo", backends: [{ name: "x", engine: "llama.cpp", model: "a.gguf" }] },
        { name: "b", backends: [{ name: "up", engine: "openai-upstream", url: "http://127.0.0.1:1/v1" }] },
        { name: "c", backends: [{ name: "s", engine: "sim", max_batch: 0 }] },
        { name: "d", backends: [{ name: "q", engine: "tensorrt" }] },
      ],
    });
    expect(result.success).toBe(false);
    const issues = result.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^models\.0\.template: unknown template "chatml-typo"/),
        expect.stringMatching(/^models\.1\.tokenizer: required when no backend is llama.cpp/),
        expect.stringMatching(/^models\.2\.backends\.0\.max_batch: /),
        expect.stringMatching(/^models\.3\.backends\.0\.engine: /),
      ]),
    );
  });

  it("needs no tokenizer file for a simulator-only model", () => {
    expect(catalogSchema.safeParse({ models: [{ name: "s", backends: [{ name: "sim", engine: "sim" }] }] }).success).toBe(true);
  });
});
