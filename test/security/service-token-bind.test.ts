import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/runtime/index.js";
import { generateServiceToken, processServiceToken, SERVICE_TOKEN_ENV, ServiceTokenCheck } from "../../lib/rpc/index.js";
import { startRpcServer } from "../../lib/rpc/server.js";

describe("service token configuration", () => {
  it("refuses to serve internal gRPC on a non-loopback address without a service token", async () => {
    delete process.env[SERVICE_TOKEN_ENV];
    await expect(startRpcServer({ host: "0.0.0.0", port: 0, serviceNames: [], routes: () => {} })).rejects.toBeInstanceOf(ConfigError);
    const withToken = await startRpcServer({ host: "0.0.0.0", port: 0, serviceNames: [], routes: () => {}, serviceToken: generateServiceToken() });
    await withToken.close(100);
  });

  it("refuses a malformed MESH_SERVICE_TOKEN with a message naming it", () => {
    expect(() => processServiceToken({ [SERVICE_TOKEN_ENV]: "short" })).toThrow(SERVICE_TOKEN_ENV);
    expect(processServiceToken({})).toBeUndefined();
  });

  it("matches only the exact token", () => {
    const token = generateServiceToken();
    const check = new ServiceTokenCheck(token);
    expect(check.matches(token)).toBe(true);
    for (const other of [undefined, "", token.slice(0, -1), `${token}x`, generateServiceToken(), Buffer.from(token)]) expect(check.matches(other)).toBe(false);
  });
});
