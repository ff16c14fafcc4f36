import { z } from "zod";
import { Code, meshError } from "../../../../lib/errors.js";
import { parseWith, responseFormatSchema, samplingOf } from "./chat-request.js";
import type { GenerationInput } from "./generation.js";
import { MAX_TOOLS, toolSettingsOf } from "./tools.js";

/** Most input items one request may carry. */
export const MAX_INPUT_ITEMS = 4096;

const textPart = z.object({ type: z.enum(["input_text", "output_text", "text"]), text: z.string() }).loose();
const messageContent = z.union([z.string(), z.array(textPart).min(1)], { error: "expected a string or a non-empty array of input_text parts" });

const messageItem = z.object({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: messageContent,
  id: z.string().optional(),
  status: z.string().optional(),
});
const functionCallItem = z.object({
  type: z.literal("function_call"),
  call_id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  arguments: z.string().max(1 << 20),
  id: z.string().optional(),
  status: z.string().optional(),
});
const functionCallOutputItem = z.object({
  type: z.literal("function_call_output"),
  call_id: z.string().min(1).max(256),
  output: z.union([z.string(), z.array(textPart)]),
  id: z.string().optional(),
  status: z.string().optional(),
});
const inputItem = z.union([functionCallItem, functionCallOutputItem, messageItem]);

/** A Responses API function tool (flat, unlike chat's `{type, function: {…}}`). */
const functionTool = z.object({
  type: z.literal("function"),
  name: z.string(),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

const textFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    name: z.string(),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().nullable().optional(),
    description: z.string().optional(),
  }),
]);

/** POST /v1/responses, the stateless parts the mesh serves. */
export const responsesRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(inputItem).min(1).max(MAX_INPUT_ITEMS)]),
  instructions: z.string().nullable().optional(),
  tools: z.array(functionTool).max(MAX_TOOLS).nullable().optional(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.object({ type: z.literal("function"), name: z.string() })])
    .nullable()
    .optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  max_output_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  text: z.object({ format: textFormat.optional() }).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  store: z.boolean().nullable().optional(),
  previous_response_id: z.string().nullable().optional(),
  user: z.string().max(256).optional(),
  metadata: z.record(z.string(), z.string()).nullable().optional(),
  include: z.array(z.string()).max(16).nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
});

/** The `include` value that asks for the output text's logprobs. */
export const INCLUDE_LOGPROBS = "message.output_text.logprobs";

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/**
 * Validates a Responses request. The mesh keeps no responses: `store: true`
 * and `previous_response_id` are a 400 saying so (send the whole
 * conversation as `input` items instead).
 */
export function parseResponsesRequest(body: unknown): ResponsesRequest {
  const request = parseWith(responsesRequestSchema, body);
  if (request.previous_response_id) {
    throw invalid(
      "previous_response_id",
      "This mesh keeps no responses, so previous_response_id cannot be used: send the conversation as input items (messages, function_call, function_call_output).",
    );
  }
  if (request.store === true) throw invalid("store", "This mesh keeps no responses: store must be false or left out.");
  return request;
}

/** A Responses request as the same generation input chat uses (one path). */
export function responsesGenerationInput(request: ResponsesRequest): GenerationInput {
  const messages: GenerationInput["messages"] = [];
  if (request.instructions) messages.push({ role: "system", content: request.instructions });
  const items = typeof request.input === "string" ? [{ role: "user" as const, content: request.input }] : request.input;
  for (const item of items) {
    if ("type" in item && item.type === "function_call") {
      const call = { id: item.call_id, name: item.name, arguments: item.arguments };
      const last = messages.at(-1);
      // Consecutive calls are one assistant turn, as chat history has them.
      if (last?.role === "assistant" && last.toolCalls) last.toolCalls.push(call);
      else messages.push({ role: "assistant", content: "", toolCalls: [call] });
    } else if ("type" in item && item.type === "function_call_output") {
      messages.push({ role: "tool", content: partsText(item.output), toolCallId: item.call_id });
    } else {
      const message = item;
      messages.push({ role: message.role === "developer" ? "system" : message.role, content: partsText(message.content) });
    }
  }
  const chatTools = request.tools?.map((t) => ({
    type: "function" as const,
    function: { name: t.name, description: t.description ?? undefined, parameters: t.parameters ?? undefined, strict: t.strict },
  }));
  const choice = request.tool_choice;
  const chatChoice = choice != null && typeof choice === "object" ? { type: "function" as const, function: { name: choice.name } } : choice;
  const format = request.text?.format;
  const responseFormat = format?.type === "json_schema" ? { type: "json_schema" as const, json_schema: { name: format.name, schema: format.schema } } : format;
  return {
    model: request.model,
    messages,
    prompt: "",
    sampling: samplingOf({ model: request.model, temperature: request.temperature, top_p: request.top_p, user: request.user }, request.max_output_tokens),
    jsonSchema: responseFormatSchema({ response_format: responseFormat }),
    ...(request.include?.includes(INCLUDE_LOGPROBS) ? { logprobs: { top: request.top_logprobs ?? 0 } } : {}),
    user: request.user ?? "",
    request,
    tools: toolSettingsOf(chatTools, chatChoice, request.parallel_tool_calls),
  };
}

function partsText(content: string | { text: string }[]): string {
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

function invalid(param: string, message: string) {
  return meshError(Code.InvalidArgument, message, { reason: "unsupported_parameter", param });
}
