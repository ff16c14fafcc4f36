import { describe, expect, it } from "vitest";
import { forcedCallSchema, parseToolCalls, ToolCallStream } from "./index.js";
import type { ToolCallPiece, ToolStreamMode } from "./index.js";

const weather = '{"location": "Paris, France", "unit": "celsius"}';

/** Feeds `text` in pieces of `size` characters; returns the content and the calls put back together. */
function streamed(mode: ToolStreamMode, text: string, size: number) {
  let n = 0;
  const stream = new ToolCallStream(mode, () => `call_${n++}`);
  let content = "";
  const pieces: ToolCallPiece[] = [];
  for (let i = 0; i < text.length; i += size) {
    const out = stream.push(text.slice(i, i + size));
    content += out.content;
    pieces.push(...out.toolCalls);
  }
  const out = stream.finish();
  content += out.content;
  pieces.push(...out.toolCalls);
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const p of pieces) {
    if (p.id) {
      expect(p.index).toBe(calls.length);
      calls.push({ id: p.id, name: p.name, arguments: p.arguments });
    } else {
      expect(calls[p.index]).toBeDefined();
      calls[p.index].arguments += p.arguments;
    }
  }
  return { content, calls, pieces };
}

describe("parseToolCalls on the syntaxes models write", () => {
  it("hermes: text, then two <tool_call> blocks (Qwen 2.5, Hermes 2 Pro)", () => {
    const text = `Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": ${weather}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>`;
    const out = parseToolCalls("hermes", text);
    expect(out.content).toBe("Let me check.");
    expect(out.calls).toEqual([
      { name: "get_weather", arguments: JSON.stringify(JSON.parse(weather)) },
      { name: "get_time", arguments: '{"tz":"CET"}' },
    ]);
  });

  it("hermes: broken JSON is content, not an invented call", () => {
    const text = '<tool_call>\n{"name": "get_weather", "arguments": {"location": \n</tool_call>';
    expect(parseToolCalls("hermes", text)).toEqual({ content: text, calls: [] });
  });

  it("mistral: [TOOL_CALLS] with a JSON array (v3), the v11 name[ARGS] form, and the array alone", () => {
    const v3 = `[TOOL_CALLS] [{"name": "get_weather", "arguments": ${weather}}, {"name": "get_time", "arguments": {}}]`;
    expect(parseToolCalls("mistral", v3).calls.map((c) => c.name)).toEqual(["get_weather", "get_time"]);
    const v11 = `[TOOL_CALLS]get_weather[ARGS]${weather}[TOOL_CALLS]get_time[ARGS]{}`;
    expect(parseToolCalls("mistral", v11).calls).toEqual([
      { name: "get_weather", arguments: JSON.stringify(JSON.parse(weather)) },
      { name: "get_time", arguments: "{}" },
    ]);
    expect(parseToolCalls("mistral", `[{"name": "f", "arguments": {"a": 1}}]`).calls).toEqual([{ name: "f", arguments: '{"a":1}' }]);
    expect(parseToolCalls("mistral", "[1, 2] is a list").calls).toEqual([]);
  });

  it("llama3_json: parameters, <|python_tag|>, and calls separated by ;", () => {
    const text = `<|python_tag|>{"name": "get_weather", "parameters": ${weather}}; {"name": "get_time", "parameters": {"tz": "UTC"}}`;
    const out = parseToolCalls("llama3_json", text);
    expect(out.calls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
      ["get_weather", JSON.parse(weather)],
      ["get_time", { tz: "UTC" }],
    ]);
    expect(parseToolCalls("llama3_json", '{"name": "get_time", "parameters": {}}').calls).toHaveLength(1);
    expect(parseToolCalls("llama3_json", "The answer is {braces}").calls).toEqual([]);
  });

  it("json: an object, an array, a fence, {tool_calls: […]} and OpenAI's function shape", () => {
    expect(parseToolCalls("json", '{"name": "f", "arguments": {"x": 1}}').calls).toEqual([{ name: "f", arguments: '{"x":1}' }]);
    expect(parseToolCalls("json", '```json\n[{"name": "f", "arguments": {}}]\n```').calls).toEqual([{ name: "f", arguments: "{}" }]);
    expect(parseToolCalls("json", '{"tool_calls": [{"function": {"name": "g", "arguments": "{\\"y\\": 2}"}}]}').calls).toEqual([
      { name: "g", arguments: '{"y": 2}' },
    ]);
    expect(parseToolCalls("json", '{"answer": 42}')).toEqual({ content: '{"answer": 42}', calls: [] });
  });
});

