import * as path from "node:path";
import Database from "libsql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";

type UsageRow = { request_id: string; status: string; prompt_tokens: number; completion_tokens: number };

async function usageOf(mesh: MeshProcess, requestId: string): Promise<UsageRow | undefined> {
  const db = new Database(path.join(mesh.dataDir, "mesh.db"), { readonly: true });
  try {
    // Usage is recorded off the response path: give it a moment.
    for (let i = 0; i < 100; i++) {
      const row = db.prepare("SELECT * FROM usage WHERE request_id = ?").get(requestId) as UsageRow | undefined;
      if (row) return row;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  } finally {
    db.close();
  }
}

describe("usage of a request the client abandoned", () => {
  let mesh: MeshProcess;

  beforeAll(async () => {
    mesh = await startMeshProcess();
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  it("records what was generated, once, with status cancelled", async () => {
    const abort = new AbortController();
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "go on" }], max_tokens: 3_000, ignore_eos: true, stream: true }),
      signal: abort.signal,
    });
    const requestId = res.headers.get("x-request-id")!;
    const reader = res.body!.getReader();
    let chunks = 0;
    while (chunks < 5) {
      const { value } = await reader.read();
      chunks += (new TextDecoder().decode(value).match(/^data: /gm) ?? []).length;
    }
    abort.abort();
    const row = await usageOf(mesh, requestId);
    expect(row?.status).toBe("cancelled");
    expect(row!.prompt_tokens).toBeGreaterThan(0);
    expect(row!.completion_tokens).toBeGreaterThan(0);
    expect(row!.completion_tokens).toBeLessThan(3_000);
  });

  it("records a finished request as ok with the usage the response showed", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 5 }),
    });
    const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const row = await usageOf(mesh, res.headers.get("x-request-id")!);
    expect(row).toMatchObject({ status: "ok", prompt_tokens: body.usage.prompt_tokens, completion_tokens: body.usage.completion_tokens });
  });
});
