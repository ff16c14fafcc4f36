import { describe, expect, it } from "vitest";
import { Code, ConnectError, errorDetails, meshError } from "../../../../lib/errors.js";
import { parseChatRequest } from "./chat-request.js";
import { toHttpError, toPublicConnectError } from "./errors.js";

const base = { model: "m", messages: [{ role: "user", content: "hi" }] };

function rejected(body: object): { param?: string; status: number } {
  try {
    parseChatRequest(body);
  } catch (err) {
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    return { ...errorDetails(err as ConnectError), status: toHttpError(err, "r").status };
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

describe("integer parameters beyond the wire's range", () => {
  it.each([
    ["max_tokens", 2 ** 32],
    ["max_completion_tokens", 2 ** 40],
    ["top_k", 2 ** 31],
  ])("answers %s = %d with a 400 naming it, not a 500 from protobuf encoding", (param, value) => {
    expect(rejected({ ...base, [param]: value })).toMatchObject({ param, status: 400 });
  });

  it("still accepts the largest encodable values (the model's context bounds them later)", () => {
    expect(() => parseChatRequest({ ...base, max_tokens: 2 ** 32 - 1, top_k: 2 ** 31 - 1 })).not.toThrow();
  });
});

describe("errors a client sees", () => {
  const internal = [
    new ConnectError("Deadline exceeded after 600.001s,LB pick: 0.001s,remote_addr=127.0.0.1:35063", Code.DeadlineExceeded),
    new ConnectError("connect ECONNREFUSED 127.0.0.1:36287", Code.Unavailable),
    meshError(Code.Unavailable, "key store (NATS) unavailable: connection refused nats://10.0.0.7:4222"),
    new ConnectError("at Object.<anonymous> (/app/services/router/src/router-service.ts:12:3)", Code.Internal),
  ];

  it.each(internal.map((e) => [Code[e.code], e] as const))("never carry an address or a stack (%s), only the request id", (_name, err) => {
    const rest = toHttpError(err, "req-1");
    const rpc = toPublicConnectError(err, "req-1");
    for (const message of [rest.message, rpc.rawMessage]) {
      expect(message).not.toMatch(/\d+\.\d+\.\d+\.\d+|:\d{2,5}\b|\.ts:|ECONNREFUSED|nats:/);
      expect(message).toContain("req-1");
    }
    expect(rpc.code).toBe(err.code);
  });

  it("keeps the mesh's own words about the client's request", () => {
    const err = meshError(Code.InvalidArgument, "max_tokens is too large for this model", { param: "max_tokens" });
    expect(toHttpError(err, "r")).toMatchObject({ status: 400, message: "max_tokens is too large for this model", param: "max_tokens" });
  });
});
