import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

describe("structured output through the mesh (response_format)", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;

  beforeAll(async () => {
    mesh = await startInProcessMesh();
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it("json_schema with an enum field answers one of the enum values", async () => {
    const schema = { type: "object", properties: { answer: { enum: ["yes", "no"] } }, required: ["answer"] };
    const completion = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "yes or no?" }],
      max_tokens: 40,
      response_format: { type: "json_schema", json_schema: { name: "answer", schema } },
    });
    const choice = completion.choices[0];
    expect(choice.finish_reason).toBe("stop");
    expect(["yes", "no"]).toContain((JSON.parse(choice.message.content ?? "") as { answer: string }).answer);
  });

  it("json_object streams text that starts a JSON object", async () => {
    const stream = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "give me json" }],
      max_tokens: 30,
      stream: true,
      response_format: { type: "json_object" },
    });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text.trimStart().startsWith("{")).toBe(true);
    if (finish === "stop") expect(typeof JSON.parse(text)).toBe("object");
  });

  it("an unusable schema is a 400 naming response_format", async () => {
    const error = await client.chat.completions
      .create({
        model: "tiny-llama",
        messages: [{ role: "user", content: "x" }],
        response_format: { type: "json_schema", json_schema: { name: "bad", schema: { foo: 1 } } },
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe("response_format");
  });
});
