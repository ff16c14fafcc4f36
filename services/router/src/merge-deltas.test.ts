import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FinishReason, ShardServiceGenerateResponseSchema } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { mergeDeltas } from "./merge-deltas.js";

const msg = (init: Parameters<typeof create<typeof ShardServiceGenerateResponseSchema>>[1]) => create(ShardServiceGenerateResponseSchema, init);

describe("mergeDeltas", () => {
  it("joins consecutive deltas (text, token ids and counts, logprobs in order) and keeps the finish apart", () => {
    const merged = mergeDeltas([
      msg({ text: "Hel", tokenIds: [5], logprobs: [{ token: "Hel", logprob: -1 }] }),
      msg({ text: "lo", tokenIds: [6], logprobs: [{ token: "lo", logprob: -2 }] }),
      msg({ text: "!", tokenCount: 3 }),
      msg({ text: "", finishReason: FinishReason.LENGTH, completionTokens: 5 }),
    ]);
    expect(merged).toHaveLength(2);
    expect(merged[0]).toMatchObject({ text: "Hello!", tokenIds: [5, 6], tokenCount: 5, finishReason: FinishReason.UNSPECIFIED });
    expect(merged[0].logprobs.map((l) => l.token)).toEqual(["Hel", "lo"]);
    expect(merged[1]).toMatchObject({ finishReason: FinishReason.LENGTH, completionTokens: 5 });
  });

  it("keeps tool-call pieces in their order", () => {
    const [one] = mergeDeltas([
      msg({ toolCalls: [{ index: 0, id: "c", name: "f", arguments: '{"a"' }] }),
      msg({ toolCalls: [{ index: 0, arguments: ":1}" }] }),
    ]);
    expect(one.toolCalls.map((t) => t.arguments).join("")).toBe('{"a":1}');
  });
});
