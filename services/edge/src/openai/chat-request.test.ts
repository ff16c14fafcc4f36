import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Code, ConnectError, errorDetails } from "../../../../lib/errors.js";
import { chatGenerationInput, parseChatRequest } from "./chat-request.js";
import { completionGenerationInput, parseCompletionRequest } from "./completion-request.js";
import { toHttpError } from "./errors.js";

const base = { model: "m", messages: [{ role: "user", content: "hi" }] };

function rejection(parse: (body: unknown) => unknown, body: unknown): { param?: string; reason?: string; status: number } {
  try {
    parse(body);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    return { ...errorDetails(err as ConnectError), status: toHttpError(err, "r").status };
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

describe("chat request validation", () => {
  const cases: [string, object, string, string][] = [
    ["missing model", { messages: base.messages }, "model", "missing_required_parameter"],
    ["missing messages", { model: "m" }, "messages", "missing_required_parameter"],
    ["empty messages", { ...base, messages: [] }, "messages", "invalid_value"],
    ["unknown role", { ...base, messages: [{ role: "robot", content: "x" }] }, "messages[0].role", "invalid_value"],
    ["tool message without tool_call_id", { ...base, messages: [{ role: "tool", content: "x" }] }, "messages[0].tool_call_id", "missing_required_parameter"],
    [
      "image part",
      { ...base, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] },
      "messages[0].content",
      "invalid_value",
    ],
    ["temperature > 2", { ...base, temperature: 2.5 }, "temperature", "invalid_value"],
    ["temperature < 0", { ...base, temperature: -0.1 }, "temperature", "invalid_value"],
    ["top_p > 1", { ...base, top_p: 1.5 }, "top_p", "invalid_value"],
    ["frequency_penalty > 2", { ...base, frequency_penalty: 2.1 }, "frequency_penalty", "invalid_value"],
    ["presence_penalty < -2", { ...base, presence_penalty: -3 }, "presence_penalty", "invalid_value"],
    ["max_tokens 0", { ...base, max_tokens: 0 }, "max_tokens", "invalid_value"],
    ["max_completion_tokens fractional", { ...base, max_completion_tokens: 1.5 }, "max_completion_tokens", "invalid_value"],
    ["five stops", { ...base, stop: ["a", "b", "c", "d", "e"] }, "stop", "invalid_value"],
    ["empty stop", { ...base, stop: "" }, "stop", "invalid_value"],
    ["fractional seed", { ...base, seed: 1.5 }, "seed", "invalid_value"],
    ["n = 17", { ...base, n: 17 }, "n", "unsupported_value"],
    ["top_logprobs without logprobs", { ...base, top_logprobs: 3 }, "top_logprobs", "invalid_value"],
    ["top_logprobs > 20", { ...base, logprobs: true, top_logprobs: 21 }, "top_logprobs", "invalid_value"],
    [
      "json_schema with a bad type",
      { ...base, response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "banana" } } } },
      "response_format",
      "invalid_value",
    ],
    ["bad response_format", { ...base, response_format: { type: "yaml" } }, "response_format.type", "invalid_value"],
    ["stream_options without stream", { ...base, stream_options: { include_usage: true } }, "stream_options", "invalid_value"],
    ["top_k string", { ...base, top_k: "5" }, "top_k", "invalid_value"],
    ["min_p > 1", { ...base, min_p: 2 }, "min_p", "invalid_value"],
    ["repetition_penalty 0", { ...base, repetition_penalty: 0 }, "repetition_penalty", "invalid_value"],
    ["user number", { ...base, user: 5 }, "user", "invalid_value"],
    ["a tool with a bad name", { ...base, tools: [{ type: "function", function: { name: "a b" } }] }, "tools[0].function.name", "invalid_value"],
    [
      "duplicate tools",
      {
        ...base,
        tools: [
          { type: "function", function: { name: "f" } },
          { type: "function", function: { name: "f" } },
        ],
      },
      "tools",
      "invalid_value",
    ],
    ["tool_choice required without tools", { ...base, tool_choice: "required" }, "tool_choice", "invalid_value"],
    [
      "a forced tool with pattern",
      {
        ...base,
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { s: { type: "string", pattern: "^a" } } } } }],
        tool_choice: "required",
      },
      "tools",
      "unsupported_schema_keyword",
    ],
    [
      "json_schema with multipleOf",
      { ...base, response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "integer", multipleOf: 2 } } } },
      "response_format",
      "unsupported_schema_keyword",
    ],
    ["functions (deprecated)", { ...base, functions: [{ name: "f" }] }, "functions", "unsupported_parameter"],
    ["logit_bias", { ...base, logit_bias: { "50256": -100 } }, "logit_bias", "unsupported_parameter"],
  ];
  it.each(cases)("rejects %s with a 400 naming the param", (_name, body, param, reason) => {
    expect(rejection(parseChatRequest, body)).toEqual({ param, reason, status: 400 });
  });

  it("rejects bodies that are not objects", () => {
    for (const body of [null, [], "x", 5, true]) expect(rejection(parseChatRequest, body).status).toBe(400);
  });

  it("accepts the full OpenAI shape and maps every sampling field", () => {
    const input = chatGenerationInput(
      parseChatRequest({
        ...base,
        messages: [
          {
            role: "developer",
            content: [
              { type: "text", text: "be " },
              { type: "text", text: "brief" },
            ],
          },
          { role: "user", content: "hi", name: "ann" },
          { role: "assistant", content: null },
        ],
        max_completion_tokens: 7,
        max_tokens: 3,
        temperature: 0.5,
        top_p: 0.9,
        top_k: 40,
        min_p: 0.1,
        repetition_penalty: 1.1,
        frequency_penalty: 0.5,
        presence_penalty: -0.5,
        seed: -1,
        stop: "END",
        n: 1,
        logprobs: false,
        response_format: { type: "text" },
        user: "u1",
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
        store: false,
      }),
    );
    expect(input.messages).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "hi" },
      { role: "assistant", content: "" },
    ]);
    expect(input.sampling).toEqual({
      temperature: 0.5,
      topP: 0.9,
      topK: 40,
      minP: 0.1,
      repetitionPenalty: 1.1,
      frequencyPenalty: 0.5,
      presencePenalty: -0.5,
      seed: 0xffffffff,
      maxTokens: 7,
      stop: ["END"],
      ignoreEos: true,
    });
    expect(input.user).toBe("u1");
  });

  it("turns top_k -1 or 0 into the engine default", () => {
    expect(chatGenerationInput(parseChatRequest({ ...base, top_k: -1 })).sampling.topK).toBeUndefined();
  });

  it("asks for logprobs only when logprobs is true, with top_logprobs alternatives (default 0)", () => {
    expect(chatGenerationInput(parseChatRequest(base)).logprobs).toBeUndefined();
    expect(chatGenerationInput(parseChatRequest({ ...base, logprobs: false, top_logprobs: 0 })).logprobs).toBeUndefined();
    expect(chatGenerationInput(parseChatRequest({ ...base, logprobs: true })).logprobs).toEqual({ top: 0 });
    expect(chatGenerationInput(parseChatRequest({ ...base, logprobs: true, top_logprobs: 20 })).logprobs).toEqual({ top: 20 });
  });
});

