import { tryParseJson } from "./json-values.js";
import type { ToolFunction } from "./forced-schema.js";

/** A conversation message as the mesh carries it (proto `ChatMessage`). */
export interface ToolMessage {
  role: string;
  content: string;
  toolCalls?: readonly { id: string; name: string; arguments: string }[];
  toolCallId?: string;
  name?: string;
}

/** A message in the shape Hugging Face chat templates read. */
export interface TemplateChatMessage {
  role: string;
  content: string;
  tool_calls?: { id: string; type: "function"; function: { name: string; arguments: unknown } }[];
  tool_call_id?: string;
  name?: string;
}

/** Tools in the shape chat templates read (`tools` variable). */
export interface TemplateTool {
  type: "function";
  function: { name: string; description?: string; parameters: unknown };
}

/** What a template is rendered with. */
export interface TemplateInput {
  messages: TemplateChatMessage[];
  tools?: TemplateTool[];
}

/** Whether a Jinja chat template renders tools itself (it reads `tools` or `tool_calls`). */
export function templateHandlesTools(source: string | undefined): boolean {
  return source !== undefined && /\btools\b/.test(source) && /\btool_calls\b/.test(source);
}

/**
 * The template's input for a conversation with tools. A template that
 * handles tools gets them as `tools` and the messages in Hugging Face's
 * shape (assistant `tool_calls` with arguments as objects, `tool` messages
 * with `tool_call_id`). A template that does not gets the documented
 * default (docs/models.md, "Tool calling"): the tools described in the
 * system message in the Hermes format, assistant calls written as
 * `<tool_call>{"name", "arguments"}</tool_call>` lines, and tool results
 * as user messages wrapped in `<tool_response>`; that is also the syntax
 * the `hermes` parser reads back.
 */
export function templateInput(messages: readonly ToolMessage[], tools: readonly ToolFunction[], handlesTools: boolean): TemplateInput {
  if (handlesTools) {
    return {
      messages: messages.map(hfMessage),
      ...(tools.length > 0 ? { tools: tools.map(templateTool) } : {}),
    };
  }
  const hasToolParts = tools.length > 0 || messages.some((m) => m.role === "tool" || (m.toolCalls?.length ?? 0) > 0);
  if (!hasToolParts) return { messages: messages.map((m) => ({ role: m.role, content: m.content })) };
  const rendered: TemplateChatMessage[] = [];
  for (const m of messages) {
    if (m.role === "tool") {
      rendered.push({ role: "user", content: `<tool_response>\n${m.content}\n</tool_response>` });
    } else if (m.toolCalls && m.toolCalls.length > 0) {
      const calls = m.toolCalls.map((c) => `<tool_call>\n${JSON.stringify({ name: c.name, arguments: tryParseJson(c.arguments) ?? {} })}\n</tool_call>`);
      rendered.push({ role: m.role, content: [m.content, ...calls].filter(Boolean).join("\n") });
    } else {
      rendered.push({ role: m.role, content: m.content });
    }
  }
  if (tools.length > 0) {
    const system = defaultToolSystemPrompt(tools);
    if (rendered[0]?.role === "system") rendered[0] = { role: "system", content: `${rendered[0].content}\n\n${system}` };
    else rendered.unshift({ role: "system", content: system });
  }
  return { messages: rendered };
}

/** The Hermes-style tool description used for templates without tool support. */
export function defaultToolSystemPrompt(tools: readonly ToolFunction[]): string {
  const list = tools.map((t) => JSON.stringify(templateTool(t))).join("\n");
  return (
    "You may call one or more functions to assist with the user query.\n\n" +
    `You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n${list}\n</tools>\n\n` +
    "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
  );
}

function templateTool(tool: ToolFunction): TemplateTool {
  return {
    type: "function",
    function: { name: tool.name, ...(tool.description ? { description: tool.description } : {}), parameters: tryParseJson(tool.parametersJson || "{}") ?? {} },
  };
}

function hfMessage(m: ToolMessage): TemplateChatMessage {
  const out: TemplateChatMessage = { role: m.role, content: m.content };
  if (m.toolCalls && m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: tryParseJson(c.arguments) ?? c.arguments } }));
  }
  if (m.toolCallId) out.tool_call_id = m.toolCallId;
  if (m.name) out.name = m.name;
  return out;
}
