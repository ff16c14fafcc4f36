import { z } from "zod";
import { HttpError } from "./errors.js";

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const content = z.union([z.string(), z.array(textPart).min(1)]);

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content, name: z.string().optional() }),
  z.object({ role: z.literal("developer"), content, name: z.string().optional() }),
  z.object({ role: z.literal("user"), content, name: z.string().optional() }),
  z.object({ role: z.literal("assistant"), content: content.nullable().optional(), name: z.string().optional() }),
]);

/** The chat completion request, as OpenAI documents it (the parts the mesh serves). */
export const chatRequestSchema = z.object({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  n: z.literal(1).nullable().optional(),
  user: z.string().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  top_k: z.number().int().min(-1).optional(),
  min_p: z.number().min(0).max(1).optional(),
  repetition_penalty: z.number().gt(0).max(2).optional(),
  ignore_eos: z.boolean().optional(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Validates a parsed JSON body; a 400 naming the bad `param` otherwise. */
export function parseChatRequest(body: unknown): ChatRequest {
  const result = chatRequestSchema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
    throw new HttpError(400, `Invalid value for '${param || "body"}': ${issue.message}`, "invalid_request_error", param || null, issue.code === "invalid_type" && issue.input === undefined ? "missing_required_parameter" : "invalid_value");
  }
  const request = result.data;
  if (request.stream_options && !request.stream) {
    throw new HttpError(400, "stream_options is only allowed when stream is true", "invalid_request_error", "stream_options", "invalid_value");
  }
  return request;
}

/** A message's content as plain text (text parts joined). */
export function messageText(content: string | { type: "text"; text: string }[] | null | undefined): string {
  if (content == null) return "";
  return typeof content === "string" ? content : content.map((part) => part.text).join("");
}
