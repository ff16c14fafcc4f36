import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { RouterService } from "../../src/gen/mesh/router/v1/router_pb.js";
import { InferenceService } from "../../src/gen/mesh/inference/v1/inference_pb.js";
import { generateServiceToken, grpcClient, MAX_MESSAGE_BYTES, SERVICE_TOKEN_ENV, SERVICE_TOKEN_METADATA } from "../../lib/rpc/index.js";
import { methodDefinition } from "../../lib/rpc/grpc-codec.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { TEST_API_KEY } from "../support/mesh-process.js";

process.env[SERVICE_TOKEN_ENV] = generateServiceToken();
const MB = 1024 * 1024;

/** A raw grpc-js unary call with no client-side size limit (as an attacker's client would be); resolves to the status. */
function rawUnary(
  address: string,
  method: Parameters<typeof methodDefinition>[0],
  request: object,
  metadata: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number; details: string; ms: number }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 });
  const def = methodDefinition(method);
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const started = Date.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, md, { deadline: Date.now() + timeoutMs }, (err) => {
      client.close();
      resolve({ code: err?.code ?? 0, details: err?.details ?? "", ms: Date.now() - started });
    });
  });
}

describe("gRPC messages over the size limit end RESOURCE_EXHAUSTED at once", () => {
  let mesh: InProcessMesh;
  const token = (): Record<string, string> => ({ [SERVICE_TOKEN_METADATA]: process.env[SERVICE_TOKEN_ENV]! });
  beforeAll(async () => {
    mesh = await startInProcessMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  for (const size of [20 * MB, 50 * MB]) {
    it(`an internal server refuses a ${size / MB} MB message (auth RecordUsage)`, async () => {
      const big = "x".repeat(size);
      const usage = await rawUnary(
        `127.0.0.1:${mesh.auth.port}`,
        AuthService.method.recordUsage,
        { requestId: "big", keyId: "k", requestJson: big },
        token(),
        20_000,
      );
      expect(usage.code, usage.details).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(usage.details).not.toMatch(/ENHANCE_YOUR_CALM/);
    });

    it(`the edge's public gRPC refuses a ${size / MB} MB chat request`, async () => {
      const big = "x".repeat(size);
      const res = await rawUnary(
        `127.0.0.1:${mesh.edge.port}`,
        InferenceService.method.createChatCompletion,
        { params: { model: "tiny-llama", messages: [{ role: "user", content: big }] } },
        { authorization: `Bearer ${TEST_API_KEY}` },
        20_000,
      );
      expect(res.code, res.details).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(res.details).not.toMatch(/ENHANCE_YOUR_CALM/);
    });
  }

  it("a mesh client refuses to send a message over the limit, with RESOURCE_EXHAUSTED, before it leaves", async () => {
    const router = grpcClient(RouterService, `127.0.0.1:${mesh.router.port}`);
    const err = await (async () => {
      for await (const _ of router.generate({ requestId: "big", model: "tiny-llama", prompt: "x".repeat(MAX_MESSAGE_BYTES + 1) }, { timeoutMs: 20_000 }));
    })().catch((e: unknown) => ConnectError.from(e));
    expect(err?.code).toBe(Code.ResourceExhausted);
  });
});
