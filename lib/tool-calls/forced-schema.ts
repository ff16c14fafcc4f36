/** A function the model may call, as the mesh carries it (proto `ToolDefinition`). */
export interface ToolFunction {
  name: string;
  description?: string;
  /** The arguments' JSON schema as JSON text; empty: any object. */
  parametersJson: string;
}

/** How a request lets the model use its tools (proto `ToolSettings`). */
export interface ToolUse {
  tools: readonly ToolFunction[];
  choice: string;
  functionName: string;
  parallel: boolean;
}

/** Most calls one forced (`required`, parallel) generation may make. */
export const MAX_FORCED_CALLS = 8;

/** Whether a request forces a call (`required` or a named function): the output is then decoded under a grammar. */
export function isForced(use: Pick<ToolUse, "choice"> | undefined): boolean {
  return use?.choice === "required" || use?.choice === "function";
}

function callSchema(tool: ToolFunction): Record<string, unknown> {
  const parameters = tool.parametersJson ? (JSON.parse(tool.parametersJson) as Record<string, unknown>) : {};
  const args = Object.keys(parameters).length === 0 ? { type: "object", additionalProperties: true } : parameters;
  return { type: "object", properties: { name: { const: tool.name }, arguments: args }, required: ["name", "arguments"], additionalProperties: false };
}

/**
 * The JSON schema a forced tool choice decodes under, so the arguments
 * always parse and follow the function's `parameters`: one
 * `{"name", "arguments"}` object for a named function (or `required`
 * without parallel calls, `oneOf` the tools), an array of 1 to
 * MAX_FORCED_CALLS such objects for `required` with parallel calls.
 * Key order is fixed (name first), so a stream names the call before its
 * arguments arrive.
 */
export function forcedCallSchema(use: ToolUse): string {
  if (use.choice === "function") {
    const tool = use.tools.find((t) => t.name === use.functionName);
    if (!tool) throw new Error(`tool_choice names the function "${use.functionName}", which is not in tools`);
    return JSON.stringify(callSchema(tool));
  }
  const calls = use.tools.map(callSchema);
  const one = calls.length === 1 ? calls[0] : { oneOf: calls };
  return JSON.stringify(use.parallel ? { type: "array", items: one, minItems: 1, maxItems: MAX_FORCED_CALLS } : one);
}
