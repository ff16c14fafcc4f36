import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TokenLogprobSchema } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import { chatLogprobs, completionLogprobs } from "./logprobs.js";

const utf8 = new TextEncoder();
const entry = (token: string, logprob: number, top: [string, number][] = []) =>
  create(TokenLogprobSchema, {
    token,
    logprob,
    bytes: utf8.encode(token),
    topLogprobs: top.map(([t, lp]) => ({ token: t, logprob: lp, bytes: utf8.encode(t) })),
  });

describe("logprobs in OpenAI's shapes", () => {
  const entries = [
    entry("Hé", -0.5, [
      ["Hé", -0.5],
      [" a", -1.25],
    ]),
    entry("", -2, [["x", -0.1]]),
    entry("中", -3),
  ];

  it("chat: content[] of {token, logprob, bytes as numbers, top_logprobs}, refusal null", () => {
    expect(chatLogprobs(entries)).toEqual({
      content: [
        {
          token: "Hé",
          logprob: -0.5,
          bytes: [72, 195, 169],
          top_logprobs: [
            { token: "Hé", logprob: -0.5, bytes: [72, 195, 169] },
            { token: " a", logprob: -1.25, bytes: [32, 97] },
          ],
        },
        { token: "", logprob: -2, bytes: [], top_logprobs: [{ token: "x", logprob: -0.1, bytes: [120] }] },
        { token: "中", logprob: -3, bytes: [228, 184, 173], top_logprobs: [] },
      ],
      refusal: null,
    });
    // A JSON round trip keeps it (bytes are plain numbers, not a typed array).
    expect(JSON.parse(JSON.stringify(chatLogprobs(entries)))).toEqual(chatLogprobs(entries));
  });

  it("chat: no entries is an empty content list", () => {
    expect(chatLogprobs([])).toEqual({ content: [], refusal: null });
  });

  it("completions: parallel arrays, offsets in characters from `offset`, the sampled token always in its top dict", () => {
    const out = completionLogprobs(entries, 10);
    expect(out.tokens).toEqual(["Hé", "", "中"]);
    expect(out.token_logprobs).toEqual([-0.5, -2, -3]);
    expect(out.text_offset).toEqual([10, 12, 12]);
    expect(out.top_logprobs.map((d) => ({ ...d }))).toEqual([{ Hé: -0.5, " a": -1.25 }, { x: -0.1, "": -2 }, { 中: -3 }]);
    expect(JSON.stringify(completionLogprobs([entry("__proto__", -1)]).top_logprobs)).toBe('[{"__proto__":-1}]');
  });

  it("completions: tokens with the same text keep the first (likeliest) logprob", () => {
    const out = completionLogprobs([
      entry("a", -1, [
        ["b", -0.5],
        ["b", -0.7],
        ["a", -1],
      ]),
    ]);
    expect({ ...out.top_logprobs[0] }).toEqual({ b: -0.5, a: -1 });
  });
});
