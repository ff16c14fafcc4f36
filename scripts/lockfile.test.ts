import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

describe("package-lock.json", () => {
  it("lists every optional platform package of node-llama-cpp, so `npm ci` accepts it (npm run lock:fix)", () => {
    const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as { packages: Record<string, { optionalDependencies?: Record<string, string> }> };
    const wanted = Object.keys(lock.packages["node_modules/node-llama-cpp"]?.optionalDependencies ?? {});
    expect(wanted.length).toBeGreaterThan(0);
    const missing = wanted.filter((name) => !lock.packages[`node_modules/${name}`]);
    expect(missing).toEqual([]);
  });
});
