import { describe, expect, it } from "vitest";
import { StopMatcher } from "../../../lib/text/index.js";
import type { EngineLogprob } from "./engine.js";
import { LogprobAligner } from "./logprob-aligner.js";

const entry = (token: string): EngineLogprob => ({ token, logprob: -1, bytes: new TextEncoder().encode(token), topLogprobs: [] });

/** Feeds tokens through a stop matcher and an aligner as the shard does; returns the text sent and the entries sent. */
function run(tokens: string[], stops: string[]): { text: string; spelled: string; tokens: string[] } {
  const matcher = new StopMatcher(stops);
  const aligner = new LogprobAligner();
  let text = "";
  const sent: EngineLogprob[] = [];
  for (const token of tokens) {
    const released = matcher.push(token);
    text += released;
    sent.push(...aligner.push([entry(token)], token, released));
    if (matcher.stopped) break;
  }
  if (matcher.stopped) sent.push(...aligner.end());
  const rest = matcher.flush();
  text += rest;
  sent.push(...aligner.end(rest));
  return { text, spelled: sent.map((e) => e.token).join(""), tokens: sent.map((e) => e.token) };
}

describe("logprob entries follow text a filter holds back or cuts", () => {
  it("passes entries straight through when nothing is held", () => {
    expect(run(["a", "b", "c"], [])).toEqual({ text: "abc", spelled: "abc", tokens: ["a", "b", "c"] });
  });

  it("holds an entry while its text may start a stop sequence, and releases it when it does not", () => {
    expect(run(["x", "E", "N", "y"], ["END"])).toEqual({ text: "xENy", spelled: "xENy", tokens: ["x", "E", "N", "y"] });
  });

  it("drops the entries of a matched stop sequence", () => {
    expect(run(["x", "E", "N", "D", "z"], ["END"])).toEqual({ text: "x", spelled: "x", tokens: ["x"] });
  });

  it("cuts the entry of a token a stop sequence ends inside to the part shown", () => {
    expect(run(["he", "llo wo", "rld"], ["o w"])).toEqual({ text: "hell", spelled: "hell", tokens: ["he", "ll"] });
  });

  it("keeps empty entries (the first bytes of a split character) in place", () => {
    const aligner = new LogprobAligner();
    expect(aligner.push([entry(""), entry("中")], "中", "").map((e) => e.token)).toEqual([""]);
    expect(aligner.push([], "", "中").map((e) => e.token)).toEqual(["中"]);
  });

  it("releases the held entries of text shown only at the end (flush)", () => {
    expect(run(["a", "E", "N"], ["END"])).toEqual({ text: "aEN", spelled: "aEN", tokens: ["a", "E", "N"] });
  });

  it("matches the cut entry's bytes to its cut text", () => {
    const aligner = new LogprobAligner();
    aligner.push([entry("héllo")], "héllo", "");
    const [cut] = aligner.end("hé");
    expect(cut.token).toBe("hé");
    expect(Array.from(cut.bytes)).toEqual([104, 195, 169]);
  });
});
