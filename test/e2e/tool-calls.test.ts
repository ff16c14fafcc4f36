import { Ajv } from "ajv";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";
import { FAKE_ARGUMENT_FRAGMENTS, startFakeOpenAI } from "../../tools/fake-openai/index.js";
import type { FakeOpenAI } from "../../tools/fake-openai/index.js";

const weatherParams = {
  type: "object",
  properties: {
    city: { type: "string", enum: ["Paris", "Tokyo", "Lima"] },
    unit: { enum: ["celsius", "fahrenheit"] },
    days: { type: "integer" },
  },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};
const timeParams = {
  type: "object",
  properties: { tz: { enum: ["UTC", "CET", "JST"] }, hour: { type: "integer" }, offset: { type: "number" } },
  required: ["tz", "hour", "offset"],
  additionalProperties: false,
};
const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: weatherParams } },
  { type: "function", function: { name: "get_time", description: "The time in a zone", parameters: timeParams } },
];
const ajv = new Ajv({ strict: false });
const validators = { get_weather: ajv.compile(weatherParams), get_time: ajv.compile(timeParams) };

/** Asserts a call names a tool and its arguments parse and follow that tool's schema. */
function expectValidCall(call: { function: { name: string; arguments: string } }, name?: string): void {
  if (name) expect(call.function.name).toBe(name);
  const validate = validators[call.function.name as keyof typeof validators];
  expect(validate, `unknown function ${call.function.name}`).toBeDefined();
  const args: unknown = JSON.parse(call.function.arguments);
  if (process.env.DEBUG_TOOLS) console.log(call.function.arguments);
  expect(validate(args), JSON.stringify(validate.errors)).toBe(true);
}

