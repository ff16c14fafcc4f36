import type { ServerResponse } from "node:http";
import { sendCompletionJson } from "./chat-completions.js";
import { toHttpError } from "./errors.js";
import { collectGeneration } from "./generation.js";
import type { FinishReasonName, Generations, GenerationEvent, RequestContext, TokenUsage } from "./generation.js";
import { parseResponsesRequest, responsesGenerationInput } from "./responses-request.js";
import type { ResponsesRequest } from "./responses-request.js";
import { frameEvent, startEventStream, waitForDrain } from "./sse.js";
import { assembleToolCalls } from "./tools.js";
import type { ToolCallPiece } from "./tools.js";
import { chatLogprobs } from "./logprobs.js";
import type { ChatTokenLogprob } from "./logprobs.js";
import type { TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";

/** A message output item. */
interface MessageItem {
  type: "message";
  id: string;
  status: "in_progress" | "completed" | "incomplete";
  role: "assistant";
  content: { type: "output_text"; text: string; annotations: never[]; logprobs: ChatTokenLogprob[] }[];
}

/** A function call output item. */
interface FunctionCallItem {
  type: "function_call";
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: "in_progress" | "completed" | "incomplete";
}

type OutputItem = MessageItem | FunctionCallItem;

/**
 * POST /v1/responses, stateless: the request becomes the same generation
 * input as a chat completion (instructions as the system message, input
 * items as messages, tool calls and their outputs as chat history) and
 * runs on the same path; the answer is a `response` object, or its
 * documented event stream, each event with an increasing `sequence_number`.
 */
export class Responses {
  constructor(private readonly generations: Generations) {}

  async handle(res: ServerResponse, rawBody: unknown, ctx: RequestContext): Promise<void> {
    const body = parseResponsesRequest(rawBody);
    const input = responsesGenerationInput(body);
    const shape = new ResponseShape(body, ctx.requestId);
    const events = this.generations.run(input, ctx);
    if (body.stream === true) return streamResponse(res, events, ctx, shape);
    const { text, toolCalls, logprobs, finished } = await collectGeneration(events);
    const output: OutputItem[] = [];
    const status = finished.finishReason === "length" ? "incomplete" : "completed";
    if (text || toolCalls.length === 0) output.push({ ...shape.message(status), content: [outputText(text, logprobs)] });
    for (const [i, call] of assembleToolCalls(toolCalls).entries()) {
      output.push({
        type: "function_call",
        id: `fc_${ctx.requestId}_${i}`,
        call_id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
        status: "completed",
      });
    }
    sendCompletionJson(res, ctx, finished, shape.response(status, output, finished.usage, finished.finishReason));
  }
}

/** An output_text part; its `logprobs` are the entries of its text (empty unless `include` asked for them). */
function outputText(text: string, logprobs: readonly TokenLogprob[] = []): MessageItem["content"][number] {
  return { type: "output_text", text, annotations: [], logprobs: chatLogprobs(logprobs).content };
}

/** The parts of a `response` object that come from the request. */
class ResponseShape {
  readonly id: string;
  readonly createdAt = Math.floor(Date.now() / 1000);

  constructor(
    private readonly body: ResponsesRequest,
    private readonly requestId: string,
  ) {
    this.id = `resp_${requestId}`;
  }

  message(status: MessageItem["status"]): MessageItem {
    return { type: "message", id: `msg_${this.requestId}`, status, role: "assistant", content: [] };
  }

  response(status: "in_progress" | "completed" | "incomplete", output: OutputItem[], usage?: TokenUsage, finishReason?: FinishReasonName): object {
    const b = this.body;
    const text = output.flatMap((item) => (item.type === "message" ? item.content.map((c) => c.text) : [])).join("");
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status,
      error: null,
      incomplete_details: status === "incomplete" && finishReason === "length" ? { reason: "max_output_tokens" } : null,
      instructions: b.instructions ?? null,
      max_output_tokens: b.max_output_tokens ?? null,
      model: b.model,
      output,
      output_text: text,
      parallel_tool_calls: b.parallel_tool_calls ?? true,
      previous_response_id: null,
      store: false,
      temperature: b.temperature ?? 1,
      top_p: b.top_p ?? 1,
      text: { format: b.text?.format ?? { type: "text" } },
      tool_choice: b.tool_choice ?? "auto",
      tools: b.tools ?? [],
      truncation: "disabled",
      user: b.user ?? null,
      metadata: b.metadata ?? {},
      usage: usage
        ? {
            input_tokens: usage.prompt_tokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: usage.completion_tokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: usage.total_tokens,
          }
        : null,
    };
  }
}

