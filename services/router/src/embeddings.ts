import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { EmbedResponseSchema } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { EmbedRequest, EmbedResponse } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { CatalogModel } from "../../../lib/catalog/index.js";
import { asConnectError, Code, meshError, withRetryAfter } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { Replica, ReplicaSet } from "./replicas.js";

/** An embeddings request that failed on one replica is tried once more on another. */
const MAX_ATTEMPTS = 2;
const RETRYABLE_CODES = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted, Code.ResourceExhausted]);

/**
 * Routes an embeddings request to a replica of the model's backend (by
 * load, like generations), retrying once elsewhere when the replica could
 * not take it. A model the catalog marks `embeddings: false` is a 400.
 */
export async function routeEmbed(model: CatalogModel, backend: ReplicaSet, req: EmbedRequest, ctx: HandlerContext, log: Logger): Promise<EmbedResponse> {
  if (model.embeddings === false) {
    throw meshError(Code.InvalidArgument, `The model \`${model.name}\` does not serve embeddings.`, { reason: "unsupported_model", param: "model" });
  }
  const tried = new Set<Replica>();
  let lastError: ReturnType<typeof asConnectError> | undefined;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const replica = backend.pick(tried);
    if (!replica) break;
    tried.add(replica);
    replica.inFlight++;
    try {
      const res = await replica.client.embed(
        { requestId: req.requestId, model: req.model, inputs: req.inputs, dimensions: req.dimensions },
        { signal: ctx.signal, timeoutMs: ctx.timeoutMs() },
      );
      replica.succeeded();
      return create(EmbedResponseSchema, { embeddings: res.embeddings, promptTokens: res.promptTokens, backend: backend.backend.name });
    } catch (err) {
      const error = asConnectError(err);
      if (ctx.signal.aborted || !RETRYABLE_CODES.has(error.code)) throw error;
      if (error.code !== Code.ResourceExhausted) replica.failed(Date.now());
      log.warn({ requestId: req.requestId, replica: replica.address, code: Code[error.code] }, "shard embed failed");
      lastError = error;
    } finally {
      replica.inFlight--;
    }
  }
  if (lastError) throw lastError;
  throw withRetryAfter(
    meshError(Code.Unavailable, `no replica of backend "${backend.backend.name}" is available`, { reason: "no_replica_available" }),
    backend.retryAfterMs(),
  );
}
