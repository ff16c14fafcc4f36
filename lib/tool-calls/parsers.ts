import { jsonValueEnd, tryParseJson } from "./json-values.js";

/** The tool-call syntaxes a model's own output is parsed with (mesh.yaml `tool_parser:`). */
export const TOOL_PARSERS = ["hermes", "mistral", "llama3_json", "json"] as const;
export type ToolParserName = (typeof TOOL_PARSERS)[number];

/** One call found in a model's output; `arguments` is JSON text. */
export interface ParsedToolCall {
  name: string;
  arguments: string;
}

/** A model's output split into its text and its tool calls. */
export interface ParsedOutput {
  content: string;
  calls: ParsedToolCall[];
}

/** Where each syntax's tool calls begin, for streaming (the text before it is content). */
export const TOOL_CALL_MARKERS: Record<ToolParserName, readonly string[]> = {
  hermes: ["<tool_call>"],
  mistral: ["[TOOL_CALLS]"],
  llama3_json: ["<|python_tag|>"],
  json: [],
};

/**
 * Whether output that begins (after whitespace) with `text` is a tool call
 * in a syntax with no marker: llama 3 JSON starts with `{`, the generic JSON
 * syntax with `{`, `[` or a ```json fence, and Mistral's with `[{` when the
 * detokenizer dropped its `[TOOL_CALLS]` control token.
 */
export function startsAsCall(parser: ToolParserName, text: string): boolean {
  const head = text.trimStart();
  if (parser === "llama3_json") return head.startsWith("{");
  if (parser === "mistral") return head.startsWith("[{");
  if (parser === "json") return head.startsWith("{") || head.startsWith("[") || head.startsWith("```");
  return false;
}

/**
 * Splits a model's whole output into content and tool calls, as vLLM's
 * parser of the same name does:
 * - hermes: `<tool_call>{"name": …, "arguments": {…}}</tool_call>`, any number;
 * - mistral: `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]`, or the v11
 *   form `[TOOL_CALLS]name[ARGS]{…}` repeated;
 * - llama3_json: `<|python_tag|>`? then `{"name": …, "parameters": {…}}`
 *   objects separated by `;`;
 * - json: the whole output (optionally in a ```json fence) is a call object,
 *   an array of them, or `{"tool_calls": [...]}`.
 * Output that does not parse as calls is all content: a call is never
 * invented from text that is not one.
 */
export function parseToolCalls(parser: ToolParserName, text: string): ParsedOutput {
  const none = { content: text, calls: [] };
  switch (parser) {
    case "hermes":
      return parseHermes(text) ?? none;
    case "mistral":
      return parseMistral(text) ?? none;
    case "llama3_json":
      return parseLlama3(text) ?? none;
    case "json":
      return parseGenericJson(text) ?? none;
  }
}

function parseHermes(text: string): ParsedOutput | undefined {
  const first = text.indexOf("<tool_call>");
  if (first < 0) return undefined;
  const calls: ParsedToolCall[] = [];
  const pattern = /<tool_call>\s*([\s\S]*?)\s*(?:<\/tool_call>|$)/g;
  for (const match of text.slice(first).matchAll(pattern)) {
    const call = callOf(tryParseJson(match[1]));
    if (!call) return undefined;
    calls.push(call);
  }
  return calls.length > 0 ? { content: text.slice(0, first).trim(), calls } : undefined;
}

function parseMistral(text: string): ParsedOutput | undefined {
  const marker = text.indexOf("[TOOL_CALLS]");
  const content = marker < 0 ? "" : text.slice(0, marker).trim();
  const body = (marker < 0 ? text : text.slice(marker + "[TOOL_CALLS]".length)).trim();
  if (marker < 0 && !body.startsWith("[{")) return undefined;
  if (body.startsWith("[") || body.startsWith("{")) {
    const end = jsonValueEnd(body, 0);
    const calls = callsOf(tryParseJson(end < 0 ? body : body.slice(0, end)));
    return calls ? { content, calls } : undefined;
  }
  // v11 tokenizers: name[ARGS]{json}, repeated (each after its own [TOOL_CALLS]).
  const calls: ParsedToolCall[] = [];
  for (const part of body.split("[TOOL_CALLS]")) {
    const args = part.indexOf("[ARGS]");
    if (args < 0) return undefined;
    const json = part.slice(args + "[ARGS]".length).trim();
    const value = tryParseJson(json);
    if (typeof value !== "object" || value === null) return undefined;
    calls.push({ name: part.slice(0, args).trim(), arguments: JSON.stringify(value) });
  }
  return calls.length > 0 ? { content, calls } : undefined;
}

function parseLlama3(text: string): ParsedOutput | undefined {
  const tag = text.indexOf("<|python_tag|>");
  const body = (tag < 0 ? text : text.slice(tag + "<|python_tag|>".length)).trim();
  if (!body.startsWith("{")) return undefined;
  const calls: ParsedToolCall[] = [];
  let at = 0;
  while (at < body.length) {
    const end = jsonValueEnd(body, at);
    if (end < 0) return undefined;
    const call = callOf(tryParseJson(body.slice(at, end)));
    if (!call) return undefined;
    calls.push(call);
    at = end;
    const rest = /^\s*;?\s*/.exec(body.slice(at))![0];
    at += rest.length;
    if (at < body.length && body[at] !== "{") return undefined;
  }
  return calls.length > 0 ? { content: tag < 0 ? "" : text.slice(0, tag).trim(), calls } : undefined;
}

function parseGenericJson(text: string): ParsedOutput | undefined {
  let body = text.trim();
  const fence = /^```(?:json)?\s*([\s\S]*?)\s*```$/.exec(body);
  if (fence) body = fence[1]!;
  const value = tryParseJson(body);
  const list = typeof value === "object" && value !== null && !Array.isArray(value) && "tool_calls" in value ? value.tool_calls : value;
  const calls = callsOf(list);
  return calls ? { content: "", calls } : undefined;
}

/** An array of call objects or one call object; undefined when any is not a call. */
export function callsOf(value: unknown): ParsedToolCall[] | undefined {
  const items = Array.isArray(value) ? value : [value];
  const calls = items.map(callOf);
  return calls.length > 0 && calls.every((c) => c !== undefined) ? calls : undefined;
}

/**
 * `{"name", "arguments" | "parameters"}` (also OpenAI's `{"function": {…}}`)
 * as a call; arguments given as a JSON string are kept as that text.
 */
export function callOf(value: unknown): ParsedToolCall | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.function === "object" && record.function !== null) return callOf(record.function);
  if (typeof record.name !== "string" || record.name.length === 0) return undefined;
  const args = record.arguments ?? record.parameters ?? {};
  if (typeof args === "string") {
    const parsed = tryParseJson(args);
    return typeof parsed === "object" && parsed !== null ? { name: record.name, arguments: args } : undefined;
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
  return { name: record.name, arguments: JSON.stringify(args) };
}
