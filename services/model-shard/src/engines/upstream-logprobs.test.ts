import { describe, expect, it } from "vitest";
import { logprobsBody, upstreamLogprobs } from "./upstream-logprobs.js";

describe("upstream logprobs pass-through", () => {
  it("asks chat upstreams for logprobs and top_logprobs, text upstreams for logprobs: N, nothing when not asked", () => {
    expect(logprobsBody({ logprobs: false, topLogprobs: 0 }, true)).toEqual({});
    expect(logprobsBody({ logprobs: true, topLogprobs: 0 }, true)).toEqual({ logprobs: true });
    expect(logprobsBody({ logprobs: true, topLogprobs: 3 }, true)).toEqual({ logprobs: true, top_logprobs: 3 });
    expect(logprobsBody({ logprobs: true, topLogprobs: 2 }, false)).toEqual({ logprobs: 2 });
  });

  it("reads a chat chunk's content[] with bytes, and fills missing bytes from the token", () => {
    const entries = upstreamLogprobs({
      content: [
        {
          token: "Hi",
          logprob: -0.25,
          bytes: [72, 105],
          top_logprobs: [
            { token: "Hi", logprob: -0.25, bytes: [72, 105] },
            { token: "Yo", logprob: -2 },
          ],
        },
        { token: "!", logprob: null, bytes: null, top_logprobs: [] },
      ],
    });
    expect(entries.map((e) => ({ ...e, bytes: Array.from(e.bytes), topLogprobs: e.topLogprobs.map((t) => ({ ...t, bytes: Array.from(t.bytes) })) }))).toEqual([
      {
        token: "Hi",
        logprob: -0.25,
        bytes: [72, 105],
        topLogprobs: [
          { token: "Hi", logprob: -0.25, bytes: [72, 105] },
          { token: "Yo", logprob: -2, bytes: [89, 111] },
        ],
      },
      { token: "!", logprob: -9999, bytes: [33], topLogprobs: [] },
    ]);
  });

  it("reads a legacy completion chunk's parallel arrays, alternatives most likely first", () => {
    const entries = upstreamLogprobs({ tokens: [" a", " b"], token_logprobs: [-1, -0.5], top_logprobs: [{ " c": -2, " a": -1 }, null], text_offset: [0, 2] });
    expect(entries.map((e) => [e.token, e.logprob, e.topLogprobs.map((t) => [t.token, t.logprob])])).toEqual([
      [
        " a",
        -1,
        [
          [" a", -1],
          [" c", -2],
        ],
      ],
      [" b", -0.5, []],
    ]);
  });

  it("ignores what it does not know", () => {
    expect(upstreamLogprobs(null)).toEqual([]);
    expect(upstreamLogprobs({ content: [5, null, "x"] })).toEqual([]);
    expect(upstreamLogprobs({ something: 1 } as never)).toEqual([]);
  });
});
