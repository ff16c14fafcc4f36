import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { llamaRelease, llamaServerCacheDir } from "./build.js";

describe("llama-server build", () => {
  const saved = process.env.MESH_LLAMA_SERVER_CACHE;
  afterEach(() => {
    if (saved === undefined) delete process.env.MESH_LLAMA_SERVER_CACHE;
    else process.env.MESH_LLAMA_SERVER_CACHE = saved;
  });

  it("names the llama.cpp release node-llama-cpp ships and caches its build outside the repository", () => {
    const release = llamaRelease();
    expect(release).toMatch(/^[\w.-]+$/);
    delete process.env.MESH_LLAMA_SERVER_CACHE;
    const dir = llamaServerCacheDir(release);
    expect(path.basename(dir)).toBe(`llama-server-${release}`);
    expect(path.relative(process.cwd(), dir).startsWith("..")).toBe(true);
    process.env.MESH_LLAMA_SERVER_CACHE = "/var/cache/x";
    expect(llamaServerCacheDir("b1")).toBe("/var/cache/x/llama-server-b1");
  });
});
