import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

const tools: OpenAI.Responses.FunctionTool[] = [
  {
    type: "function",
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { enum: ["Paris", "Lima"] }, days: { type: "integer" } },
      required: ["city", "days"],
      additionalProperties: false,
    },
    strict: true,
  },
];

describe("the Responses API through the mesh (client.responses.create)", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;

  beforeAll(async () => {
    mesh = await startInProcessMesh();
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it("plain: a string input answers a completed response with output_text and usage", async () => {
    const response = await client.responses.create({
      model: "tiny-llama",
      input: "Say hello",
      instructions: "Be brief.",
      max_output_tokens: 8,
      temperature: 0,
    });
    expect(response.object).toBe("response");
    expect(response.id).toMatch(/^resp_/);
    expect(["completed", "incomplete"]).toContain(response.status);
    const message = response.output[0] as OpenAI.Responses.ResponseOutputMessage;
    expect(message.type).toBe("message");
    expect(message.role).toBe("assistant");
    const text = (message.content[0] as OpenAI.Responses.ResponseOutputText).text;
    expect(response.output_text).toBe(text);
    expect(response.usage!.output_tokens).toBeGreaterThan(0);
    expect(response.usage!.total_tokens).toBe(response.usage!.input_tokens + response.usage!.output_tokens);
    if (response.status === "incomplete") expect(response.incomplete_details?.reason).toBe("max_output_tokens");
    // The same prompt through chat gives the same tokens: one generation path.
    const chat = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      max_tokens: 8,
      temperature: 0,
    });
    expect(chat.choices[0].message.content).toBe(text);
    expect(chat.usage!.prompt_tokens).toBe(response.usage!.input_tokens);
  });

  it("streamed: the documented events in order, sequence numbers increasing, deltas spelling the text", async () => {
    const stream = await client.responses.create({ model: "tiny-llama", input: [{ role: "user", content: "Count" }], max_output_tokens: 12, stream: true });
    const types: string[] = [];
    const sequence: number[] = [];
    let deltas = "";
    let done = "";
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === "response.output_text.delta") deltas += event.delta;
      if (event.type === "response.output_text.done") done = event.text;
      if (event.type === "response.completed" || event.type === "response.incomplete") final = event.response;
    }
    const collapsed = types.filter((t, i) => t !== types[i - 1]);
    expect(collapsed).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      final!.status === "completed" ? "response.completed" : "response.incomplete",
    ]);
    expect(sequence).toEqual(sequence.map((_, i) => i));
    expect(done).toBe(deltas);
    expect(final!.output_text).toBe(deltas);
    expect(final!.usage!.output_tokens).toBeGreaterThan(0);
  });

  it("with a function tool (required): a function_call item whose arguments parse; the output goes back as input items", async () => {
    const response = await client.responses.create({ model: "tiny-llama", input: "Weather in Paris?", tools, tool_choice: "required", max_output_tokens: 300 });
    const call = response.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toBeDefined();
    expect(call.name).toBe("get_weather");
    expect(call.call_id).toMatch(/^call_/);
    const args = JSON.parse(call.arguments) as { city: string; days: number };
    expect(["Paris", "Lima"]).toContain(args.city);
    expect(Number.isInteger(args.days)).toBe(true);

    const stream = await client.responses.create({
      model: "tiny-llama",
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: '{"sky":"clear"}' },
      ],
      tools,
      tool_choice: { type: "function", name: "get_weather" },
      max_output_tokens: 300,
      stream: true,
    });
    const types: string[] = [];
    let argsDelta = "";
    let argsDone = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.function_call_arguments.delta") argsDelta += event.delta;
      if (event.type === "response.function_call_arguments.done") argsDone = event.arguments;
    }
    expect(types[2]).toBe("response.output_item.added");
    expect(types).toContain("response.function_call_arguments.delta");
    expect(argsDone).toBe(argsDelta);
    expect(JSON.parse(argsDone)).toHaveProperty("city");
    expect(types.at(-1)).toBe("response.completed");
  });

  it("previous_response_id and store: true are a 400 saying responses are not kept", async () => {
    for (const extra of [{ previous_response_id: "resp_x" }, { store: true }]) {
      const error = await client.responses.create({ model: "tiny-llama", input: "x", ...extra }).then(
        () => undefined,
        (err: unknown) => err as InstanceType<typeof OpenAI.APIError>,
      );
      expect(error?.status).toBe(400);
      expect(error?.param).toBe(Object.keys(extra)[0]);
      expect(error?.message).toMatch(/keeps no responses/);
    }
  });
});
