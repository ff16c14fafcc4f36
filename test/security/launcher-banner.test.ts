import { describe, expect, it } from "vitest";
import { firstKeyLines } from "../../cli/up/up-command.js";

const KEY = "sk-mesh-ab12cd34ef56-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

describe("the launcher's banner about the first API key", () => {
  it("says only where the key is saved (and its id) when stdout is not a terminal", () => {
    const text = firstKeyLines(KEY, ".mesh/first-api-key", false).join("\n");
    expect(text).toContain(".mesh/first-api-key");
    expect(text).toContain("sk-mesh-ab12cd34ef56-…");
    expect(text).not.toContain(KEY.slice(-43));
  });

  it("shows the key in full to a terminal", () => {
    expect(firstKeyLines(KEY, ".mesh/first-api-key", true).join("\n")).toContain(KEY);
  });
});
