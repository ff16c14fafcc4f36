import type { ServerResponse } from "node:http";
import type { Client } from "@connectrpc/connect";
import { z } from "zod";
import type { EmbedResponse, RouterService } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import { UsageStatus } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { asConnectError, Code, meshError } from "../../../../lib/errors.js";
import type { UsageRecorder } from "../usage-recorder.js";
import { parseWith, samplingOf } from "./chat-request.js";
import { mayUse } from "./generation.js";
import type { GenerationGate, GenerationInput, RequestContext } from "./generation.js";

/** Most inputs one request may embed (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;
/** Most token ids in one token-array input. */
const MAX_INPUT_TOKEN_IDS = 65_536;

const tokenIds = z.array(z.number().int().min(0).max(0xffffffff)).min(1).max(MAX_INPUT_TOKEN_IDS);

/** POST /v1/embeddings as OpenAI documents it. */
export const embeddingsRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union(
    [z.string().min(1), z.array(z.string().min(1)).min(1).max(MAX_EMBEDDING_INPUTS), tokenIds, z.array(tokenIds).min(1).max(MAX_EMBEDDING_INPUTS)],
    {
      error: `expected a non-empty string, an array of up to ${MAX_EMBEDDING_INPUTS} non-empty strings, an array of token ids, or an array of token-id arrays`,
    },
  ),
  encoding_format: z.enum(["float", "base64"]).nullable().optional(),
  dimensions: z.number().int().min(1).max(65_536).nullable().optional(),
  user: z.string().max(256).optional(),
});

export type EmbeddingsRequest = z.infer<typeof embeddingsRequestSchema>;

/** The request's inputs, one per embedding: texts or token-id arrays. */
export function embeddingInputs(input: EmbeddingsRequest["input"]): { text: string; tokenIds: number[] }[] {
  if (typeof input === "string") return [{ text: input, tokenIds: [] }];
  if (input.every((i) => typeof i === "number")) return [{ text: "", tokenIds: input }];
  return (input as (string | number[])[]).map((i) => (typeof i === "string" ? { text: i, tokenIds: [] } : { text: "", tokenIds: i }));
}

/** A vector as OpenAI's `base64` encoding has it: little-endian float32 bytes. */
export function base64Vector(values: readonly number[]): string {
  const floats = new Float32Array(values);
  const bytes = Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
  if (!IS_LITTLE_ENDIAN) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  return bytes.toString("base64");
}

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * POST /v1/embeddings: the same key scope check, rate-limit admission and
 * usage record as a generation, then the router's Embed (a replica of the
 * model's backend embeds the whole batch).
 */
export class Embeddings {
  constructor(
    private readonly router: Client<typeof RouterService>,
    private readonly usage: UsageRecorder,
    private readonly requestTimeoutMs: number,
    private readonly gate?: GenerationGate,
  ) {}

  async handle(res: ServerResponse, rawBody: unknown, ctx: RequestContext): Promise<void> {
    const body = parseWith(embeddingsRequestSchema, rawBody);
    const answer = await this.embed(body, ctx);
    const base64 = body.encoding_format === "base64";
    const json = JSON.stringify({
      object: "list",
      data: answer.embeddings.map((e, index) => ({ object: "embedding", index, embedding: base64 ? base64Vector(e.values) : e.values })),
      model: body.model,
      usage: { prompt_tokens: answer.promptTokens, total_tokens: answer.promptTokens },
    });
    res.writeHead(200, {
      ...ctx.headers,
      "x-mesh-backend": answer.backend,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(json),
      "openai-processing-ms": String(Math.round(performance.now() - ctx.startedAt)),
    });
    res.end(json);
  }

  /** Embeds a validated request (REST and gRPC alike): scope, admission, the router's Embed, one usage record. */
  async embed(body: EmbeddingsRequest, ctx: RequestContext): Promise<EmbedResponse> {
    const inputs = embeddingInputs(body.input);
    if (!mayUse(ctx.principal, body.model)) {
      throw meshError(Code.PermissionDenied, `This key may not use the model \`${body.model}\``, { reason: "permission_denied", param: "model" });
    }
    const admitted: GenerationInput = {
      model: body.model,
      messages: [],
      prompt: inputs.map((i) => i.text || " ".repeat(i.tokenIds.length * 4)).join(" "),
      sampling: samplingOf({ model: body.model }, 0),
      user: body.user ?? "",
      request: body,
    };
    await this.gate?.admit(admitted, ctx);
    const timeoutMs = Math.min(ctx.timeoutMs ?? this.requestTimeoutMs, this.requestTimeoutMs);
    let status = UsageStatus.OK;
    let promptTokens = 0;
    let backend = "";
    let reachedModel = false;
    try {
      const answer = await this.router.embed(
        { requestId: ctx.requestId, model: body.model, inputs, dimensions: body.dimensions ?? 0, keyId: ctx.principal.keyId },
        { signal: ctx.signal, timeoutMs },
      );
      reachedModel = true;
      promptTokens = answer.promptTokens;
      backend = answer.backend;
      return answer;
    } catch (err) {
      const error = asConnectError(err);
      status = ctx.signal.aborted || error.code === Code.Canceled || error.code === Code.DeadlineExceeded ? UsageStatus.CANCELLED : UsageStatus.ERROR;
      reachedModel = error.code !== Code.NotFound && error.code !== Code.InvalidArgument;
      throw error;
    } finally {
      if (reachedModel) {
        this.usage.record({
          requestId: ctx.requestId,
          principal: ctx.principal,
          model: body.model,
          backend,
          promptTokens,
          completionTokens: 0,
          status,
          ttftMs: 0,
          e2eMs: performance.now() - ctx.startedAt,
          requestJson: ctx.principal.retentionOptOut ? "" : JSON.stringify(body),
          responseText: "",
        });
      }
    }
  }
}
