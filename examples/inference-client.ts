/**
 * An internal service calling the mesh's public InferenceService with the
 * generated protobuf client: no JSON on the wire with gRPC.
 *
 *   npx tsc -p examples/tsconfig.json
 *   MESH_API_KEY=sk-... node dist/examples/inference-client.js http://127.0.0.1:8080 [grpc|connect|grpc-web]
 */
import { pathToFileURL } from "node:url";
import type { Client, Interceptor } from "@connectrpc/connect";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { InferenceService } from "../src/gen/mesh/inference/v1/inference_pb.js";

export type Protocol = "grpc" | "connect" | "grpc-web";

/** A typed InferenceService client that sends the bearer key with every call. */
export function inferenceClient(baseUrl: string, apiKey: string, protocol: Protocol = "grpc"): Client<typeof InferenceService> {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const options = { baseUrl, interceptors: [bearer] };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport(options) // HTTP/2 cleartext, on the same port as REST
      : protocol === "connect"
        ? createConnectTransport({ ...options, httpVersion: "1.1" })
        : createGrpcWebTransport({ ...options, httpVersion: "1.1" });
  return createClient(InferenceService, transport);
}

async function main(): Promise<void> {
  const [baseUrl = "http://127.0.0.1:8080", protocol = "grpc"] = process.argv.slice(2);
  const apiKey = process.env.MESH_API_KEY;
  if (!apiKey) throw new Error("set MESH_API_KEY");
  const client = inferenceClient(baseUrl, apiKey, protocol as Protocol);

  const { models } = await client.listModels({}, { timeoutMs: 5_000 });
  console.log("models:", models.map((m) => m.id).join(", "));
  const model = models[0]?.id;
  if (!model) return;
  const params = { model, messages: [{ role: "user", content: "Say hello." }], maxTokens: 16 };

  const reply = await client.createChatCompletion({ params }, { timeoutMs: 30_000 });
  console.log(`unary: ${JSON.stringify(reply.content)} (${reply.finishReason}, ${reply.usage?.totalTokens} tokens)`);

  process.stdout.write("stream: ");
  for await (const res of client.streamChatCompletion({ params }, { timeoutMs: 30_000 })) {
    if (res.delta) process.stdout.write(res.delta);
    if (res.finishReason) process.stdout.write(`\n  (${res.finishReason}, ${res.usage?.completionTokens} completion tokens)\n`);
  }

  try {
    await client.createChatCompletion({ params: { ...params, temperature: 3 } });
  } catch (err) {
    const e = ConnectError.from(err);
    // The OpenAI `param` and `code` travel as error metadata.
    console.log(`error: ${e.code} ${e.rawMessage} param=${e.metadata.get("x-mesh-error-param")} code=${e.metadata.get("x-mesh-error-reason")}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
