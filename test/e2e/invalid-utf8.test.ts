import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

/** An admin token in the shape auth issues (`mesh-admin-` and 43 URL-safe characters). */
const ADMIN_TOKEN = `mesh-admin-${"u".repeat(43)}`;

/** A JSON text around bytes that are not UTF-8: a lone continuation byte, a truncated sequence, an overlong form, a surrogate. */
function invalid(prefix: string, suffix: string): Uint8Array<ArrayBuffer> {
  const bad = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf0, 0x28, 0x8c]);
  return Uint8Array.from(Buffer.concat([Buffer.from(prefix), bad, Buffer.from(suffix)]));
}

const chat = (content: string) => `{"model":"tiny-llama","max_tokens":2,"messages":[{"role":"user","content":"${content}`;

/** Every JSON endpoint of the edge, with a body that would be accepted if its bytes were UTF-8. */
const endpoints: Array<{ path: string; body: Uint8Array<ArrayBuffer>; headers?: Record<string, string> }> = [
  { path: "/v1/chat/completions", body: invalid(chat(""), '"}]}') },
  { path: "/v1/completions", body: invalid('{"model":"tiny-llama","max_tokens":2,"prompt":"', '"}') },
  { path: "/v1/responses", body: invalid('{"model":"tiny-llama","max_output_tokens":2,"input":"', '"}') },
  { path: "/v1/embeddings", body: invalid('{"model":"tiny-llama","input":"', '"}') },
  { path: "/v1/feedback", body: invalid('{"request_id":"', '","reward":1}') },
  { path: "/admin/v1/keys", body: invalid('{"name":"', '"}'), headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
  { path: "/console/session", body: invalid('{"token":"', '"}') },
];

/**
 * A JSON body whose bytes are not UTF-8 is a 400 `invalid_request_error`
 * on every JSON endpoint (RFC 8259 §8.1), not decoded with U+FFFD and
 * served (issue 18, R5).
 */
describe("request bodies that are not UTF-8", () => {
  let mesh: InProcessMesh;
  beforeAll(async () => {
    mesh = await startInProcessMesh({ adminToken: ADMIN_TOKEN });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it.each(endpoints.map((e) => [e.path, e] as const))("POST %s → 400 invalid_encoding", async (_path, { path, body, headers }) => {
    const res = await fetch(`${mesh.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json", ...headers },
      body,
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ type: "invalid_request_error", code: "invalid_encoding" });
  });

  it("still serves the same body once its bytes are UTF-8 (é, 😀)", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: `${chat("é 😀")}"}]}`,
    });
    expect(res.status).toBe(200);
  });

  it("answers a Connect JSON call whose body is not UTF-8 with invalid_argument", async () => {
    const res = await fetch(`${mesh.url}/mesh.inference.v1.InferenceService/CreateChatCompletion`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json", "connect-protocol-version": "1" },
      body: invalid('{"model":"tiny-llama","messages":[{"role":"user","content":"', '"}]}'),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
  });
});
