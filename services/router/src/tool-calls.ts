import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { GenerateResponseSchema } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateRequest, GenerateResponse } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { FinishReason } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { SamplingParams } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { CatalogBackend as Backend, CatalogModel } from "../../../lib/catalog/index.js";
import { Code, meshError } from "../../../lib/errors.js";
import { forcedCallSchema, isForced, ToolCallStream } from "../../../lib/tool-calls/index.js";
import type { ToolCallPiece, ToolStreamMode } from "../../../lib/tool-calls/index.js";

/** The OpenAI-style id of one tool call. */
export function newToolCallId(): string {
  return `call_${randomBytes(12).toString("base64url")}`;
}

/** Whether the router reads tool calls out of this backend's text (in-process engines) rather than passing the upstream's through. */
function parsesText(backend: Backend): boolean {
  return backend.engine !== "openai-upstream";
}

/**
 * How a request's output is read for tool calls on a backend: undefined
 * when it has no tools, `tool_choice` is "none", or the upstream does the
 * parsing itself.
 */
export function toolStreamMode(model: CatalogModel, backend: Backend, req: GenerateRequest): ToolStreamMode | undefined {
  const use = req.tools;
  if (!use || use.tools.length === 0 || use.choice === "none" || !parsesText(backend)) return undefined;
  return isForced(use) ? { kind: "forced" } : { kind: "auto", parser: model.tool_parser ?? "hermes" };
}

/**
 * The shard's sampling for a request with tools on an in-process engine: a
 * forced call (`required` or a named function) decodes under the grammar of
 * the call schema; other requests keep their own.
 */
export function samplingWithTools(sampling: SamplingParams, backend: Backend, req: GenerateRequest): SamplingParams {
  if (!req.tools || !isForced(req.tools) || !parsesText(backend) || req.tools.tools.length === 0) return sampling;
  try {
    return { ...sampling, jsonSchema: forcedCallSchema(req.tools) };
  } catch (err) {
    throw meshError(Code.InvalidArgument, (err as Error).message, { reason: "invalid_value", param: "tool_choice", cause: err });
  }
}

/**
 * Reads tool calls out of a routed stream's text: deltas carry content and
 * tool-call pieces, and a stream that called a tool finishes with
 * TOOL_CALLS. Without a mode the stream passes unchanged.
 */
export async function* withToolCalls(stream: AsyncGenerator<GenerateResponse>, mode: ToolStreamMode | undefined): AsyncGenerator<GenerateResponse> {
  if (!mode) {
    yield* stream;
    return;
  }
  const reader = new ToolCallStream(mode, newToolCallId);
  for await (const res of stream) {
    const event = res.event;
    if (event.case === "delta") {
      const out = reader.push(event.value.text);
      yield delta(out.content, event.value.tokenCount, out.toolCalls);
    } else if (event.case === "finished") {
      const out = reader.finish();
      if (out.content || out.toolCalls.length > 0) yield delta(out.content, 0, out.toolCalls);
      const finished = event.value;
      if (reader.calls > 0 && finished.finishReason === FinishReason.STOP) finished.finishReason = FinishReason.TOOL_CALLS;
      yield res;
    } else {
      yield res;
    }
  }
}

function delta(text: string, tokenCount: number, toolCalls: ToolCallPiece[]): GenerateResponse {
  return create(GenerateResponseSchema, { event: { case: "delta", value: { text, tokenCount, toolCalls } } });
}
