import { describe, expect, it } from "vitest";
import type { HandlerContext } from "@connectrpc/connect";
import { RouterService } from "../../src/gen/mesh/router/v1/router_pb.js";
import { Code } from "../errors.js";
import { grpcClient } from "./client.js";
import { startRpcServer } from "./server.js";

describe("grpc registrar", () => {
  it("serves many concurrent calls without a listener per call, and ends them all at shutdown", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on("warning", onWarning);
    let started = 0;
    // A handler that runs until its call is aborted.
    const router = {
      listModels: (_req: unknown, ctx: HandlerContext) =>
        new Promise((_resolve, reject) => {
          started++;
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
        }),
    };
    const server = await startRpcServer({ port: 0, serviceNames: [RouterService.typeName], routes: (r) => r.service(RouterService, router) });
    const client = grpcClient(RouterService, `127.0.0.1:${server.port}`, { serviceToken: "" });
    try {
      const calls = Array.from({ length: 24 }, () =>
        client.listModels({}, { timeoutMs: 30_000 }).then(
          () => undefined,
          (err: { code: Code }) => err.code,
        ),
      );
      for (let i = 0; i < 200 && started < 24; i++) await new Promise((r) => setTimeout(r, 10));
      expect(started).toBe(24);
      await server.close(50);
      const codes = await Promise.all(calls);
      expect(codes.every((c) => c !== undefined)).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
      await server.close(0);
    }
  });
});