describe("completion request validation", () => {
  it("defaults max_tokens to 16 and takes a one-element prompt array", () => {
    const input = completionGenerationInput(parseCompletionRequest({ model: "m", prompt: ["abc"] }));
    expect(input.prompt).toBe("abc");
    expect(input.messages).toEqual([]);
    expect(input.sampling.maxTokens).toBe(16);
  });

  it("takes logprobs 0..5 (0: the sampled token only), n up to 16 and best_of equal to n", () => {
    expect(completionGenerationInput(parseCompletionRequest({ model: "m", prompt: "a" })).logprobs).toBeUndefined();
    expect(completionGenerationInput(parseCompletionRequest({ model: "m", prompt: "a", logprobs: 0 })).logprobs).toEqual({ top: 0 });
    expect(completionGenerationInput(parseCompletionRequest({ model: "m", prompt: "a", logprobs: 5 })).logprobs).toEqual({ top: 5 });
    expect(parseCompletionRequest({ model: "m", prompt: "a", n: 16, best_of: 16 }).n).toBe(16);
  });

  it.each([
    [{ model: "m" }, "prompt"],
    [{ model: "m", prompt: "" }, "prompt"],
    [{ model: "m", prompt: [1, 2, 3] }, "prompt"],
    [{ model: "m", prompt: ["a", "b"] }, "prompt"],
    [{ model: "m", prompt: "a", echo: true }, "echo"],
    [{ model: "m", prompt: "a", best_of: 3 }, "best_of"],
    [{ model: "m", prompt: "a", logprobs: 6 }, "logprobs"],
    [{ model: "m", prompt: "a", n: 2, best_of: 3 }, "best_of"],
    [{ model: "m", prompt: "a", n: 17 }, "n"],
    [{ model: "m", prompt: "a", suffix: "z" }, "suffix"],
  ])("rejects %j naming %s", (body, param) => {
    expect(rejection(parseCompletionRequest, body).param).toBe(param);
  });
});

describe("request parser fuzz", () => {
  const keys = [
    "model",
    "messages",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "stream",
    "stream_options",
    "top_k",
    "min_p",
    "response_format",
    "logprobs",
    "user",
  ];
  const hostile = fc.oneof(
    fc.anything(),
    fc.record({ model: fc.string(), messages: fc.anything() }),
    fc.dictionary(fc.constantFrom(...keys), fc.jsonValue()),
    fc.record({
      model: fc.constant("m"),
      messages: fc.array(fc.record({ role: fc.constantFrom("user", "system", "assistant", "x"), content: fc.jsonValue() })),
    }),
  );

  it("either accepts a body or throws InvalidArgument with a param, mapping to a 400", () => {
    fc.assert(
      fc.property(hostile, (body) => {
        for (const parse of [parseChatRequest, parseCompletionRequest]) {
          try {
            parse(body);
          } catch (err) {
            if (!(err instanceof ConnectError) || err.code !== Code.InvalidArgument) return false;
            if (!errorDetails(err).param) return false;
            if (toHttpError(err, "r").status !== 400) return false;
          }
        }
        return true;
      }),
      { numRuns: 2_000 },
    );
  });
});
