import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimatePromptTokens } from "../../services/edge/src/admission.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";

/**
 * Issue 15, item 4: a key's tokens-per-minute reservation is the real prompt
 * count (the router's own tokenization) plus max_tokens, or the model's
 * default (the rest of the context) when the request sets none. Chinese text
 * is three byte tokens per character in the tiny vocabulary, so the old
 * characters / 4 estimate was about twelve times too small.
 */
describe("exact token reservation", () => {
  let mesh: InProcessMesh;
  const adminToken = `mesh-admin-${randomBytes(32).toString("base64url")}`;
  const content = "你好世界".repeat(50);

  beforeAll(async () => {
    mesh = await startInProcessMesh({ adminToken });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  async function keyWithTpm(tpm: number): Promise<string> {
    const res = await fetch(`${mesh.url}/admin/v1/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `tpm-${tpm}`, tpm }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { key: string }).key;
  }

  function chat(key: string, body: Record<string, unknown>): Promise<Response> {
    return fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content }], ...body }),
    });
  }

  it("reserves the exact prompt tokens plus max_tokens, and refuses what the estimate would have let through", async () => {
    const tpm = 1_000;
    const key = await keyWithTpm(tpm);
    const first = await chat(key, { max_tokens: 1 });
    expect(first.status).toBe(200);
    const body = (await first.json()) as { usage: { prompt_tokens: number } };
    const prompt = body.usage.prompt_tokens;
    const estimate = estimatePromptTokens({ messages: [{ role: "user", content }], prompt: "" });
    // The case is only meaningful where the estimate is far off.
    expect(prompt).toBeGreaterThan(3 * estimate);
    expect(Number(first.headers.get("x-ratelimit-remaining-tokens"))).toBe(tpm - (prompt + 1));
    // A second one does not fit any more (on the estimate it would have: 2 × (estimate + 1) < tpm).
    expect(2 * (estimate + 1)).toBeLessThan(tpm);
    const second = await chat(key, { max_tokens: 1 });
    expect(second.status).toBe(429);
    const error = (await second.json()) as { error: { code: string; type: string } };
    expect(error.error.code).toBe("rate_limit_exceeded");
    expect(second.headers.get("retry-after")).toBeTruthy();
  });

  it("reserves the model's default output (the rest of the context) when max_tokens is not set", async () => {
    const tpm = 100_000;
    const key = await keyWithTpm(tpm);
    const contextLength = mesh.router.tokenizers.loaded.get("tiny-llama")!.contextLength;
    const res = await chat(key, { stream: true });
    expect(res.status).toBe(200);
    // prompt + (context − prompt): the whole context is reserved, whatever the prompt.
    expect(Number(res.headers.get("x-ratelimit-remaining-tokens"))).toBe(tpm - contextLength);
    await res.body?.cancel();
  });
});
