import { z } from "zod";
import { Code, meshError } from "../../../../lib/errors.js";
import type { ConnectError } from "../../../../lib/errors.js";
import type { GenerationInput } from "./generation.js";
import { strictSchema } from "./strict-schema.js";
import { MAX_TOOLS, toolCallSchema, toolChoiceSchema, toolSchema, toolSettingsOf } from "./tools.js";

/** Most choices (`n`) one chat request may ask for: each is its own sequence. */
export const MAX_CHOICES = 16;

/** Most stop sequences OpenAI accepts. */
export const MAX_STOP_SEQUENCES = 4;

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const content = z.union([z.string(), z.array(textPart).min(1)], { error: "expected a string or a non-empty array of text parts ({type: 'text', text})" });

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content, name: z.string().optional() }),
  z.object({ role: z.literal("developer"), content, name: z.string().optional() }),
  z.object({ role: z.literal("user"), content, name: z.string().optional() }),
  z.object({
    role: z.literal("assistant"),
    content: content.nullable().optional(),
    name: z.string().optional(),
    tool_calls: z.array(toolCallSchema).max(MAX_TOOLS).nullable().optional(),
  }),
  z.object({ role: z.literal("tool"), content, tool_call_id: z.string().min(1).max(256) }),
]);

const stop = z
  .union([z.string().min(1), z.array(z.string().min(1)).max(MAX_STOP_SEQUENCES)], {
    error: `expected a non-empty string or an array of up to ${MAX_STOP_SEQUENCES} non-empty strings`,
  })
  .nullable()
  .optional();

/** Largest token count a request may name (the wire's uint32); the model's context then bounds it. */
export const MAX_TOKEN_COUNT = 4_294_967_295;
/** Largest top_k (the wire's int32); beyond the vocabulary it means "all". */
export const MAX_TOP_K = 2_147_483_647;

/**
 * Sampling fields shared by chat and text completions, with OpenAI's
 * ranges, plus the engine extensions vLLM users send (`top_k`, `min_p`,
 * `repetition_penalty`, `ignore_eos`). Every one reaches the engine.
 */
export const samplingFields = {
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().min(1).max(MAX_TOKEN_COUNT).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  stop,
  seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  n: z.number().int().min(1).max(128).nullable().optional(),
  user: z.string().max(256).optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
  top_k: z.number().int().min(-1).max(MAX_TOP_K).nullable().optional(),
  min_p: z.number().min(0).max(1).nullable().optional(),
  repetition_penalty: z.number().gt(0).max(2).nullable().optional(),
  ignore_eos: z.boolean().nullable().optional(),
  logit_bias: z.record(z.string(), z.number()).nullable().optional(),
};

