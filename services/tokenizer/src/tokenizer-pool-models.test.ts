import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSchema } from "../../../lib/catalog/index.js";
import type { Catalog } from "../../../lib/catalog/index.js";
import { writeTinyModel } from "../../../lib/gguf/index.js";
import { loadTokenizers } from "./server.js";
import { TokenizerPool } from "./tokenizer-pool.js";

/** Models added and removed at run time reach the pool's workers too (large prompts are encoded there). */
describe("tokenizer pool: models added and removed at run time", () => {
  let dir: string;
  let catalog: Catalog;
  let added: Catalog;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-pool-models-"));
    const file = path.join(dir, "tiny.gguf");
    await writeTinyModel(file);
    const model = (name: string) => ({ name, backends: [{ name: "local", engine: "llama.cpp", model: file }] });
    catalog = catalogSchema.parse({ models: [model("tiny")] });
    added = catalogSchema.parse({ models: [model("second")] });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("encodes a large prompt of an added model in a worker started before it was added, and refuses it once removed", async () => {
    const pool = new TokenizerPool(catalog, await loadTokenizers(catalog), pino({ level: "silent" }), { workers: 1, inlineMaxChars: 10 });
    try {
      await pool.ready();
      const content = "hello world ".repeat(100);
      // A job running in the old worker while the model is added finishes there.
      const running = pool.encodeChat("tiny", [{ role: "user", content }]);
      const [tokenizer] = (await loadTokenizers(added)).values();
      pool.addModel(added.models[0], tokenizer);
      const [before, after] = await Promise.all([running, pool.encodeChat("second", [{ role: "user", content }])]);
      expect(after.tokenIds).toEqual(before.tokenIds);
      pool.removeModel("second");
      await expect(pool.encodeChat("second", [{ role: "user", content }])).rejects.toThrow(/second/);
      await expect(pool.encodeChat("second", [{ role: "user", content: "hi" }])).rejects.toThrow(/second/);
      expect((await pool.encodeChat("tiny", [{ role: "user", content }])).tokenIds).toEqual(before.tokenIds);
    } finally {
      await pool.close();
    }
  });
});
