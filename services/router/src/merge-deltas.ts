import { create } from "@bufbuild/protobuf";
import { FinishReason, ShardServiceGenerateResponseSchema } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { ShardServiceGenerateResponse } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { mergeRuns } from "../../../lib/streaming/index.js";

/**
 * Shard messages that arrived together, as few as carry the same:
 * consecutive deltas become one (text joined, token counts added, tool-call
 * pieces and logprob entries kept in order); the finishing message stays.
 */
export function mergeDeltas(batch: readonly ShardServiceGenerateResponse[]): ShardServiceGenerateResponse[] {
  return mergeRuns(
    batch,
    (res) => res.finishReason === FinishReason.UNSPECIFIED,
    (run) =>
      create(ShardServiceGenerateResponseSchema, {
        text: run.map((r) => r.text).join(""),
        tokenIds: run.flatMap((r) => r.tokenIds),
        tokenCount: run.reduce((sum, r) => sum + (r.tokenCount || r.tokenIds.length), 0),
        toolCalls: run.flatMap((r) => r.toolCalls),
        logprobs: run.flatMap((r) => r.logprobs),
      }),
  );
}
