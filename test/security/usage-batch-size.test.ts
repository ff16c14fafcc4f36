import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PrincipalSchema, UsageStatus } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { createLogger } from "../../lib/runtime/index.js";
import { UsageRecorder } from "../../services/edge/src/usage-recorder.js";
import { startAuth } from "../integration/auth-fixtures.js";

type Auth = Awaited<ReturnType<typeof startAuth>>;

describe("usage batches stay under the gRPC message limit", () => {
  let a: Auth;
  beforeAll(async () => {
    a = await startAuth();
  });
  afterAll(async () => {
    await a?.stop();
  });

  it("records every one of many large requests (3 MB request logs each), none lost to RESOURCE_EXHAUSTED", async () => {
    const log = createLogger("edge-test");
    log.level = "silent";
    const recorder = new UsageRecorder(a.auth, log);
    const principal = create(PrincipalSchema, { keyId: "k-big", accountId: "default" });
    const big = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(3 * 1024 * 1024) }] });
    const count = 10;
    for (let i = 0; i < count; i++) {
      recorder.record({
        requestId: `big-${i}`,
        principal,
        model: "m",
        backend: "b",
        promptTokens: 1,
        completionTokens: 1,
        status: UsageStatus.OK,
        ttftMs: 1,
        e2eMs: 2,
        requestJson: big,
        responseText: "ok",
      });
    }
    await recorder.flush();
    const { rows } = await a.admin.getUsage({ accountId: "default", groupBy: "key" }, a.asAdmin);
    expect(Number(rows.find((r) => r.group === "k-big")?.requests ?? 0)).toBe(count);
  });
});
