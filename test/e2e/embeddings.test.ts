import { getLlama } from "node-llama-cpp";
import type { Llama, LlamaEmbeddingContext, LlamaModel } from "node-llama-cpp";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeEmbedding, startFakeOpenAI } from "../../tools/fake-openai/index.js";
import type { FakeOpenAI } from "../../tools/fake-openai/index.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

const TEXTS = ["hello world", "the second input, a little longer", "é 中文 🙂"];

describe("embeddings through the mesh (client.embeddings.create)", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;
  let fake: FakeOpenAI;
  let llama: Llama;
  let model: LlamaModel;
  let direct: LlamaEmbeddingContext;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    mesh = await startInProcessMesh({ upstreamUrl: fake.url });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    llama = await getLlama({ gpu: false, build: "never", maxThreads: 1 });
    model = await llama.loadModel({ modelPath: mesh.modelPath });
    direct = await model.createEmbeddingContext({ threads: 1 });
  });
  afterAll(async () => {
    await direct?.dispose();
    await model?.dispose();
    await mesh?.stop();
    await fake?.close();
  });

  it("float: one vector per input, in order, equal to node-llama-cpp's own, with usage", async () => {
    const answer = await client.embeddings.create({ model: "tiny-llama", input: TEXTS, encoding_format: "float" });
    expect(answer.object).toBe("list");
    expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const [i, text] of TEXTS.entries()) {
      const own = await direct.getEmbeddingFor(text);
      expect(answer.data[i].embedding).toHaveLength(model.embeddingVectorSize);
      expect(answer.data[i].embedding).toEqual([...own.vector]);
    }
    const tokens = TEXTS.reduce((n, t) => n + direct.calculateInputLength(t), 0);
    expect(answer.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
  });

  it("base64 (the SDK's default) decodes to the same vectors; token-array input embeds those tokens", async () => {
    const floats = await client.embeddings.create({ model: "tiny-llama", input: TEXTS[0], encoding_format: "float" });
    const raw = await client.embeddings.create({ model: "tiny-llama", input: TEXTS[0], encoding_format: "base64" });
    const bytes = Buffer.from(raw.data[0].embedding, "base64");
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    expect(decoded).toEqual(floats.data[0].embedding);
    const sdkDefault = await client.embeddings.create({ model: "tiny-llama", input: TEXTS[0] });
    expect(sdkDefault.data[0].embedding).toEqual(floats.data[0].embedding);
    const ids = model.tokenize(TEXTS[1]) as number[];
    const byTokens = await client.embeddings.create({ model: "tiny-llama", input: [ids], encoding_format: "float" });
    expect(byTokens.data[0].embedding).toEqual([...(await direct.getEmbeddingFor(model.tokenize(TEXTS[1]))).vector]);
    expect(byTokens.usage.prompt_tokens).toBe(ids.length);
  });

  it("dimensions the model cannot give are a 400 naming dimensions; a bad input names input", async () => {
    const wrong = await client.embeddings.create({ model: "tiny-llama", input: "x", dimensions: 3 }).then(
      () => undefined,
      (err: unknown) => err as InstanceType<typeof OpenAI.APIError>,
    );
    expect(wrong?.status).toBe(400);
    expect(wrong?.param).toBe("dimensions");
    const same = await client.embeddings.create({ model: "tiny-llama", input: "x", dimensions: model.embeddingVectorSize, encoding_format: "float" });
    expect(same.data[0].embedding).toHaveLength(model.embeddingVectorSize);
    const empty = await client.embeddings.create({ model: "tiny-llama", input: "" }).then(
      () => undefined,
      (err: unknown) => err as InstanceType<typeof OpenAI.APIError>,
    );
    expect(empty?.status).toBe(400);
    expect(empty?.param).toBe("input");
  });

  it("an openai-upstream backend embeds by pass-through (dimensions forwarded)", async () => {
    const answer = await client.embeddings.create({ model: "upstream", input: ["ab", "xyz"], dimensions: 3, encoding_format: "float" });
    expect(answer.data.map((d) => d.embedding)).toEqual([fakeEmbedding("ab", 3), fakeEmbedding("xyz", 3)]);
    expect(fake.stats.lastBody).toMatchObject({ model: "fake-model", input: ["ab", "xyz"], dimensions: 3, encoding_format: "float" });
    expect(answer.usage.prompt_tokens).toBe(2);
  });
});
