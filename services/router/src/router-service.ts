import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import {
  GenerateResponseSchema,
  ListModelsResponseSchema,
  ModelInfoSchema,
} from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { GenerateRequest, GenerateResponse, RouterService as RouterServiceDesc } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { FinishReason } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { TokenizerService } from "../../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import type { Client } from "@connectrpc/connect";
import type { Catalog, CatalogModel } from "../../../lib/catalog/index.js";
import { asConnectError, Code, meshError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { ReplicaSet } from "./replicas.js";
import type { Replica } from "./replicas.js";

/** A request that failed before its first token is tried once more elsewhere. */
const MAX_ATTEMPTS = 2;
/** Codes that mean "this replica could not take the request", safe to retry before any token. */
const RETRYABLE_CODES = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted]);

interface RoutedModel {
  model: CatalogModel;
  backends: Map<string, ReplicaSet>;
  created: number;
}

/**
 * Routes a request: tokenize (chat template applied) with the tokenizer
 * service, check the context length, pick a replica by load, stream the
 * shard's tokens back; retry once on another replica before the first token.
 */
export class RouterService implements ServiceImpl<typeof RouterServiceDesc> {
  readonly #models = new Map<string, RoutedModel>();

  constructor(
    catalog: Catalog,
    private readonly tokenizer: Client<typeof TokenizerService>,
    private readonly log: Logger,
  ) {
    const created = Math.floor(Date.now() / 1000);
    for (const model of catalog.models) {
      const backends = new Map(model.backends.map((b) => [b.name, new ReplicaSet(b)] as const));
      this.#models.set(model.name, { model, backends, created });
    }
  }

  /** Starts following every replica's load reports. */
  watchLoad(signal: AbortSignal): void {
    for (const routed of this.#models.values()) for (const set of routed.backends.values()) set.watchLoad(signal, this.log);
  }

  listModels() {
    return create(ListModelsResponseSchema, {
      models: [...this.#models.values()].map(({ model, created }) =>
        create(ModelInfoSchema, {
          name: model.name,
          contextLength: model.context_length ?? 0,
          backends: model.backends.map((b) => b.name),
          ownedBy: "llm-mesh",
          created: BigInt(created),
        }),
      ),
    });
  }

  async *generate(req: GenerateRequest, ctx: HandlerContext): AsyncGenerator<GenerateResponse> {
    const started = performance.now();
    const routed = this.#models.get(req.model);
    if (!routed) throw meshError(Code.NotFound, `The model \`${req.model}\` does not exist`, { reason: "model_not_found", param: "model" });
    const sampling = req.sampling;
    if (!sampling) throw meshError(Code.InvalidArgument, "sampling parameters are required");
    const backend = this.#chooseBackend(routed, req);

    const { tokenIds, contextLength } = await this.#tokenize(req, ctx);
    const maxTokens = sampling.maxTokens || Math.max(0, contextLength - tokenIds.length);
    if (tokenIds.length + maxTokens > contextLength) {
      throw meshError(
        Code.InvalidArgument,
        `This model's maximum context length is ${contextLength} tokens. However, you requested ${tokenIds.length + maxTokens} tokens ` +
          `(${tokenIds.length} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
        { reason: "context_length_exceeded", param: "messages" },
      );
    }
    const shardSampling = { ...sampling, maxTokens };
    const routerMs = performance.now() - started;

    const tried = new Set<Replica>();
    let sentToken = false;
    for (let attempt = 1; ; attempt++) {
      const replica = backend.pick(tried);
      if (!replica) throw meshError(Code.Unavailable, `no replica of backend "${backend.backend.name}" is available`);
      tried.add(replica);
      if (attempt === 1) {
        yield create(GenerateResponseSchema, {
          event: { case: "started", value: { promptTokens: tokenIds.length, backend: backend.backend.name, replica: replica.address } },
        });
      }
      replica.inFlight++;
      try {
        const stream = replica.client.generate(
          {
            requestId: req.requestId,
            model: req.model,
            promptTokenIds: tokenIds,
            messages: req.messages,
            prompt: req.prompt,
            sampling: shardSampling,
          },
          { signal: ctx.signal, timeoutMs: ctx.timeoutMs() },
        );
        for await (const res of stream) {
          if (res.finishReason !== FinishReason.UNSPECIFIED) {
            if (res.text) yield delta(res.text, 0);
            replica.succeeded();
            yield create(GenerateResponseSchema, {
              event: {
                case: "finished",
                value: {
                  finishReason: res.finishReason,
                  promptTokens: res.promptTokens,
                  completionTokens: res.completionTokens,
                  engineMs: res.engineMs,
                  routerMs,
                },
              },
            });
            return;
          }
          sentToken = true;
          yield delta(res.text, res.tokenIds.length);
        }
        throw meshError(Code.Unavailable, "the shard ended the stream without finishing");
      } catch (err) {
        const error = asConnectError(err);
        if (ctx.signal.aborted) throw error;
        const retryable = !sentToken && RETRYABLE_CODES.has(error.code) && attempt < MAX_ATTEMPTS;
        if (RETRYABLE_CODES.has(error.code)) replica.failed(Date.now());
        this.log.warn({ requestId: req.requestId, replica: replica.address, code: Code[error.code], retry: retryable }, "shard call failed");
        if (!retryable) throw error;
      } finally {
        replica.inFlight--;
      }
    }
  }

  #chooseBackend(routed: RoutedModel, req: GenerateRequest): ReplicaSet {
    if (req.forceBackend) {
      const forced = routed.backends.get(req.forceBackend);
      if (!forced) throw meshError(Code.InvalidArgument, `model "${req.model}" has no backend "${req.forceBackend}"`, { param: "x-mesh-backend" });
      return forced;
    }
    return routed.backends.values().next().value!;
  }

  async #tokenize(req: GenerateRequest, ctx: HandlerContext): Promise<{ tokenIds: number[]; contextLength: number }> {
    const options = { signal: ctx.signal, timeoutMs: ctx.timeoutMs() };
    try {
      if (req.messages.length > 0) {
        const res = await this.tokenizer.renderChat({ model: req.model, messages: req.messages, addGenerationPrompt: true }, options);
        return { tokenIds: res.tokenIds, contextLength: res.contextLength };
      }
      const res = await this.tokenizer.tokenize({ model: req.model, text: req.prompt, specialTokens: false }, options);
      return { tokenIds: res.tokenIds, contextLength: res.contextLength };
    } catch (err) {
      throw err instanceof ConnectError ? err : asConnectError(err);
    }
  }
}

function delta(text: string, tokenCount: number): GenerateResponse {
  return create(GenerateResponseSchema, { event: { case: "delta", value: { text, tokenCount } } });
}