describe("tool calling through the mesh (tiny model, forced choices decode under the arguments' grammar)", () => {
  let mesh: InProcessMesh;
  let client: OpenAI;
  let fake: FakeOpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    mesh = await startInProcessMesh({ upstreamUrl: fake.url });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await mesh?.stop();
    await fake?.close();
  });

  it("an openai-upstream backend gets the tools and the history, and its streamed tool_calls pass through intact", async () => {
    const stream = await client.chat.completions.create({
      model: "upstream",
      messages: [
        { role: "user", content: "Weather?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Lima"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
      ],
      tools,
      tool_choice: "auto",
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      finish = chunk.choices[0]?.finish_reason ?? finish;
      pieces.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    }
    expect(pieces[0]).toMatchObject({ index: 0, id: "call_fake_0", type: "function", function: { name: "get_weather" } });
    expect(pieces.slice(1).map((p) => p.function?.arguments)).toEqual(FAKE_ARGUMENT_FRAGMENTS);
    expect(finish).toBe("tool_calls");
    expect(usage!.completion_tokens).toBe(FAKE_ARGUMENT_FRAGMENTS.length + 1);
    const sent = fake.stats.lastBody!;
    expect((sent.tools as unknown[]).length).toBe(2);
    expect(sent.tool_choice).toBe("auto");
    expect(sent.messages![1]).toMatchObject({ role: "assistant", content: null, tool_calls: [{ id: "call_1", function: { name: "get_weather" } }] });
    expect(sent.messages![2]).toMatchObject({ role: "tool", tool_call_id: "call_1", content: "sunny" });

    const whole = await client.chat.completions.create({
      model: "upstream",
      messages: [{ role: "user", content: "x" }],
      tools,
      tool_choice: { type: "function", function: { name: "get_time" } },
    });
    expect(whole.choices[0].finish_reason).toBe("tool_calls");
    expect(whole.choices[0].message.tool_calls).toEqual([
      { id: "call_fake_0", type: "function", function: { name: "get_time", arguments: FAKE_ARGUMENT_FRAGMENTS.join("") } },
    ]);
    expect(fake.stats.lastBody!.tool_choice).toEqual({ type: "function", function: { name: "get_time" } });
  });

  it("a named tool_choice answers that call, arguments valid, finish_reason tool_calls, usage", async () => {
    const completion = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      max_tokens: 400,
    });
    const choice = completion.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0];
    expect(call.type).toBe("function");
    expect(call.id).toMatch(/^call_/);
    expectValidCall(call as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall, "get_weather");
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
  });

  it("required, streamed: id, type and name first, then argument fragments that make valid calls; usage at the end", async () => {
    const stream = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "Weather and time?" }],
      tools,
      tool_choice: "required",
      parallel_tool_calls: true,
      max_tokens: 900,
      stream: true,
      stream_options: { include_usage: true },
    });
    const calls: { id: string; function: { name: string; arguments: string } }[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let fragments = 0;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      finish = choice.finish_reason ?? finish;
      for (const piece of choice.delta.tool_calls ?? []) {
        if (piece.id) {
          expect(piece.index).toBe(calls.length);
          expect(piece.type).toBe("function");
          expect(piece.function?.name).toBeTruthy();
          calls.push({ id: piece.id, function: { name: piece.function!.name!, arguments: piece.function?.arguments ?? "" } });
        } else {
          expect(calls[piece.index], "an argument fragment before its call's name").toBeDefined();
          calls[piece.index].function.arguments += piece.function?.arguments ?? "";
          fragments++;
        }
      }
    }
    expect(finish).toBe("tool_calls");
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(fragments).toBeGreaterThan(calls.length);
    for (const call of calls) expectValidCall(call);
    expect(usage!.completion_tokens).toBeGreaterThan(0);
  });

  it("a tool-result round trip: assistant tool_calls and a tool message in the history", async () => {
    const first = await client.chat.completions.create({
      model: "tiny-llama",
      messages: [{ role: "user", content: "Time in Tokyo?" }],
      tools,
      tool_choice: { type: "function", function: { name: "get_time" } },
      max_tokens: 400,
    });
    const call = first.choices[0].message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expectValidCall(call, "get_time");
    const history: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "user", content: "Time in Tokyo?" },
      { role: "assistant", content: null, tool_calls: [call] },
    ];
    const result: OpenAI.Chat.Completions.ChatCompletionMessageParam = { role: "tool", tool_call_id: call.id, content: '{"time": "09:00 in Tokyo"}' };
    const second = await client.chat.completions.create({ model: "tiny-llama", messages: [...history, result], tools, tool_choice: "auto", max_tokens: 8 });
    expect(["stop", "length", "tool_calls"]).toContain(second.choices[0].finish_reason);
    const without = await client.chat.completions.create({ model: "tiny-llama", messages: history, tools, tool_choice: "auto", max_tokens: 1 });
    // The call and its result reached the prompt.
    expect(second.usage!.prompt_tokens).toBeGreaterThan(without.usage!.prompt_tokens + 5);
    expect(without.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens);
  });

  it("refuses a tool_choice naming no tool, and a forced schema keyword the grammar cannot enforce, naming it", async () => {
    const named = await client.chat.completions
      .create({ model: "tiny-llama", messages: [{ role: "user", content: "x" }], tools, tool_choice: { type: "function", function: { name: "nope" } } })
      .then(
        () => undefined,
        (err: unknown) => err as InstanceType<typeof OpenAI.APIError>,
      );
    expect(named?.status).toBe(400);
    expect(named?.param).toBe("tool_choice");
    const bounded = [
      { type: "function" as const, function: { name: "pick", parameters: { type: "object", properties: { n: { type: "integer", minimum: 0, maximum: 9 } } } } },
    ];
    const refused = await client.chat.completions
      .create({ model: "tiny-llama", messages: [{ role: "user", content: "x" }], tools: bounded, tool_choice: "required" })
      .then(
        () => undefined,
        (err: unknown) => err as InstanceType<typeof OpenAI.APIError>,
      );
    expect(refused?.status).toBe(400);
    expect(refused?.param).toBe("tools");
    expect(refused?.message).toMatch(/'minimum'/);
  });

  it("a strict json_schema with minimum/maximum is a 400 naming the keyword, not wrong output", async () => {
    const schema = { type: "object", properties: { digit: { type: "integer", minimum: 0, maximum: 9 } }, required: ["digit"] };
    const error = await client.chat.completions
      .create({
        model: "tiny-llama",
        messages: [{ role: "user", content: "x" }],
        response_format: { type: "json_schema", json_schema: { name: "d", schema, strict: true } },
      })
      .then(
        () => undefined,
        (err: unknown) => err as InstanceType<typeof OpenAI.APIError>,
      );
    expect(error?.status).toBe(400);
    expect(error?.param).toBe("response_format");
    expect(error?.message).toMatch(/'minimum'/);
  });
});