describe("ToolCallStream", () => {
  it("auto (hermes): content streams up to the marker, then the calls come whole, whatever the chunking", () => {
    const text = `Checking the weather.<tool_call>\n{"name": "get_weather", "arguments": ${weather}}\n</tool_call>`;
    for (const size of [1, 3, 7, 1000]) {
      const out = streamed({ kind: "auto", parser: "hermes" }, text, size);
      expect(out.content).toBe("Checking the weather.");
      expect(out.calls).toEqual([{ id: "call_0", name: "get_weather", arguments: JSON.stringify(JSON.parse(weather)) }]);
    }
  });

  it("auto: text with a partial marker that never completes is all content", () => {
    const text = "a <tool but not a call";
    expect(streamed({ kind: "auto", parser: "hermes" }, text, 2)).toMatchObject({ content: text, calls: [] });
    expect(streamed({ kind: "auto", parser: "llama3_json" }, "{not json", 2)).toMatchObject({ content: "{not json", calls: [] });
  });

  it("forced: a call object streams its name first, then argument fragments that concatenate to the arguments", () => {
    const text = `{"name": "get_weather", "arguments": ${weather}}`;
    for (const size of [1, 2, 5, 1000]) {
      const out = streamed({ kind: "forced" }, text, size);
      expect(out.content).toBe("");
      expect(out.calls).toEqual([{ id: "call_0", name: "get_weather", arguments: weather }]);
      expect(out.pieces[0]).toEqual({ index: 0, id: "call_0", name: "get_weather", arguments: "" });
    }
  });

  it("forced: an array of calls, with strings holding brackets, quotes and escapes", () => {
    const args1 = '{"q": "a } ] \\" {[", "n": [1, {"x": 2}]}';
    const text = `[{"name": "search", "arguments": ${args1}}, {"name": "get_time", "arguments": {}}]`;
    for (const size of [1, 4, 1000]) {
      const out = streamed({ kind: "forced" }, text, size);
      expect(out.calls.map((c) => c.name)).toEqual(["search", "get_time"]);
      expect(JSON.parse(out.calls[0].arguments)).toEqual(JSON.parse(args1));
      expect(out.calls[1].arguments).toBe("{}");
    }
  });
});

describe("forcedCallSchema", () => {
  const tools = [
    { name: "a", parametersJson: '{"type":"object","properties":{"x":{"type":"integer"}}}' },
    { name: "b", parametersJson: "" },
  ];
  it("names the function, or oneOf the tools, or an array of them when parallel", () => {
    expect(JSON.parse(forcedCallSchema({ tools, choice: "function", functionName: "a", parallel: true }))).toMatchObject({
      properties: { name: { const: "a" }, arguments: { type: "object" } },
    });
    expect(JSON.parse(forcedCallSchema({ tools, choice: "required", functionName: "", parallel: false })).oneOf).toHaveLength(2);
    expect(JSON.parse(forcedCallSchema({ tools, choice: "required", functionName: "", parallel: true }))).toMatchObject({ type: "array", minItems: 1 });
    expect(() => forcedCallSchema({ tools, choice: "function", functionName: "zz", parallel: true })).toThrow(/zz/);
  });
});
