import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService, KeyAdminService } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { RouterService } from "../../src/gen/mesh/router/v1/router_pb.js";
import { ShardService } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { TokenizerService } from "../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import { checkHealth, generateServiceToken, grpcClient, SERVICE_TOKEN_ENV } from "../../lib/rpc/index.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

// Every server and client of this process takes the token from the env, as under `llm-mesh up`.
process.env[SERVICE_TOKEN_ENV] = generateServiceToken();

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let events = 0;
  for await (const _ of stream) events++;
  return events;
}

describe("internal gRPC requires the mesh's service token", () => {
  let mesh: InProcessMesh;
  const addr = (port: number): string => `127.0.0.1:${port}`;
  beforeAll(async () => {
    mesh = await startInProcessMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  const generate = { requestId: "forged-1", model: "tiny-llama", prompt: "Hello", sampling: { maxTokens: 4 }, keyId: "k" };

  it("refuses RouterService.Generate without a token, or with a wrong one, before generating anything", async () => {
    for (const serviceToken of ["", generateServiceToken()]) {
      const router = grpcClient(RouterService, addr(mesh.router.port), { serviceToken });
      const events: unknown[] = [];
      const code = await codeOf(
        (async () => {
          for await (const e of router.generate(generate, { timeoutMs: 10_000 })) events.push(e);
        })(),
      );
      expect(code).toBe(Code.Unauthenticated);
      expect(events).toEqual([]);
    }
  });

  it("refuses forged usage sent to AuthService.RecordUsage and records nothing", async () => {
    const auth = grpcClient(AuthService, addr(mesh.auth.port), { serviceToken: "" });
    const forged = { requestId: "forged-usage", keyId: "victim", accountId: "default", model: "tiny-llama", promptTokens: 1_000_000, completionTokens: 0 };
    expect(await codeOf(auth.recordUsage(forged))).toBe(Code.Unauthenticated);
    // With the token the same request id is new: the refused call stored nothing.
    const withToken = grpcClient(AuthService, addr(mesh.auth.port));
    expect((await withToken.recordUsage(forged)).recorded).toBe(true);
  });

  it("refuses every other internal service without the token", async () => {
    expect(await codeOf(grpcClient(AuthService, addr(mesh.auth.port), { serviceToken: "" }).authenticate({ apiKey: TEST_API_KEY }))).toBe(Code.Unauthenticated);
    expect(await codeOf(grpcClient(KeyAdminService, addr(mesh.auth.port), { serviceToken: "" }).listAccounts({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(drain(grpcClient(AuthService, addr(mesh.auth.port), { serviceToken: "" }).watchKeyChanges({}, { timeoutMs: 2_000 })))).toBe(
      Code.Unauthenticated,
    );
    const tokenizer = grpcClient(TokenizerService, addr(mesh.tokenizer.port), { serviceToken: "" });
    expect(await codeOf(tokenizer.tokenize({ model: "tiny-llama", text: "hi" }))).toBe(Code.Unauthenticated);
    const shard = grpcClient(ShardService, addr(mesh.shard.port), { serviceToken: "" });
    expect(
      await codeOf(drain(shard.generate({ requestId: "x", model: "tiny-llama", promptTokenIds: [1, 2], sampling: { maxTokens: 2 } }, { timeoutMs: 5_000 }))),
    ).toBe(Code.Unauthenticated);
  });

  it("keeps grpc.health.v1 open for probes", async () => {
    for (const port of [mesh.auth.port, mesh.router.port, mesh.tokenizer.port, mesh.shard.port]) expect(await checkHealth(addr(port))).toBe(true);
  });

  it("still serves a request end to end: the services send the token to each other", async () => {
    const res = await fetch(`${mesh.url}/v1/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", prompt: "Hello", max_tokens: 3, ignore_eos: true }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBeGreaterThan(0);
  });
});