/**
 * Streams a response as its documented events: response.created and
 * response.in_progress, then per output item output_item.added, its
 * content (content_part.added, output_text.delta…, output_text.done,
 * content_part.done, or function_call_arguments.delta… and .done),
 * output_item.done, and last response.completed (or response.incomplete
 * when max_output_tokens cut it). An error after the headers is an
 * `error` event.
 */
async function streamResponse(res: ServerResponse, events: AsyncGenerator<GenerationEvent>, ctx: RequestContext, shape: ResponseShape): Promise<void> {
  let sequence = 0;
  const write = (type: string, data: object): boolean => res.write(`event: ${type}\n${frameEvent({ type, sequence_number: sequence++, ...data })}`);
  const output: OutputItem[] = [];
  let message: MessageItem | undefined;
  let text = "";
  const entries: TokenLogprob[] = [];
  const calls = new Map<number, { item: FunctionCallItem; outputIndex: number }>();

  const closeMessage = (status: MessageItem["status"]): void => {
    if (!message) return;
    const outputIndex = output.indexOf(message);
    const part = outputText(text, entries);
    write("response.output_text.done", { item_id: message.id, output_index: outputIndex, content_index: 0, text, logprobs: part.logprobs });
    write("response.content_part.done", { item_id: message.id, output_index: outputIndex, content_index: 0, part });
    message.status = status;
    message.content = [part];
    write("response.output_item.done", { output_index: outputIndex, item: message });
    message = undefined;
  };
  const openMessage = (): MessageItem => {
    const item = shape.message("in_progress");
    output.push(item);
    write("response.output_item.added", { output_index: output.length - 1, item });
    write("response.content_part.added", { item_id: item.id, output_index: output.length - 1, content_index: 0, part: outputText("") });
    return item;
  };
  const onToolPiece = (piece: ToolCallPiece): void => {
    closeMessage("completed");
    let call = calls.get(piece.index);
    if (!call) {
      const item: FunctionCallItem = {
        type: "function_call",
        id: `fc_${ctx.requestId}_${piece.index}`,
        call_id: piece.id,
        name: piece.name,
        arguments: "",
        status: "in_progress",
      };
      output.push(item);
      call = { item, outputIndex: output.length - 1 };
      calls.set(piece.index, call);
      write("response.output_item.added", { output_index: call.outputIndex, item: { ...item } });
    }
    if (piece.arguments) {
      call.item.arguments += piece.arguments;
      write("response.function_call_arguments.delta", { item_id: call.item.id, output_index: call.outputIndex, delta: piece.arguments });
    }
  };

  let opened = false;
  try {
    for await (const event of events) {
      if (ctx.signal.aborted) break;
      if (event.type === "started") {
        const meshMs = performance.now() - ctx.startedAt;
        startEventStream(res, { ...ctx.headers, "server-timing": `mesh;dur=${meshMs.toFixed(2)}`, "openai-processing-ms": String(Math.round(meshMs)) });
        opened = true;
        write("response.created", { response: shape.response("in_progress", []) });
        write("response.in_progress", { response: shape.response("in_progress", []) });
        continue;
      }
      if (event.type === "delta") {
        if (event.text || event.logprobs?.length) {
          message ??= openMessage();
          text += event.text;
          entries.push(...(event.logprobs ?? []));
          const logprobs = chatLogprobs(event.logprobs ?? []).content;
          write("response.output_text.delta", { item_id: message.id, output_index: output.indexOf(message), content_index: 0, delta: event.text, logprobs });
        }
        for (const piece of event.toolCalls ?? []) onToolPiece(piece);
        if (!res.writableNeedDrain) continue;
        await waitForDrain(res, ctx);
        continue;
      }
      const status = event.finishReason === "length" ? "incomplete" : "completed";
      if (output.length === 0) message = openMessage();
      closeMessage(status);
      for (const { item, outputIndex } of calls.values()) {
        item.status = status;
        write("response.function_call_arguments.done", { item_id: item.id, output_index: outputIndex, name: item.name, arguments: item.arguments });
        write("response.output_item.done", { output_index: outputIndex, item });
      }
      write(status === "completed" ? "response.completed" : "response.incomplete", {
        response: shape.response(status, output, event.usage, event.finishReason),
      });
      res.end();
    }
  } catch (err) {
    if (!opened) throw err;
    if (!res.writableEnded && !res.destroyed && !ctx.signal.aborted) {
      const { error } = toHttpError(err, ctx.requestId).body();
      write("error", { code: error.code, message: error.message, param: error.param });
      res.end();
    }
  } finally {
    if (opened && !res.writableEnded) res.end();
  }
}
