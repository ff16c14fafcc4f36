import { z } from "zod";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ToolSettingsSchema } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import { Code, meshError } from "../../../../lib/errors.js";

function invalidParam(param: string, message: string, reason = "invalid_value") {
  return meshError(Code.InvalidArgument, message, { reason, param });
}
import { strictSchema } from "./strict-schema.js";

/** Most tools one request may define (OpenAI's limit). */
export const MAX_TOOLS = 128;
/** Function names as OpenAI allows them. */
const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const functionName = z.string().regex(FUNCTION_NAME, "a function name: letters, digits, _ and -, at most 64");

/** One entry of `tools` (function tools only). */
export const toolSchema = z.object({
  type: z.literal("function"),
  function: z.object({
    name: functionName,
    description: z.string().max(8192).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

/** `tool_choice`: "none", "auto", "required", or a named function. */
export const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: functionName }) }),
]);

/** An assistant message's `tool_calls` entry. */
export const toolCallSchema = z.object({
  id: z.string().min(1).max(256),
  type: z.literal("function"),
  function: z.object({ name: z.string().min(1).max(256), arguments: z.string().max(1 << 20) }),
});

export type ToolDefinitionInput = z.infer<typeof toolSchema>;
export type ToolChoiceInput = z.infer<typeof toolChoiceSchema>;
/** What the router takes as `tools` (proto ToolSettings). */
export type ToolSettingsInit = MessageInitShape<typeof ToolSettingsSchema>;

/**
 * The tool settings of a request, checked: a named `tool_choice` must name
 * one of `tools`, `required` needs tools, and a choice that forces a call
 * (decoded under the arguments' schema) may only use schema keywords the
 * grammar enforces (a 400 naming `tools` otherwise). Undefined without tools.
 */
export function toolSettingsOf(
  tools: readonly ToolDefinitionInput[] | null | undefined,
  choice: ToolChoiceInput | null | undefined,
  parallel: boolean | null | undefined,
  param = "tools",
): ToolSettingsInit | undefined {
  const list = tools ?? [];
  if (list.length > MAX_TOOLS) throw invalidParam(param, `At most ${MAX_TOOLS} tools are allowed.`);
  const names = new Set<string>();
  for (const tool of list) {
    if (names.has(tool.function.name)) throw invalidParam(param, `Duplicate function name in tools: '${tool.function.name}'.`);
    names.add(tool.function.name);
  }
  const mode = choice == null ? "auto" : typeof choice === "string" ? choice : "function";
  const functionName = typeof choice === "object" && choice !== null ? choice.function.name : "";
  if (list.length === 0) {
    if (mode === "required" || mode === "function")
      throw invalidParam("tool_choice", "tool_choice requires tools: give the functions the model may call in 'tools'.");
    return undefined;
  }
  if (mode === "function" && !names.has(functionName))
    throw invalidParam("tool_choice", `tool_choice names the function '${functionName}', which is not in tools.`);
  const forced = mode === "required" || mode === "function";
  return {
    tools: list.map((tool, i) => {
      const parameters = tool.function.parameters ?? {};
      const checked =
        forced && (mode === "required" || tool.function.name === functionName)
          ? strictSchema(parameters, param, `tools[${i}].function.parameters`)
          : parameters;
      return {
        name: tool.function.name,
        description: tool.function.description ?? "",
        parametersJson: JSON.stringify(checked),
        strict: tool.function.strict === true,
      };
    }),
    choice: mode,
    functionName,
    parallel: parallel ?? true,
  };
}

/** A streamed or collected tool-call piece, as the generation yields it. */
export interface ToolCallPiece {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

/** An OpenAI `tool_calls` entry of a message. */
export interface ToolCallJson {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** Puts streamed pieces back together into whole calls (by index). */
export function assembleToolCalls(pieces: readonly ToolCallPiece[]): ToolCallJson[] {
  const calls: ToolCallJson[] = [];
  for (const piece of pieces) {
    const call = (calls[piece.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
    if (piece.id) call.id = piece.id;
    if (piece.name) call.function.name = piece.name;
    call.function.arguments += piece.arguments;
  }
  return calls.filter(Boolean);
}

/** A chat chunk's `delta.tool_calls`: id, type and name on a call's first piece, then argument fragments. */
export function toolCallDeltas(pieces: readonly ToolCallPiece[]): object[] {
  return pieces.map((p) =>
    p.id
      ? { index: p.index, id: p.id, type: "function", function: { name: p.name, arguments: p.arguments } }
      : { index: p.index, function: { arguments: p.arguments } },
  );
}
