import { Ajv } from "ajv";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

const SAMPLES = 100;
const CONCURRENCY = 4;

/** Every keyword here is one the grammar enforces (docs/api.md, "Strict structured output"). */
const schema = {
  type: "object",
  properties: {
    name: { enum: ["ada", "grace", "linus"] },
    age: { type: "integer" },
    score: { type: "number" },
    ok: { type: "boolean" },
    tags: { type: "array", items: { enum: ["a", "b", "c"] }, minItems: 1, maxItems: 3 },
    nested: {
      type: "object",
      properties: { x: { const: 1 }, y: { anyOf: [{ type: "null" }, { type: "integer" }] } },
      required: ["x", "y"],
      additionalProperties: false,
    },
    when: { type: "string", format: "date" },
  },
  required: ["name", "age", "score", "ok", "tags", "nested", "when"],
  additionalProperties: false,
};

describe("strict json_schema outputs follow the schema (validated with ajv)", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;

  beforeAll(async () => {
    mesh = await startInProcessMesh({ sequences: CONCURRENCY });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it(`${SAMPLES} generated samples are all valid`, { timeout: 240_000 }, async () => {
    const validate = new Ajv({ strict: false, validateFormats: false }).compile(schema);
    const invalid: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < SAMPLES) {
        const seed = next++;
        const completion = await client.chat.completions.create({
          model: "tiny-llama",
          messages: [{ role: "user", content: `sample ${seed}` }],
          seed,
          temperature: 1,
          max_tokens: 400,
          response_format: { type: "json_schema", json_schema: { name: "record", schema, strict: true } },
        });
        const text = completion.choices[0].message.content ?? "";
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          invalid.push(`${completion.choices[0].finish_reason}: ${text}`);
          continue;
        }
        const when = (value as { when?: unknown }).when;
        if (!validate(value) || typeof when !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(when)) invalid.push(`${JSON.stringify(validate.errors)}: ${text}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(invalid).toEqual([]);
  });
});