/** The chat completion request, as OpenAI documents it (the parts the mesh serves). */
export const chatRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(message).min(1).max(4096),
  max_completion_tokens: z.number().int().min(1).max(MAX_TOKEN_COUNT).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  response_format: z
    .discriminatedUnion("type", [
      z.object({ type: z.literal("text") }),
      z.object({ type: z.literal("json_object") }),
      z.object({ type: z.literal("json_schema"), json_schema: z.object({ name: z.string(), schema: z.record(z.string(), z.unknown()).optional() }).loose() }),
    ])
    .nullable()
    .optional(),
  tools: z.array(toolSchema).nullable().optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  functions: z.array(z.unknown()).nullable().optional(),
  function_call: z.unknown().optional(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
type SamplingRequest = Pick<ChatRequest, keyof typeof samplingFields>;

/** A 400 naming the bad `param`, as a ConnectError so every protocol maps it the same way. */
export function invalidParam(param: string, message: string, reason = "invalid_value"): ConnectError {
  return meshError(Code.InvalidArgument, message, { reason, param });
}

/** Runs a zod schema; the first issue becomes a 400 naming its `param` (e.g. `messages[0].role`). */
export function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidParam("body", "The request body must be a JSON object.", "invalid_json");
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
  const missing = issue.code === "invalid_type" && valueAt(body, issue.path) === undefined;
  const message = missing ? `Missing required parameter: '${path}'.` : `Invalid value for '${path || "body"}': ${issue.message}`;
  throw invalidParam(path || "body", message, missing ? "missing_required_parameter" : "invalid_value");
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Checks what the schema allows but the mesh does not serve: a clear 400 rather than a silent ignore. */
export function checkSupported(request: SamplingRequest, maxN = 1): void {
  if (request.n != null && request.n > maxN)
    throw invalidParam("n", maxN === 1 ? "Only n=1 is supported on this endpoint." : `At most n=${maxN} is supported by this mesh.`, "unsupported_value");
  if (request.stream_options != null && request.stream !== true) {
    throw invalidParam("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
  }
  if (request.logit_bias != null && Object.keys(request.logit_bias).length > 0) {
    throw invalidParam("logit_bias", "logit_bias is not supported by this mesh.", "unsupported_parameter");
  }
}

/** Validates a parsed JSON body; a 400 naming the bad `param` otherwise. */
export function parseChatRequest(body: unknown): ChatRequest {
  const request = parseWith(chatRequestSchema, body);
  checkSupported(request, MAX_CHOICES);
  if ((request.top_logprobs ?? 0) > 0 && request.logprobs !== true) {
    throw invalidParam("top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.");
  }
  responseFormatSchema(request);
  if (request.functions != null && request.functions.length > 0)
    throw invalidParam("functions", "functions (deprecated) are not supported by this mesh: use tools.", "unsupported_parameter");
  if (request.function_call != null && request.function_call !== "none")
    throw invalidParam("function_call", "function_call (deprecated) is not supported by this mesh: use tool_choice.", "unsupported_parameter");
  toolSettingsOf(request.tools, request.tool_choice, request.parallel_tool_calls);
  return request;
}

/** A message's content as plain text (text parts joined). */
export function messageText(content: string | { type: "text"; text: string }[] | null | undefined): string {
  if (content == null) return "";
  return typeof content === "string" ? content : content.map((part) => part.text).join("");
}

/** The sampling settings of a validated request, as the router takes them. */
export function samplingOf(request: SamplingRequest, maxTokens: number | null | undefined): GenerationInput["sampling"] {
  const stopList = request.stop == null ? [] : typeof request.stop === "string" ? [request.stop] : request.stop;
  return {
    temperature: request.temperature ?? 1,
    topP: request.top_p ?? undefined,
    topK: request.top_k != null && request.top_k > 0 ? request.top_k : undefined,
    minP: request.min_p ?? undefined,
    repetitionPenalty: request.repetition_penalty ?? undefined,
    frequencyPenalty: request.frequency_penalty ?? 0,
    presencePenalty: request.presence_penalty ?? 0,
    // Engines take a 32-bit seed; wider ones are folded, so equal seeds stay equal.
    seed: request.seed == null ? undefined : Number(BigInt.asUintN(32, BigInt(request.seed))),
    maxTokens: maxTokens ?? 0,
    stop: stopList,
    ignoreEos: request.ignore_eos ?? false,
  };
}

const JSON_SCHEMA_TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

/**
 * The JSON schema a `response_format` asks for, as the shard takes it:
 * "{}" for json_object (any JSON object), the schema's JSON text for
 * json_schema, undefined for text. A schema whose root `type` is not a JSON
 * Schema type is a 400 naming `response_format`.
 */
export function responseFormatSchema(request: Pick<ChatRequest, "response_format">): string | undefined {
  const format = request.response_format;
  if (format == null || format.type === "text") return undefined;
  if (format.type === "json_object") return "{}";
  const schema = format.json_schema.schema ?? {};
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (!types.every((t) => typeof t === "string" && JSON_SCHEMA_TYPES.has(t))) {
    throw invalidParam("response_format", `response_format.json_schema.schema has an invalid type: ${JSON.stringify(schema.type)}`);
  }
  return JSON.stringify(strictSchema(schema, "response_format", "response_format.json_schema.schema"));
}

/** A validated chat request as the protocol-neutral generation input. */
export function chatGenerationInput(request: ChatRequest): GenerationInput {
  return {
    model: request.model,
    messages: request.messages.map(chatMessageOf),
    prompt: "",
    sampling: samplingOf(request, request.max_completion_tokens ?? request.max_tokens),
    jsonSchema: responseFormatSchema(request),
    ...(request.logprobs === true ? { logprobs: { top: request.top_logprobs ?? 0 } } : {}),
    user: request.user ?? "",
    request,
    tools: toolSettingsOf(request.tools, request.tool_choice, request.parallel_tool_calls),
  };
}

/** A request message as the mesh carries it (tool calls and results included). */
function chatMessageOf(m: ChatRequest["messages"][number]): GenerationInput["messages"][number] {
  const base = { role: m.role === "developer" ? "system" : m.role, content: messageText(m.content) };
  if (m.role === "tool") return { ...base, toolCallId: m.tool_call_id };
  if (m.role === "assistant" && m.tool_calls?.length) {
    return { ...base, toolCalls: m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) };
  }
  return base;
}
