import { describe, expect, it } from "vitest";
import { StopMatcher } from "./stop-matcher.js";

function run(stops: string[], chunks: string[]): { out: string; stopped: boolean } {
  const matcher = new StopMatcher(stops);
  let out = "";
  for (const chunk of chunks) {
    out += matcher.push(chunk);
    if (matcher.stopped) break;
  }
  out += matcher.flush();
  return { out, stopped: matcher.stopped };
}

describe("StopMatcher", () => {
  it("passes text through when there are no stop sequences", () => {
    expect(run([], ["a", "b"])).toEqual({ out: "ab", stopped: false });
  });

  it("finds a stop sequence split across chunks and never emits it", () => {
    expect(run(["END"], ["hello E", "N", "D and more"])).toEqual({ out: "hello ", stopped: true });
  });

  it("releases held text that turned out not to be a stop sequence", () => {
    const matcher = new StopMatcher(["END"]);
    expect(matcher.push("hi EN")).toBe("hi ");
    expect(matcher.push("x")).toBe("ENx");
  });

  it("cuts at the earliest of several stop sequences", () => {
    expect(run(["bb", "a"], ["xxbba"])).toEqual({ out: "xx", stopped: true });
  });

  it("returns the held-back tail when the stream ends", () => {
    expect(run(["END"], ["abc E"])).toEqual({ out: "abc E", stopped: false });
  });
});
