import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateAdminToken } from "../../services/auth/src/admin-token.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";
import { until } from "../support/until.js";

interface OpenAIError {
  error: { message: string; type: string; code: string | null };
}

describe("per-key concurrency limits, and overload answered as 503", () => {
  let mesh: InProcessMesh;
  const adminToken = generateAdminToken();
  let limitedKey = "";

  const chat = (apiKey: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> =>
    fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "Hello" }], max_tokens: 2, ...body }),
      signal,
    });

  /** A long stream that is in flight once its first chunk arrived; `stop` hangs up. */
  async function holdStream(apiKey: string) {
    const abort = new AbortController();
    const res = await chat(apiKey, { stream: true, max_tokens: 3_000, ignore_eos: true }, abort.signal);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    return { stop: () => abort.abort() };
  }

  beforeAll(async () => {
    // The router admits at most 2 requests per model: the mesh's capacity.
    mesh = await startInProcessMesh({ adminToken, routerMaxInFlight: 2 });
    const res = await fetch(`${mesh.url}/admin/v1/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "one-at-a-time", max_concurrent: 1 }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { key: string; max_concurrent: number };
    expect(created.max_concurrent).toBe(1);
    limitedKey = created.key;
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it("stores the limit with the key and shows it in the key list", async () => {
    const res = await fetch(`${mesh.url}/admin/v1/keys`, { headers: { authorization: `Bearer ${adminToken}` } });
    const { data } = (await res.json()) as { data: { name: string; max_concurrent: number }[] };
    expect(data.find((k) => k.name === "one-at-a-time")?.max_concurrent).toBe(1);
  });

  it("refuses a key's request over its limit with 429 concurrency_limit_exceeded, and admits it again once one ends", async () => {
    const held = await holdStream(limitedKey);
    try {
      const over = await chat(limitedKey, {});
      expect(over.status).toBe(429);
      const body = (await over.json()) as OpenAIError;
      expect(body.error).toMatchObject({ type: "requests", code: "concurrency_limit_exceeded" });
      expect(body.error.message).toContain("limit 1");
      // Other keys are not held back by this key's limit.
      expect((await chat(TEST_API_KEY, {})).status).toBe(200);
    } finally {
      held.stop();
    }
    // The hung-up stream gives its slot back.
    await until(async () => (await chat(limitedKey, {})).status === 200, 10_000, 100);
  });

  it("answers a mesh at capacity with 503 overloaded and retry-after, not a 429", async () => {
    const a = await holdStream(limitedKey);
    const b = await holdStream(TEST_API_KEY);
    try {
      const res = await chat(TEST_API_KEY, {});
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as OpenAIError).error).toMatchObject({ type: "server_error", code: "overloaded" });
    } finally {
      a.stop();
      b.stop();
    }
  });
});
