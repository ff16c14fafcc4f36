import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { freePort } from "../runtime/free-port.js";
import { closeChannel, grpcClient, startRpcServer } from "./index.js";

/** No service token: a server on loopback runs open. */
const TOKEN = "";

describe("grpcClient rideOutRestarts", () => {
  it("waits for a peer that is down and answers once it is back, within the call's deadline; without it the call fails at once", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const serve = () => startRpcServer({ port, serviceNames: [], routes: () => {}, serviceToken: TOKEN });
    let server = await serve();
    const riding = grpcClient(Health, address, { rideOutRestarts: true, serviceToken: TOKEN });
    const plain = grpcClient(Health, address, { serviceToken: TOKEN });
    try {
      // Both channels connected, then the peer goes away (a restart).
      await riding.check({ service: "" }, { timeoutMs: 5_000 });
      await plain.check({ service: "" }, { timeoutMs: 5_000 });
      await server.close(0);
      await new Promise((r) => setTimeout(r, 300));

      const plainError = await plain.check({ service: "" }, { timeoutMs: 5_000 }).catch((err: unknown) => err);
      expect(plainError).toBeInstanceOf(ConnectError);
      expect((plainError as ConnectError).code).toBe(Code.Unavailable);

      const waiting = riding.check({ service: "" }, { timeoutMs: 15_000 });
      await new Promise((r) => setTimeout(r, 1_000));
      server = await serve();
      expect((await waiting).status).toBe(HealthCheckResponse_ServingStatus.SERVING);

      // Still bounded by the deadline when the peer stays away.
      await server.close(0);
      const started = Date.now();
      const late = await riding.check({ service: "" }, { timeoutMs: 1_000 }).catch((err: unknown) => err);
      expect((late as ConnectError).code).toBe(Code.DeadlineExceeded);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await server.close(0);
      closeChannel(address);
    }
  }, 60_000);

  it("a call cut short by its caller's deadline (the signal aborts with DeadlineExceeded) fails DeadlineExceeded, not Canceled", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    // Nothing listens: the waiting call is still queued when the caller's deadline passes.
    const client = grpcClient(Health, address, { rideOutRestarts: true, serviceToken: TOKEN });
    try {
      const caller = new AbortController();
      setTimeout(() => caller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)), 200);
      const err = await client.check({ service: "" }, { timeoutMs: 10_000, signal: caller.signal }).catch((e: unknown) => e);
      expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
      const cancelled = new AbortController();
      setTimeout(() => cancelled.abort(), 200);
      const plainAbort = await client.check({ service: "" }, { timeoutMs: 10_000, signal: cancelled.signal }).catch((e: unknown) => e);
      expect((plainAbort as ConnectError).code).toBe(Code.Canceled);
    } finally {
      closeChannel(address);
    }
  }, 30_000);
});
